/**
 * Every catalogue model converts from its pinned npm source (sha256 of each file and of the
 * converted .onnx checked by the store) and runs through the real pipeline: the right output
 * size, and an image close to a plain Lanczos enlargement of the input (a broken converter or
 * a wrong convention gives noise, a shift or a colour cast, far below this bound).
 * The first run downloads about 300 MB from the npm registry (pacote caches it).
 */
import sharp from 'sharp';
import * as path from 'node:path';
import { catalogue } from '../../core/catalogue';
import { psnr } from '../../core/metrics';
import { sharpResampler } from '../../core/node/image-io';
import { ModelStore } from '../../core/node/model-store';
import { ortRunner } from '../../core/node/ort-session';
import { Raster } from '../../core/raster';
import { upscaleRaster, windowConventions } from '../../core/upscale';

jest.setTimeout(900_000);

const PHOTO = path.join(__dirname, '..', 'fixtures', 'photo-161x121.png');
const store = new ModelStore();
let input: Raster;

beforeAll(async () => {
  await store.ensure(catalogue.models.map((m) => m.id));
  const { data, info } = await sharp(PHOTO).extract({ left: 60, top: 40, width: 40, height: 32 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  input = { width: info.width, height: info.height, channels: 3, depth: 8, data: new Uint8Array(data) };
});

test.each(catalogue.models.map((m) => [m.id, m] as const))('%s converts and upscales', async (_id, model) => {
  const runner = await ortRunner((await store.installed(model.id))!.onnxPath);
  const scale = Math.max(2, model.scale);
  const { raster } = await upscaleRaster(input, runner, model.scale, sharpResampler, { scale, tile: model.tile, overlap: model.overlap, alpha: 'model', ...windowConventions(model) });
  expect([raster.width, raster.height, raster.channels]).toEqual([input.width * scale, input.height * scale, 3]);
  // Consistency with the input: the result shrunk back to the input's size (a box filter, the
  // average over each scale×scale block) must be close to it.
  const back = await sharp(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength), { raw: { width: raster.width, height: raster.height, channels: 3 } })
    .resize(input.width, input.height, { kernel: 'linear', fastShrinkOnLoad: false })
    .raw()
    .toBuffer();
  // Compared on the interior, aligned and shifted by two input pixels each way: a model that is
  // right matches best unshifted (a wrong pad or crop convention shows as a shift), well above
  // noise. (Colour means are not compared: the reference ncnn outputs themselves move a crop's
  // mean by up to 8 levels, test/fixtures/ncnn-reference.)
  const w = input.width;
  const h = input.height;
  const inside = (i: number) => {
    const p = Math.floor(i / 3);
    const x = p % w;
    const y = Math.floor(p / w);
    return x >= 3 && y >= 3 && x < w - 3 && y < h - 3;
  };
  const shifted = (dx: number, dy: number) => Uint8Array.from({ length: back.length }, (_, i) => {
    const p = Math.floor(i / 3);
    const x = Math.min(w - 1, Math.max(0, (p % w) + dx));
    const y = Math.min(h - 1, Math.max(0, Math.floor(p / w) + dy));
    return back[(y * w + x) * 3 + (i % 3)];
  });
  const aligned = psnr(back, input.data, 255, inside).db;
  const offsets = [[2, 0], [-2, 0], [0, 2], [0, -2]].map(([dx, dy]) => psnr(shifted(dx, dy), input.data, 255, inside).db);
  expect([model.id, aligned]).toEqual([model.id, expect.any(Number)]);
  expect(aligned).toBeGreaterThan(17);
  for (const db of offsets) expect(aligned).toBeGreaterThan(db + 0.5);
});
