import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Catalogue, catalogue as defaultCatalogue, ModelEntry } from '../catalogue';
import { UpbridgeError } from '../errors';
import { writeFileAtomic } from './atomic-write';
import { sha256 } from './model-store';

/**
 * The user's own .onnx models: any file in <UPBRIDGE_HOME>/models/custom/, or one passed by path.
 * Nothing is assumed from the file name: the model is probed with small inputs to find its scale
 * and to check it takes what the pipeline gives every model (one float32 NCHW RGB input of any
 * size, values 0–1) and gives back the same layout scaled.
 */
export const CUSTOM_PREFIX = 'custom:';

export interface ProbeResult {
  scale: number;
  inputName: string;
  outputName: string;
}

function unsupported(file: string, why: string): UpbridgeError {
  return new UpbridgeError('UPB_MODEL_UNSUPPORTED', `${path.basename(file)}: ${why}`, { file });
}

/** Smooth colour texture in 0.2–0.8 times `range`, [1, 3, h, w]: different per pixel and channel. */
function texture(h: number, w: number, range: number): ort.Tensor {
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = range * (0.5 + 0.3 * Math.sin(x / 3 + c) * Math.cos(y / 4 - c));
    }
  }
  return new ort.Tensor('float32', data, [1, 3, h, w]);
}

/** PSNR (dB, on the given range) of an output against its input enlarged by nearest neighbour. */
function fidelity(output: Float32Array, input: Float32Array, h: number, w: number, scale: number, range: number): number {
  const W = w * scale;
  const H = h * scale;
  let sum = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const d = output[(c * H + y) * W + x] - input[(c * h + Math.floor(y / scale)) * w + Math.floor(x / scale)];
        sum += d * d;
      }
    }
  }
  const mse = sum / (3 * W * H);
  return mse === 0 ? Infinity : 10 * Math.log10((range * range) / mse);
}

export async function probeOnnxModel(file: string): Promise<ProbeResult> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file);
  } catch (e) {
    throw unsupported(file, `not a model ONNX Runtime can load (${e instanceof Error ? e.message : String(e)})`);
  }
  try {
    if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
      throw unsupported(file, `has ${session.inputNames.length} inputs and ${session.outputNames.length} outputs; an upscaler takes one image and returns one`);
    }
    const [inputName] = session.inputNames;
    const [outputName] = session.outputNames;
    let scale: number | undefined;
    let outputs: { input: ort.Tensor; output: Float32Array } | undefined;
    // Two sizes, one odd: the tiler feeds tiles of any size, so a fixed-size model cannot be used.
    for (const [h, w] of [[16, 16], [21, 18]]) {
      const input = texture(h, w, 1);
      let out: ort.Tensor;
      try {
        out = (await session.run({ [inputName]: input }))[outputName];
      } catch (e) {
        throw unsupported(file, `does not take a float32 NCHW RGB image [1, 3, ${h}, ${w}] (ONNX Runtime: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}); models with a fixed input size or NHWC layout are not supported`);
      }
      const dims = out.dims as number[];
      if (out.type !== 'float32' || dims.length !== 4 || dims[0] !== 1 || dims[1] !== 3) {
        throw unsupported(file, `returns ${out.type} [${dims.join(', ')}]; expected float32 [1, 3, H·scale, W·scale]`);
      }
      const sy = dims[2] / h;
      const sx = dims[3] / w;
      if (sy !== sx || !Number.isInteger(sy) || sy < 1 || sy > 16 || (scale !== undefined && sy !== scale)) {
        throw unsupported(file, `turns ${w}×${h} into ${dims[3]}×${dims[2]}: not one whole scale from 1 to 16`);
      }
      scale = sy;
      outputs = { input, output: out.data as Float32Array };
    }
    // The value range: the same texture fed as 0–1 and as 0–255. A model trained on one range
    // reproduces its input (enlarged) far better in that range; a 0–255 model fed 0–1 values sees
    // a near-black image, and the reverse saturates.
    const { input, output } = outputs!;
    const as255 = (await session.run({ [inputName]: texture(21, 18, 255) }))[outputName].data as Float32Array;
    const fit1 = fidelity(output, input.data as Float32Array, 21, 18, scale!, 1);
    const fit255 = fidelity(as255, (input.data as Float32Array).map((v) => v * 255), 21, 18, scale!, 255);
    if (fit255 > fit1 + 3) {
      throw unsupported(file, `works on 0–255 values (it reproduces a 0–255 input at ${fit255.toFixed(1)} dB, a 0–1 input at ${fit1.toFixed(1)} dB): convert it to take and return 0–1 values`);
    }
    if (fit1 < 12) throw unsupported(file, `does not reproduce its input (${fit1.toFixed(1)} dB against a plain enlargement): not an upscaler the pipeline can drive`);
    return { scale: scale!, inputName, outputName };
  } finally {
    await session.release().catch(() => undefined);
  }
}

function customEntry(id: string, file: string, hash: string, probe: ProbeResult): ModelEntry {
  return {
    id,
    name: `Custom: ${path.basename(file, '.onnx')}`,
    // The file name only: /v1/models is served to every paired client.
    description: `Your own ONNX model (${path.basename(file)}), ${probe.scale}x as probed.`,
    architecture: 'custom ONNX',
    scale: probe.scale,
    licence: 'as supplied by you',
    content: 'any',
    mode: 'balanced',
    source: { package: 'custom', format: 'onnx', file: { path: file, sha256: hash } },
    onnxSha256: hash,
    tile: 256,
    overlap: 32,
    customPath: file,
  };
}

/** Probe results are cached beside the models, keyed by the file's sha256 (probing loads the model). */
async function probeCached(file: string, hash: string, cacheDir: string): Promise<ProbeResult> {
  const cache = path.join(cacheDir, `.${path.basename(file)}.${hash.slice(0, 16)}.probe.json`);
  try {
    return JSON.parse(await fs.readFile(cache, 'utf8')) as ProbeResult;
  } catch {
    const probe = await probeOnnxModel(file);
    await fs.mkdir(cacheDir, { recursive: true });
    await writeFileAtomic(cache, JSON.stringify(probe) + '\n');
    return probe;
  }
}

/** Adds (or replaces) a custom model in the catalogue; returns its entry. */
export async function registerCustomModel(file: string, cacheDir: string, into: Catalogue = defaultCatalogue): Promise<ModelEntry> {
  const absolute = path.resolve(file);
  const bytes = await fs.readFile(absolute).catch(() => {
    throw new UpbridgeError('UPB_INPUT_NOT_FOUND', `no model file at ${absolute}`);
  });
  const hash = sha256(bytes);
  const probe = await probeCached(absolute, hash, cacheDir);
  const entry = customEntry(`${CUSTOM_PREFIX}${path.basename(absolute).replace(/\.onnx$/i, '')}`, absolute, hash, probe);
  const existing = into.models.findIndex((m) => m.id === entry.id);
  if (existing >= 0) into.models[existing] = entry;
  else into.models.push(entry);
  return entry;
}

/**
 * Registers every .onnx in `<modelsDir>/custom/`. A file that cannot be used is reported, not
 * fatal: one bad download must not stop the bridge.
 */
export async function registerCustomModels(modelsDir: string, into: Catalogue = defaultCatalogue): Promise<{ models: ModelEntry[]; problems: UpbridgeError[] }> {
  const dir = path.join(modelsDir, 'custom');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const models: ModelEntry[] = [];
  const problems: UpbridgeError[] = [];
  for (const name of names.filter((n) => n.toLowerCase().endsWith('.onnx')).sort()) {
    try {
      models.push(await registerCustomModel(path.join(dir, name), dir, into));
    } catch (e) {
      problems.push(e instanceof UpbridgeError ? e : new UpbridgeError('UPB_MODEL_UNSUPPORTED', `${name}: ${String(e)}`));
    }
  }
  return { models, problems };
}
