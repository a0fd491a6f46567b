/**
 * Models whose graphs pad themselves (Real-CUGAN, waifu2x: reference conventions folded in by the
 * converter) through the real pipeline: no extra border from the tiler, windows never below the
 * model's minimum side. Against the reference programs' outputs (test/fixtures/ncnn-reference,
 * CPU runs, exact float32).
 */
import * as path from 'node:path';
import sharp from 'sharp';
import { findModel } from '../../core/catalogue';
import { psnr } from '../../core/metrics';
import { sharpResampler } from '../../core/node/image-io';
import { ModelStore } from '../../core/node/model-store';
import { ortRunner } from '../../core/node/ort-session';
import { Raster } from '../../core/raster';
import { upscaleRaster, windowConventions } from '../../core/upscale';

jest.setTimeout(300_000);
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'ncnn-reference');
const store = new ModelStore();

async function rgb(file: string): Promise<Raster> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 3, depth: 8, data: new Uint8Array(data) };
}

async function upscale(id: string, input: Raster, overrides: { borderPad?: number } = {}) {
  const model = findModel(id);
  const runner = await ortRunner((await store.ensureOne(id)).onnxPath);
  return (await upscaleRaster(input, runner, model.scale, sharpResampler, { scale: model.scale, tile: model.tile, overlap: model.overlap, alpha: 'model', ...windowConventions(model), ...overrides })).raster;
}

test.each([
  ['realcugan-2x-conservative', 'input-a', 'cugan-up2x-conservative-input-a'],
  ['realcugan-2x-conservative', 'input-b', 'cugan-up2x-conservative-input-b'],
  ['realcugan-4x-conservative', 'input-b', 'cugan-up4x-conservative-input-b'],
  ['waifu2x-upconv7-2x', 'input-b', 'upconv7-scale2x-input-b'],
])('%s on %s matches the reference program through the pipeline', async (id, input, reference) => {
  const out = await upscale(id, await rgb(path.join(FIXTURES, `${input}.png`)));
  const ref = await rgb(path.join(FIXTURES, `${reference}.png`));
  expect([out.width, out.height]).toEqual([ref.width, ref.height]);
  expect(psnr(out.data, ref.data, 255).db).toBeGreaterThanOrEqual(50);
});

test('the pipeline adding its own mirrored border to such a model would break agreement (why borderPad is 0)', async () => {
  const input = await rgb(path.join(FIXTURES, 'input-b.png'));
  const ref = await rgb(path.join(FIXTURES, 'cugan-up4x-conservative-input-b.png'));
  expect(windowConventions(findModel('realcugan-4x-conservative'))).toEqual({ borderPad: 0, minWindow: 21 });
  const padded = await upscale('realcugan-4x-conservative', input, { borderPad: 10 });
  expect(psnr(padded.data, ref.data, 255).db).toBeLessThan(40);
});

test('an image smaller than the model minimum (Real-CUGAN 4x: 21 px) still upscales, from mirrored context', async () => {
  const full = await rgb(path.join(FIXTURES, 'input-b.png'));
  const small = await sharp(Buffer.from(full.data), { raw: { width: full.width, height: full.height, channels: 3 } }).extract({ left: 4, top: 6, width: 15, height: 12 }).raw().toBuffer();
  const out = await upscale('realcugan-4x-conservative', { width: 15, height: 12, channels: 3, depth: 8, data: new Uint8Array(small) });
  expect([out.width, out.height]).toEqual([60, 48]);
  // Close to a plain enlargement: the model ran on real content, not on padding.
  const lanczos = await sharpResampler.resize({ width: 15, height: 12, channels: 3, depth: 8, data: new Uint8Array(small) }, 60, 48);
  expect(psnr(out.data, lanczos.data, 255).db).toBeGreaterThan(20);
});
