import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * Write to a temporary file in the destination's folder, then rename over the destination:
 * a reader (or a crash) never sees a half-written file, and rename is atomic on one filesystem.
 */
export async function writeFileAtomic(destination: string, bytes: Uint8Array | string): Promise<void> {
  const dir = path.dirname(destination);
  const temp = path.join(dir, `.${path.basename(destination)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fs.writeFile(temp, bytes);
    await fs.rename(temp, destination);
  } catch (e) {
    await fs.rm(temp, { force: true });
    throw e;
  }
}
