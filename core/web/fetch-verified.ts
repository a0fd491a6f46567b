import { throwIfCancelled, UpbridgeError } from '../errors';
import { sha256Hex } from './digest';

/** A file known by its sha256, found at the first of `urls` that answers with exactly those bytes. */
export interface PinnedFile {
  name: string;
  urls: string[];
  sha256: string;
}

/**
 * Fetches a pinned file, trying each mirror in turn; bytes whose hash differs are never returned.
 * A mirror that serves other bytes is an integrity failure, reported even if no other mirror works,
 * because that (not an outage) is what the user must hear about.
 */
export async function fetchVerified(file: PinnedFile, options: { fetch?: typeof fetch; signal?: AbortSignal } = {}): Promise<Uint8Array> {
  const get = options.fetch ?? fetch;
  const problems: string[] = [];
  let mismatch: string | undefined;
  for (const url of file.urls) {
    throwIfCancelled(options.signal);
    let bytes: Uint8Array;
    try {
      const response = await get(url, { signal: options.signal });
      if (!response.ok) {
        problems.push(`${url}: HTTP ${response.status}`);
        continue;
      }
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throwIfCancelled(options.signal);
      problems.push(`${url}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const actual = await sha256Hex(bytes);
    if (actual === file.sha256) return bytes;
    mismatch = `${url} served ${file.name} with sha256 ${actual}, expected ${file.sha256}`;
    problems.push(mismatch);
  }
  if (mismatch) throw new UpbridgeError('UPB_MODEL_INTEGRITY', `${mismatch}; nothing was used`, { file: file.name });
  throw new UpbridgeError('UPB_MODEL_FETCH', `could not download ${file.name} (${problems.join('; ')})`, { file: file.name });
}
