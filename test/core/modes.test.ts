import { catalogue, findModel, ModelEntry, modelForMode } from '../../core/catalogue';
import { colourFixToInput } from '../../core/fidelity/colour-fix';
import { projectToInput } from '../../core/fidelity/consistency';
import { lrPsnr } from '../../core/fidelity/degradation';
import { psnr } from '../../core/metrics';
import { checkModeLimits, MODE_LIMITS, ModeRuntime, planUpscale, resultModel, runUpscalePlan, stagesFor } from '../../core/modes';
import { sharpResampler } from '../../core/node/image-io';
import { Raster } from '../../core/raster';
import { plannedTiles, upscaleRaster, validateUpscaleOptions } from '../../core/upscale';
import { thrown } from '../helpers';
import { crop, fixture, runner } from './fidelity/kit';

const PHOTO = { fidelity: modelForMode('photo', 'fidelity').id, balanced: modelForMode('photo', 'balanced').id, creative: modelForMode('photo', 'creative').id };

function runtime(extra: Partial<ModeRuntime> = {}): ModeRuntime & { ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    runnerFor: async (m: ModelEntry) => {
      ran.push(m.id);
      return runner(m.id);
    },
    resampler: sharpResampler,
    ...extra,
  };
}

/** The pipeline of one model with its catalogue defaults, as a request naming it would run. */
async function plain(input: Raster, id: string, scale = 4): Promise<Raster> {
  const entry = findModel(id);
  return (await upscaleRaster(input, await runner(id), entry.scale, sharpResampler, validateUpscaleOptions({ scale }, entry))).raster;
}

const samePsnr = (a: Raster, b: Raster) => psnr(a.data, b.data, 255).db;

describe('planUpscale: options validated once, with errors naming the option and its range', () => {
  test.each([
    [{ mode: 'sharp' }, /mode must be one of fidelity, balanced, creative, got "sharp"/],
    [{ creativity: '0.5' }, /creativity must be used with a mode/],
    [{ mode: 'creative', creativity: '1.5' }, /creativity must be a number from 0 to 1, got "1.5"/],
    [{ mode: 'creative', creativity: '0.5', model: 'realesrgan-x4plus' }, /model must be left out when creativity is between 0 and 1/],
    [{ mode: 'fidelity', tta: '3' }, /tta must be/],
    [{ mode: 'fidelity', content: 'anime' }, /content must be one of auto, photo, illustration, got "anime"/],
    [{ map: 'yes' }, /map must be true or false, got "yes"/],
    [{ consistent: 'maybe' }, /consistent must be true or false/],
    [{ mode: 'fidelity', scale: '32' }, /scale must be a number from 1 to 16/],
    [{ mode: 'fidelity', tile: '8' }, /tile must be an integer from 16 to 4096/],
  ])('%j is refused', (raw, message) => {
    const e = thrown(() => planUpscale(raw));
    expect(e.code).toBe('UPB_INVALID_OPTION');
    expect(e.message).toMatch(message);
  });

  test('defaults: creativity and consistency follow the mode; no mode runs the model alone', () => {
    expect(planUpscale({ mode: 'fidelity' })).toMatchObject({ creativity: 0, consistent: true, projectEnds: true, map: false, content: 'auto', scale: 4 });
    expect(planUpscale({ mode: 'creative' })).toMatchObject({ creativity: 1, consistent: false, projectEnds: true });
    expect(planUpscale({ mode: 'balanced' }).creativity).toBeUndefined();
    expect(planUpscale({ mode: 'balanced', creativity: 0.3 }).creativity).toBe(0.3);
    expect(planUpscale({ mode: 'fidelity', consistent: 'false' })).toMatchObject({ consistent: false, projectEnds: false });
    expect(planUpscale({})).toMatchObject({ mode: undefined, creativity: undefined, consistent: false });
    expect(planUpscale({ tta: '0' }).tta).toBeUndefined();
    expect(planUpscale({ tta: 8 }).tta).toBe(8);
  });

  test('which models run: only the ends creativity needs, the fidelity model for a map, by content', () => {
    const ids = (raw: Parameters<typeof planUpscale>[0], content: 'photo' | 'illustration' = 'photo') => stagesFor(planUpscale(raw), content).map((s) => `${s.role}:${s.model.id}`);
    expect(ids({ mode: 'fidelity' })).toEqual([`fidelity:${PHOTO.fidelity}`]);
    expect(ids({ mode: 'creative' })).toEqual([`creative:${PHOTO.creative}`]);
    expect(ids({ mode: 'creative', map: true })).toEqual([`fidelity:${PHOTO.fidelity}`, `creative:${PHOTO.creative}`]);
    expect(ids({ mode: 'balanced' })).toEqual([`result:${PHOTO.balanced}`]);
    expect(ids({ mode: 'balanced', creativity: 0.5 })).toEqual([`fidelity:${PHOTO.fidelity}`, `creative:${PHOTO.creative}`]);
    expect(ids({ mode: 'creative', model: 'realesr-general-x4v3' })).toEqual(['creative:realesr-general-x4v3']);
    expect(ids({})).toEqual([`result:${catalogue.defaultModel}`]);
    expect(ids({ map: true })).toEqual([`result:${catalogue.defaultModel}`, `fidelity:${PHOTO.fidelity}`]);
    const ill = catalogue.modeDefaults.illustration;
    expect(ids({ mode: 'creative' }, 'illustration')).toEqual([`creative:${ill.creative}`]);
    expect(ids({ mode: 'fidelity' }, 'illustration')).toEqual([`fidelity:${ill.fidelity}`]);
    expect(resultModel(planUpscale({ mode: 'fidelity' }), 'photo').id).toBe(PHOTO.fidelity);
    expect(resultModel(planUpscale({ mode: 'balanced', creativity: 0.2 }), 'photo').id).toBe(PHOTO.creative);
  });

  test('the float steps are refused up front beyond their output limit, naming it', () => {
    const side = Math.ceil(Math.sqrt(MODE_LIMITS.maxOutputPixels) / 4) + 1;
    const e = thrown(() => checkModeLimits(planUpscale({ mode: 'fidelity' }), side, side));
    expect(e.code).toBe('UPB_TOO_LARGE');
    expect(e.message).toMatch(/mode fidelity works on outputs up to 64 MP/);
    expect(() => checkModeLimits(planUpscale({}), side, side)).not.toThrow();
    expect(() => checkModeLimits(planUpscale({ map: true }), side, side)).toThrow(/map works on outputs up to/);
  });
});

describe('runUpscalePlan on real models', () => {
  let input: Raster;
  beforeAll(async () => {
    input = crop(await fixture('photo-161x121.png'), 60, 40, 28, 24);
  });

  test('fidelity: the fidelity model, colour-fixed and projected; LR-PSNR ≥ 45 dB, reported', async () => {
    const rt = runtime();
    const out = await runUpscalePlan(input, planUpscale({ mode: 'fidelity', content: 'photo' }), rt);
    expect(rt.ran).toEqual([PHOTO.fidelity]);
    const expected = projectToInput(await colourFixToInput(await plain(input, PHOTO.fidelity), input, sharpResampler), input);
    expect(Buffer.compare(Buffer.from(out.raster.data), Buffer.from(expected.data))).toBe(0);
    expect(out.report.lrPsnr).toBeGreaterThanOrEqual(45);
    expect(out.report).toMatchObject({ mode: 'fidelity', content: 'photo', contentDetected: false, creativity: 0, consistent: true, models: { fidelity: PHOTO.fidelity } });
    expect(out.map).toBeUndefined();
  });

  test('creative: the GAN, colour-fixed, not projected: it strays from the input more than fidelity', async () => {
    const out = await runUpscalePlan(input, planUpscale({ mode: 'creative', content: 'photo' }), runtime());
    const expected = await colourFixToInput(await plain(input, PHOTO.creative), input, sharpResampler);
    expect(Buffer.compare(Buffer.from(out.raster.data), Buffer.from(expected.data))).toBe(0);
    expect(out.report.lrPsnr).toBeCloseTo(lrPsnr(out.raster, input), 1);
    expect(out.report.lrPsnr).toBeLessThan(45);
    expect(out.report.consistent).toBe(false);
  });

  test('consistent=true projects the creative result too; balanced is the fast model alone', async () => {
    const projected = await runUpscalePlan(input, planUpscale({ mode: 'creative', content: 'photo', consistent: true }), runtime());
    expect(projected.report.lrPsnr).toBeGreaterThanOrEqual(45);
    const rt = runtime();
    const balanced = await runUpscalePlan(input, planUpscale({ mode: 'balanced', content: 'photo' }), rt);
    expect(rt.ran).toEqual([PHOTO.balanced]);
    expect(balanced.report.models).toEqual({ result: PHOTO.balanced });
    expect(balanced.report.creativity).toBeUndefined();
  });

  test('creativity moves the result monotonically from the fidelity result to the creative result', async () => {
    const steps = [0, 0.25, 0.5, 0.75, 1];
    const results: Raster[] = [];
    for (const c of steps) results.push((await runUpscalePlan(input, planUpscale({ mode: 'creative', content: 'photo', creativity: c }), runtime())).raster);
    const [fid, , , , cre] = results;
    const toFid = results.map((r) => samePsnr(r, fid));
    const toCre = results.map((r) => samePsnr(r, cre));
    expect(toFid[0]).toBe(Infinity);
    expect(toCre[4]).toBe(Infinity);
    for (let k = 1; k < steps.length; k++) {
      expect(toFid[k]).toBeLessThan(toFid[k - 1]);
      expect(toCre[k]).toBeGreaterThan(toCre[k - 1]);
    }
    // The fidelity end is the fidelity mode's result, the creative end the creative mode's.
    const fidelityMode = await runUpscalePlan(input, planUpscale({ mode: 'fidelity', content: 'photo' }), runtime());
    expect(samePsnr(fid, fidelityMode.raster)).toBe(Infinity);
  });

  test('map: output size, darker for the fidelity result than for the creative one, summary reported', async () => {
    const creative = await runUpscalePlan(input, planUpscale({ mode: 'creative', content: 'photo', map: true }), runtime());
    const fidelity = await runUpscalePlan(input, planUpscale({ mode: 'fidelity', content: 'photo', map: true }), runtime());
    for (const r of [creative, fidelity]) {
      expect([r.map!.width, r.map!.height]).toEqual([r.raster.width, r.raster.height]);
      expect(r.report.map!.mean).toBeCloseTo(r.map!.data.reduce((a, b) => a + b, 0) / r.map!.data.length, 6);
    }
    expect(creative.report.map!.mean).toBeGreaterThan(2 * fidelity.report.map!.mean);
    expect(creative.report.models).toEqual({ fidelity: PHOTO.fidelity, creative: PHOTO.creative });
  });

  test('tta: every model run is averaged; progress counts every tile of every run, in order, to the total', async () => {
    const seen: Array<{ done: number; total: number }> = [];
    const rt = runtime({ onProgress: (p) => seen.push(p) });
    const out = await runUpscalePlan(input, planUpscale({ mode: 'creative', content: 'photo', tta: 4, map: true, tile: 16 }), rt);
    expect(rt.ran).toEqual([PHOTO.fidelity, PHOTO.creative]);
    const total = seen[0].total;
    expect(total).toBe(out.report.tiles);
    // Four views of each model, each view every tile of every pass of that model (16-px tiles).
    const perView = [PHOTO.fidelity, PHOTO.creative].map((id) => plannedTiles(input, findModel(id).scale, { scale: 4, tile: 16, alpha: 'model' }));
    expect(total).toBe(4 * (perView[0] + perView[1]));
    expect(seen.at(-1)).toEqual({ done: total, total });
    for (let k = 1; k < seen.length; k++) expect(seen[k].done).toBeGreaterThanOrEqual(seen[k - 1].done);
    expect(out.report.tta).toBe(4);
  });

  test('content auto is detected and reported; alpha is kept', async () => {
    const rgba: Raster = { width: input.width, height: input.height, channels: 4, depth: 8, data: new Uint8Array(input.width * input.height * 4) };
    for (let i = 0; i < input.width * input.height; i++) {
      rgba.data.set(input.data.subarray(i * 3, i * 3 + 3), i * 4);
      rgba.data[i * 4 + 3] = i % input.width < input.width / 2 ? 255 : 0;
    }
    const out = await runUpscalePlan(rgba, planUpscale({ mode: 'fidelity', alpha: 'lanczos' }), runtime());
    expect(out.report).toMatchObject({ content: 'photo', contentDetected: true });
    expect(out.raster.channels).toBe(4);
    // Left half opaque, right half transparent, as in the input (Lanczos may ring at the edge only).
    expect(out.raster.data[3]).toBe(255);
    expect(out.raster.data[(out.raster.width - 1) * 4 + 3]).toBe(0);
    expect(out.report.lrPsnr).toBeGreaterThanOrEqual(45);
  });

  test('a cancel stops the plan with UPB_CANCELLED', async () => {
    const controller = new AbortController();
    const rt = runtime({ signal: controller.signal, onProgress: (p) => p.done >= 1 && controller.abort() });
    await expect(runUpscalePlan(input, planUpscale({ mode: 'creative', content: 'photo', tile: 16 }), rt)).rejects.toMatchObject({ code: 'UPB_CANCELLED' });
  });
});
