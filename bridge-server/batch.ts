import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import fg from 'fast-glob';
import { isUpbridgeError, UpbridgeError } from '../core/errors';
import { planUpscale } from '../core/modes';
import { writeFileAtomic } from '../core/node/atomic-write';
import { oneAtATime } from '../core/one-at-a-time';
import { formatFromPath, OUTPUT_FORMATS } from '../core/node/image-io';
import { oneOf } from '../core/validate';

/** File extensions a batch picks up from a directory (what readImage decodes). */
export const BATCH_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'];
export const MANIFEST_NAME = 'upbridge-manifest.json';

/**
 * The options of `upbridge upscale` that shape a result, as given on the command line (strings),
 * so that a resumed batch can tell whether a done image was made with the same ones.
 */
export interface BatchSettings {
  model?: string;
  scale: string;
  mode?: string;
  creativity?: string;
  content: string;
  tta?: string;
  consistent?: boolean;
  tile?: string;
  overlap?: string;
  alpha: string;
  /** Output format for every image (png, jpeg, webp, tiff); default: each input's own extension. */
  format?: string;
}

export interface BatchItem {
  /** The input's path relative to its root (a directory, or a glob's fixed prefix): the output keeps it. */
  key: string;
  input: string;
  /** Absolute output path: `<output dir>/<key>`, with the extension of `format` when given. */
  output: string;
}

export interface ManifestEntry {
  /** Relative path, the same under the input root and the output dir. */
  key: string;
  input: string;
  /** Relative to the manifest's folder (the output dir). */
  output: string;
  status: 'done' | 'failed';
  model?: string;
  settings: BatchSettings;
  inputSha256: string;
  outputSha256?: string;
  /** Wall time of this image, seconds (queued: from enqueue to its result in the output dir). */
  seconds: number;
  error?: { code: string; message: string };
  /** Which machine ran it (queued batches: the worker's name). */
  worker?: string;
  finishedAt: string;
  report?: Record<string, unknown>;
}

export interface Manifest {
  version: 1;
  tool: 'upbridge batch';
  updatedAt: string;
  settings: BatchSettings;
  summary: BatchSummary;
  items: ManifestEntry[];
}

export interface BatchSummary {
  total: number;
  /** Upscaled in this run. */
  done: number;
  /** Already done in an earlier run, output verified by sha256. */
  skipped: number;
  /** Of `done`: there was an output, but it did not match the manifest (truncated, edited): redone. */
  repaired: number;
  failed: number;
  seconds: number;
}

/** What runs one image: in this process (upscaleFile) or on a worker through the queue. */
export interface BatchRunner {
  run(item: BatchItem, settings: BatchSettings, signal: AbortSignal, onProgress: (p: { done: number; total: number }) => void): Promise<{ model?: string; report?: Record<string, unknown>; worker?: string; outputSha256?: string }>;
  /** How many images run at once (1 locally: the pipeline already uses every core). */
  readonly concurrency: number;
  close?(): Promise<void>;
}

export type BatchEvent =
  | { type: 'start'; total: number; toRun: number; skipped: number }
  | { type: 'item'; entry: ManifestEntry; index: number; toRun: number; repaired: boolean }
  | { type: 'progress'; key: string; done: number; total: number }
  /** Something went wrong that does not stop the batch (a manifest write after one image failed; the next write tries again). */
  | { type: 'warning'; message: string };

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Validates the settings before any image runs, with the same messages as `upbridge upscale`. */
export function checkSettings(settings: BatchSettings): void {
  planUpscale({ ...settings });
  if (settings.format !== undefined) oneOf('format', settings.format, OUTPUT_FORMATS);
}

const FORMAT_EXTENSION: Record<string, string> = { png: '.png', jpeg: '.jpg', webp: '.webp', tiff: '.tif' };

/**
 * The images of a batch. Each spec is a directory (every image under it, recursively), a glob
 * (quote it: `'shoot/**\/*.jpg'`), or a file (a shell that expanded the glob); keys are relative
 * to the directory, the glob's fixed prefix, or the files' common folder.
 */
export async function listBatchInputs(specs: string[], outDir: string, format?: string): Promise<BatchItem[]> {
  const out = path.resolve(outDir);
  const found: { input: string; key: string }[] = [];
  const files: string[] = [];
  for (const spec of specs) {
    const stat = await fs.stat(spec).catch(() => undefined);
    if (stat?.isDirectory()) {
      const root = path.resolve(spec);
      const names = await fg('**/*', { cwd: root, onlyFiles: true, dot: false, caseSensitiveMatch: false, followSymbolicLinks: true });
      for (const name of names.sort()) {
        if (!BATCH_EXTENSIONS.includes(path.extname(name).toLowerCase())) continue;
        found.push({ input: path.join(root, name), key: name });
      }
    } else if (stat?.isFile()) {
      files.push(path.resolve(spec));
    } else if (fg.isDynamicPattern(spec)) {
      const parts = spec.split('/');
      const fixed: string[] = [];
      for (const p of parts) {
        if (p !== '' && fg.isDynamicPattern(p)) break;
        fixed.push(p);
      }
      const base = path.resolve(fixed.join('/') || '.');
      const names = await fg(spec, { onlyFiles: true, dot: false, absolute: true, followSymbolicLinks: true });
      for (const name of names.sort()) found.push({ input: name, key: path.relative(base, name).split(path.sep).join('/') });
    } else {
      throw new UpbridgeError('UPB_INPUT_NOT_FOUND', `batch input ${JSON.stringify(spec)} is neither a directory, a file nor a glob that matches anything`);
    }
  }
  if (files.length > 0) {
    const common = files.map((f) => path.dirname(f)).reduce((a, b) => {
      while (!(b + path.sep).startsWith(a + path.sep) && a !== path.dirname(a)) a = path.dirname(a);
      return a;
    });
    for (const f of files) found.push({ input: f, key: path.relative(common, f).split(path.sep).join('/') });
  }
  const items: BatchItem[] = [];
  const keys = new Map<string, string>();
  for (const f of found) {
    // The output folder may sit inside the input folder: never take our own outputs as inputs.
    if (f.input === out || f.input.startsWith(out + path.sep)) continue;
    let key = f.key;
    if (format !== undefined) key = key.slice(0, key.length - path.extname(key).length) + FORMAT_EXTENSION[format];
    const other = keys.get(key);
    if (other !== undefined) {
      if (other === f.input) continue;
      throw new UpbridgeError('UPB_INVALID_OPTION', `${JSON.stringify(other)} and ${JSON.stringify(f.input)} would both be written to ${JSON.stringify(key)}; batch them separately`);
    }
    keys.set(key, f.input);
    const output = path.join(out, ...key.split('/'));
    formatFromPath(output);
    items.push({ key, input: f.input, output });
  }
  if (items.length === 0) throw new UpbridgeError('UPB_INPUT_NOT_FOUND', `no images (${BATCH_EXTENSIONS.join(' ')}) found in ${specs.map((s) => JSON.stringify(s)).join(', ')}`);
  return items;
}

export async function readManifest(outDir: string): Promise<Manifest | undefined> {
  const text = await fs.readFile(path.join(outDir, MANIFEST_NAME), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const m = JSON.parse(text) as Manifest;
    return m && Array.isArray(m.items) ? m : undefined;
  } catch {
    // A manifest that is not JSON (edited by hand): start over, every output is checked again.
    return undefined;
  }
}

const sameSettings = (a: BatchSettings, b: BatchSettings) => JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
function normalize(s: BatchSettings): BatchSettings {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(s).sort()) if ((s as unknown as Record<string, unknown>)[k] !== undefined) out[k] = (s as unknown as Record<string, unknown>)[k];
  return out as unknown as BatchSettings;
}

/**
 * Runs a batch: every image not already done (same input bytes, same settings, output present and
 * matching its sha256) is upscaled; one that fails is recorded and the batch goes on. The manifest
 * is rewritten atomically after each image, so an interrupted batch resumes where it stopped.
 */
export async function runBatch(
  items: BatchItem[],
  settings: BatchSettings,
  outDir: string,
  runner: BatchRunner,
  options: { signal?: AbortSignal; onEvent?: (e: BatchEvent) => void } = {},
): Promise<{ manifest: Manifest; summary: BatchSummary }> {
  const started = performance.now();
  const out = path.resolve(outDir);
  await fs.mkdir(out, { recursive: true }).catch((e) => {
    throw new UpbridgeError('UPB_OUTPUT_UNWRITABLE', `cannot create the output folder ${JSON.stringify(out)}: ${(e as Error).message}`);
  });
  const previous = await readManifest(out);
  const entries = new Map<string, ManifestEntry>();
  // Entries of images outside this run stay in the manifest (a batch run on part of a folder).
  for (const e of previous?.items ?? []) entries.set(e.key, e);

  const summary: BatchSummary = { total: items.length, done: 0, skipped: 0, repaired: 0, failed: 0, seconds: 0 };
  const toRun: { item: BatchItem; inputSha256: string; repaired: boolean }[] = [];
  for (const item of items) {
    const inputSha256 = await sha256File(item.input).catch(() => '');
    const before = entries.get(outputKey(out, item));
    let repaired = false;
    if (before && before.status === 'done' && before.inputSha256 === inputSha256 && sameSettings(before.settings, settings)) {
      const have = await sha256File(item.output).catch(() => undefined);
      if (have !== undefined && have === before.outputSha256) {
        summary.skipped++;
        continue;
      }
      repaired = have !== undefined;
    }
    toRun.push({ item, inputSha256, repaired });
  }
  options.onEvent?.({ type: 'start', total: items.length, toRun: toRun.length, skipped: summary.skipped });

  // Writes one after another; one that failed (a NAS hiccup, a full disk, a file briefly locked by
  // an indexer) does not stop the next, which writes everything again.
  const write = oneAtATime();
  const save = () => {
    const manifest = buildManifest(settings, summary, entries, started);
    return write(() => writeFileAtomic(path.join(out, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n'));
  };
  // After one image, a failed write is a warning and the batch goes on; the last write must succeed.
  const saveAfterImage = () =>
    save().catch((e) => options.onEvent?.({ type: 'warning', message: `could not update ${MANIFEST_NAME} (${(e as Error).message}); the batch goes on and writes it again after the next image` }));

  let next = 0;
  let finished = 0;
  let cancelled: unknown;
  const one = async (job: (typeof toRun)[number]) => {
    const { item } = job;
    const t0 = performance.now();
    const base = { key: outputKey(out, item), input: item.input, output: path.relative(out, item.output).split(path.sep).join('/'), settings, inputSha256: job.inputSha256 };
    let entry: ManifestEntry;
    try {
      await fs.mkdir(path.dirname(item.output), { recursive: true });
      const r = await runner.run(item, settings, options.signal ?? new AbortController().signal, (p) => options.onEvent?.({ type: 'progress', key: item.key, ...p }));
      const outputSha256 = await sha256File(item.output);
      if (r.outputSha256 !== undefined && r.outputSha256 !== outputSha256) {
        throw new UpbridgeError('UPB_INTERNAL', `the output of ${item.key} does not match the sha256 its worker reported`);
      }
      entry = { ...base, status: 'done', model: r.model, outputSha256, seconds: secondsSince(t0), ...(r.worker ? { worker: r.worker } : {}), finishedAt: new Date().toISOString(), ...(r.report ? { report: r.report } : {}) };
      summary.done++;
      if (job.repaired) summary.repaired++;
    } catch (e) {
      if (isUpbridgeError(e) && e.code === 'UPB_CANCELLED') {
        cancelled ??= e;
        return;
      }
      const error = isUpbridgeError(e) ? { code: e.code, message: e.message } : { code: 'UPB_INTERNAL', message: e instanceof Error ? e.message : String(e) };
      entry = { ...base, status: 'failed', seconds: secondsSince(t0), error, finishedAt: new Date().toISOString() };
      summary.failed++;
    }
    entries.set(entry.key, entry);
    summary.seconds = secondsSince(started);
    await saveAfterImage();
    options.onEvent?.({ type: 'item', entry, index: ++finished, toRun: toRun.length, repaired: job.repaired });
  };
  const lane = async () => {
    while (next < toRun.length && cancelled === undefined && !options.signal?.aborted) await one(toRun[next++]);
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(runner.concurrency, toRun.length)) }, lane));
  } finally {
    summary.seconds = secondsSince(started);
    await save();
  }
  if (cancelled !== undefined || options.signal?.aborted) throw new UpbridgeError('UPB_CANCELLED', `batch cancelled; ${summary.done + summary.skipped} of ${summary.total} images are done (run the same command again to resume)`);
  return { manifest: buildManifest(settings, summary, entries, started), summary };
}

function outputKey(out: string, item: BatchItem): string {
  return path.relative(out, item.output).split(path.sep).join('/');
}

function buildManifest(settings: BatchSettings, summary: BatchSummary, entries: Map<string, ManifestEntry>, _started: number): Manifest {
  return {
    version: 1,
    tool: 'upbridge batch',
    updatedAt: new Date().toISOString(),
    settings,
    summary: { ...summary },
    items: [...entries.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
  };
}

const secondsSince = (t0: number) => Number(((performance.now() - t0) / 1000).toFixed(3));
