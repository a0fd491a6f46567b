import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UpbridgeError } from '../core/errors';
import { copyFileAtomic, writeFileAtomic } from '../core/node/atomic-write';

/**
 * Where queued jobs keep their images: the queue (Redis) carries only keys, never image bytes.
 * Keys are relative, '/'-separated paths such as `jobs/<id>/input.raw`.
 *
 * The interface is what a worker needs from any shared storage: get a key's bytes as a local file
 * (the pipeline reads and writes files), publish a local file under a key, and clean up. A
 * directory on a NAS (`--store /mnt/studio/upbridge`) is the implementation here. An
 * S3-compatible store (MinIO, R2, S3) would implement the same four methods: `open` downloads the
 * object to a temporary file (GetObject), `create` hands out a temporary path and `commit`
 * uploads it (PutObject, which is atomic: readers see the old object or the whole new one),
 * `remove` deletes by prefix (ListObjectsV2 + DeleteObjects).
 */
export interface JobStore {
  /** For messages: the directory, or the bucket's URL. */
  readonly description: string;
  /** Copies a local file into the store under `key`, atomically (a reader sees all of it or none). */
  put(key: string, file: string): Promise<void>;
  /** Writes bytes under `key`, atomically. */
  write(key: string, bytes: Uint8Array): Promise<void>;
  /** Reads a key whole (small files: reports, raw rasters the bridge keeps in memory anyway). */
  read(key: string): Promise<Buffer>;
  /** A local file holding the key's bytes, valid until `release()` (a download for a remote store). */
  open(key: string): Promise<{ path: string; release(): Promise<void> }>;
  /**
   * A local path to write the key's bytes to (its extension is the key's, which picks the image
   * format); `commit()` publishes it under the key, `abort()` drops it.
   */
  create(key: string): Promise<{ path: string; commit(): Promise<void>; abort(): Promise<void> }>;
  /** Deletes every key under `prefix` (a job's folder once its client has its result). */
  remove(prefix: string): Promise<void>;
}

/** A key must stay inside the store: relative, no `..`, no empty or dot segments. */
function checkKey(key: string): string[] {
  const parts = key.split('/');
  if (key.length === 0 || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\\') || p.includes('\0'))) {
    throw new UpbridgeError('UPB_INVALID_OPTION', `store key ${JSON.stringify(key)} must be a relative path without "." or ".." segments`);
  }
  return parts;
}

export { copyFileAtomic };

/** The shared directory: every bridge, worker and batch client mounts the same folder. */
export class DirectoryStore implements JobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get description(): string {
    return this.root;
  }

  /** Checks that the folder exists and is writable, with a message naming it. */
  async check(): Promise<void> {
    try {
      const stat = await fs.stat(this.root);
      if (!stat.isDirectory()) throw new Error('not a directory');
      await fs.access(this.root, 6 /* R_OK | W_OK */);
    } catch (e) {
      throw new UpbridgeError('UPB_INVALID_OPTION', `--store ${JSON.stringify(this.root)} must be an existing, writable directory shared by the bridge, the workers and batch clients (${(e as Error).message})`);
    }
  }

  pathOf(key: string): string {
    return path.join(this.root, ...checkKey(key));
  }

  private async parent(key: string): Promise<string> {
    const file = this.pathOf(key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    return file;
  }

  async put(key: string, file: string): Promise<void> {
    await copyFileAtomic(file, await this.parent(key));
  }

  async write(key: string, bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(await this.parent(key), bytes);
  }


  async read(key: string): Promise<Buffer> {
    return fs.readFile(this.pathOf(key));
  }

  async open(key: string): Promise<{ path: string; release(): Promise<void> }> {
    return { path: this.pathOf(key), release: async () => {} };
  }

  async create(key: string): Promise<{ path: string; commit(): Promise<void>; abort(): Promise<void> }> {
    // The pipeline writes its outputs atomically itself (a temporary file renamed into place), so
    // on a shared directory the final path is handed out directly.
    const file = await this.parent(key);
    return { path: file, commit: async () => {}, abort: () => fs.rm(file, { force: true }) };
  }

  async remove(prefix: string): Promise<void> {
    await fs.rm(this.pathOf(prefix), { recursive: true, force: true });
  }
}
