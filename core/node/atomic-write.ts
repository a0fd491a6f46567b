import { promises as fs } from 'node:fs';
import { tempFileBeside } from './temp-files';

/**
 * Fill a temporary file in the destination's folder, then rename it over the destination: a
 * reader (or a crash) never sees a half-written file, and rename is atomic on one filesystem.
 */
async function replaceAtomically(destination: string, fill: (temp: string) => Promise<void>): Promise<void> {
  const { temp, forget } = tempFileBeside(destination);
  try {
    await fill(temp);
    await fs.rename(temp, destination);
  } catch (e) {
    await fs.rm(temp, { force: true });
    throw e;
  } finally {
    forget();
  }
}

export function writeFileAtomic(destination: string, bytes: Uint8Array | string): Promise<void> {
  return replaceAtomically(destination, (temp) => fs.writeFile(temp, bytes));
}

export function copyFileAtomic(from: string, to: string): Promise<void> {
  return replaceAtomically(to, (temp) => fs.copyFile(from, temp));
}
