import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The temporary files this process is filling (atomic writes, streamed PNGs, calibrations). A
 * first Ctrl-C cancels gracefully and each writer removes its own file; a second one ends the
 * process at once, before those async clean-ups run, so it removes them here, synchronously.
 */
const live = new Set<string>();

/**
 * A new temporary path beside `destination` (hidden, unique to this process and call, on the same
 * filesystem so a rename is atomic), tracked until `forget` (call it once renamed or removed).
 */
export function tempFileBeside(destination: string): { temp: string; forget: () => void } {
  const temp = path.join(path.dirname(destination), `.${path.basename(destination)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  live.add(temp);
  return { temp, forget: () => live.delete(temp) };
}

export function removeTempFilesSync(): void {
  for (const file of live) {
    try {
      rmSync(file, { force: true });
    } catch {
      // Exiting anyway: a file that cannot be removed now stays, as it would have without this.
    }
  }
  live.clear();
}

/** 128 + SIGINT, what shells report for a job stopped with Ctrl-C. */
export const INTERRUPTED_EXIT_CODE = 130;

/**
 * Ends the process at once, by the signal itself (shells report 128 + its number, 130 for
 * SIGINT), this process's temporary files removed first. Not process.exit(): with an inference
 * running on ONNX Runtime's threads, its exit-time destructors abort the process (SIGABRT, a core
 * dump). Windows has no signals: there the process is terminated with exit code 1.
 */
function endNow(signal: 'SIGINT' | 'SIGTERM'): void {
  removeTempFilesSync();
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}

export interface Interrupts {
  /** Removes the handlers. */
  dispose(): void;
}

/**
 * Ctrl-C handling for a long command: the first press calls `first` (cancel, or stop after the
 * running job), a second press ends the process at once (endNow). With `terminate`, SIGTERM is a
 * first press too, and a signal after the first ends the process.
 */
export function onInterrupt(first: () => void, options: { terminate?: boolean } = {}): Interrupts {
  const signals: Array<'SIGINT' | 'SIGTERM'> = options.terminate ? ['SIGINT', 'SIGTERM'] : ['SIGINT'];
  let armed = false;
  const handlers = new Map(signals.map((signal) => [signal, () => (armed ? endNow(signal) : press())] as const));
  const press = () => {
    armed = true;
    first();
  };
  for (const [signal, handler] of handlers) process.on(signal, handler);
  return {
    dispose: () => {
      for (const [signal, handler] of handlers) process.off(signal, handler);
    },
  };
}
