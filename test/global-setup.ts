import { startupModelIds } from '../core/catalogue';
import { ModelStore } from '../core/node/model-store';

/**
 * Download and convert the models most suites use (the default package's) once, before the
 * workers race to do it. The catalogue suite installs the rest itself.
 */
export default async function globalSetup(): Promise<void> {
  await new ModelStore().ensure(startupModelIds());
}
