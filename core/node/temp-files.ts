import { rmSync } from 'node:fs';

/**
 * The temporary files this process is filling (atomic writes, streamed PNGs, calibrations). A
 * first Ctrl-C cancels gracefully and each writer removes its own file; a second one ends the
 * process at once, before those async clean-ups run, so it removes them here, synchronously.
 */
const live = new Set<string>();

/** Registers a temporary file; the returned function forgets it (once renamed or removed). */
export function trackTempFile(file: string): () => void {
  live.add(file);
  return () => {
    live.delete(file);
  };
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
 * Ctrl-C handling for a long command: the first press calls `first` (cancel, or stop after the
 * running job), a second press removes this process's temporary files and ends the process at
 * once, by SIGINT itself (shells report 130). Not process.exit(): with an inference running on
 * ONNX Runtime's threads, its exit-time destructors abort the process (SIGABRT, a core dump).
 * Returns the function that removes whichever handler is installed.
 */
export function onInterrupt(first: () => void): () => void {
  const now = () => {
    removeTempFilesSync();
    process.removeAllListeners('SIGINT');
    process.kill(process.pid, 'SIGINT');
  };
  const once = () => {
    process.once('SIGINT', now);
    first();
  };
  process.once('SIGINT', once);
  return () => {
    process.off('SIGINT', once);
    process.off('SIGINT', now);
  };
}
