import { catalogue, startupModelIds } from '../core/catalogue';
import { ModelStore } from '../core/node/model-store';

/**
 * Download and convert the models most suites use (the default package's, and the models the
 * modes pick) once, before the workers race to do it. The catalogue suite installs the rest itself.
 */
export default async function globalSetup(): Promise<void> {
  const modeModels = Object.values(catalogue.modeDefaults).flatMap((byMode) => Object.values(byMode));
  await new ModelStore().ensure([...new Set([...startupModelIds(), ...modeModels])]);
}
