import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findModel } from '../../../core/catalogue';
import { OVERLAP_CANDIDATES } from '../../../core/exact-overlap';
import { readImage, sharpResampler } from '../../../core/node/image-io';
import { modelRunner } from '../../../core/node/model-runner';
import { ModelStore } from '../../../core/node/model-store';
import { autotune, CalibrationTarget, calibrationFile, tileCalibration } from '../../../core/node/tile-calibration';
import { planUpscale, runUpscalePlan } from '../../../core/modes';
import { CALIBRATION_VERSION, TileCalibration } from '../../../core/tile-tuning';
import { upscaleRaster, UpscaleOptions, windowConventions } from '../../../core/upscale';
import { maxAbsDiff, syntheticRaster } from '../../helpers';

const FAST = 'realesr-general-x4v3';
const PHOTO = path.join(__dirname, '..', '..', 'fixtures', 'photo-161x121.png');

async function target(id: string, home: string): Promise<CalibrationTarget> {
  const installed = await new ModelStore().ensureOne(id);
  return { entry: installed.entry, onnxPath: installed.onnxPath, onnxSha256: installed.sha256, provider: 'cpu', home };
}

const tempHome = () => fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-calibration-'));

function whole(id: string): Omit<UpscaleOptions, 'signal' | 'onProgress'> {
  const entry = findModel(id);
  return { scale: entry.scale, tile: 4096, overlap: 0, alpha: 'model', ...windowConventions(entry) };
}

/** One home for the realesr-general-x4v3 tests: measured by the first, read by the others. */
let fastHome: Promise<string> | undefined;
const sharedFastHome = () => (fastHome ??= tempHome());

describe('tile calibration (real model, real ONNX Runtime in a child process)', () => {
  test('measures windows once, keeps the result in a file, and a later call reads it', async () => {
    const home = await sharedFastHome();
    const t = await target(FAST, home);
    const calibration = await tileCalibration(t);
    expect(calibration).toMatchObject({ version: CALIBRATION_VERSION, model: FAST, provider: 'cpu', onnxSha256: t.onnxSha256, exactOverlap: findModel(FAST).exactOverlap });
    expect(calibration.timings.length).toBeGreaterThanOrEqual(2);
    const sides = calibration.timings.map((x) => x.side);
    expect(sides).toEqual([...sides].sort((a, b) => a - b));
    for (const x of calibration.timings) expect(x.seconds).toBeGreaterThan(0);
    // Peak memory per window pixel: at least the float32 input and output tensors (3 + 3·16 floats).
    expect(calibration.bytesPerPixel).toBeGreaterThanOrEqual(4 * (3 + 48));
    const file = calibrationFile(home, FAST, 'cpu');
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual(calibration);
  });

  test('a calibration file for the same model file is used as it is; one for another file is measured again', async () => {
    const home = await tempHome();
    const t = await target(FAST, home);
    const file = calibrationFile(home, FAST, 'cpu');
    await fs.mkdir(path.dirname(file), { recursive: true });
    const planted: TileCalibration = { version: CALIBRATION_VERSION, model: FAST, provider: 'cpu', onnxSha256: t.onnxSha256, timings: [{ side: 64, seconds: 123 }, { side: 128, seconds: 456 }], bytesPerPixel: 777, memorySource: 'rss', exactOverlap: 32 };
    await fs.writeFile(file, JSON.stringify(planted));
    expect(await tileCalibration(t)).toEqual(planted);

    const otherHome = await tempHome();
    const otherFile = calibrationFile(otherHome, FAST, 'cpu');
    await fs.mkdir(path.dirname(otherFile), { recursive: true });
    await fs.writeFile(otherFile, JSON.stringify({ ...planted, onnxSha256: 'f'.repeat(64) }));
    const measured = await tileCalibration({ ...t, home: otherHome });
    expect(measured.onnxSha256).toBe(t.onnxSha256);
    expect(measured.timings[0].seconds).toBeLessThan(123);
    expect(JSON.parse(await fs.readFile(otherFile, 'utf8'))).toEqual(measured);
  });

  test('a calibration another process writes while this one measures wins, and this process uses it: both tile alike', async () => {
    const home = await tempHome();
    const t = await target(FAST, home);
    const file = calibrationFile(home, FAST, 'cpu');
    const pending = tileCalibration(t);
    // The measuring child takes seconds; the other process finishes first.
    await new Promise((r) => setTimeout(r, 500));
    const theirs: TileCalibration = { version: CALIBRATION_VERSION, model: FAST, provider: 'cpu', onnxSha256: t.onnxSha256, timings: [{ side: 64, seconds: 9 }, { side: 128, seconds: 30 }], bytesPerPixel: 999, memorySource: 'rss', exactOverlap: 32 };
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(`${file}.other.tmp`, JSON.stringify(theirs));
    await fs.rename(`${file}.other.tmp`, file);
    expect(await pending).toEqual(theirs);
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual(theirs);
    expect((await fs.readdir(path.dirname(file))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('autotuned tiles equal the untiled result within 1/255', () => {
  test('realesr-general-x4v3: a budget that forces a grid of tiles, the catalogue overlap', async () => {
    const home = await sharedFastHome();
    const t = await target(FAST, home);
    const runner = await modelRunner(new ModelStore(), FAST, { provider: 'cpu' });
    const input = (await readImage(PHOTO)).raster;
    const calibration = await tileCalibration(t);
    // Windows of at most 120² input pixels: cores of up to 56 with 32 of context on both sides.
    const budget = calibration.bytesPerPixel * 120 * 120;
    const tuned = await autotune(t, runner, { width: input.width, height: input.height, scale: 4 }, budget);
    expect(tuned.choice.windows).toBeGreaterThanOrEqual(4);
    expect(tuned.choice.windowBytes).toBeLessThanOrEqual(budget);
    expect(tuned.overlap).toBe(findModel(FAST).exactOverlap);
    const tiled = await upscaleRaster(input, runner, 4, sharpResampler, { ...whole(FAST), tile: tuned.tile, overlap: tuned.overlap });
    const untiled = await upscaleRaster(input, runner, 4, sharpResampler, whole(FAST));
    expect(tiled.tiles).toBe(tuned.choice.windows);
    expect(maxAbsDiff(tiled.raster, untiled.raster)).toBeLessThanOrEqual(1);
  });

  test('realesr-animevideov3-x2 (no catalogue figure): the overlap is measured on the probes, kept, and holds on another photo', async () => {
    const id = 'realesr-animevideov3-x2';
    expect(findModel(id).exactOverlap).toBeUndefined();
    const home = await tempHome();
    const t = await target(id, home);
    const runner = await modelRunner(new ModelStore(), id, { provider: 'cpu' });
    const input = (await readImage(PHOTO)).raster;
    const calibration = await tileCalibration(t);
    expect(calibration.exactOverlap).toBeUndefined();
    const budget = calibration.bytesPerPixel * 100 * 100;
    const tuned = await autotune(t, runner, { width: input.width, height: input.height, scale: 2 }, budget);
    expect(tuned.choice.windows).toBeGreaterThanOrEqual(4);
    expect(OVERLAP_CANDIDATES).toContain(tuned.overlap);
    const kept = JSON.parse(await fs.readFile(calibrationFile(home, id, 'cpu'), 'utf8')) as TileCalibration;
    expect(kept.exactOverlap).toBe(tuned.overlap);
    expect(kept.overlapInexact).toBeUndefined();

    const tiled = await upscaleRaster(input, runner, 2, sharpResampler, { ...whole(id), tile: tuned.tile, overlap: tuned.overlap });
    const untiled = await upscaleRaster(input, runner, 2, sharpResampler, whole(id));
    expect(maxAbsDiff(tiled.raster, untiled.raster)).toBeLessThanOrEqual(1);
    // The measurement has teeth: one candidate less is visibly off on this photo's grid.
    const less = OVERLAP_CANDIDATES[OVERLAP_CANDIDATES.indexOf(tuned.overlap as (typeof OVERLAP_CANDIDATES)[number]) - 1];
    const loose = await upscaleRaster(input, runner, 2, sharpResampler, { ...whole(id), tile: tuned.tile, overlap: less });
    expect(maxAbsDiff(loose.raster, untiled.raster)).toBeGreaterThan(1);
  });

  test('a squeeze-excitation model has no exact overlap: the catalogue overlap is used and the calibration says so', async () => {
    const id = 'waifu2x-cunet-2x';
    const home = await tempHome();
    const t = await target(id, home);
    const runner = await modelRunner(new ModelStore(), id, { provider: 'cpu' });
    const calibration = await tileCalibration(t);
    const tuned = await autotune(t, runner, { width: 400, height: 300, scale: 2 }, calibration.bytesPerPixel * 150 * 150);
    expect(tuned.choice.windows).toBeGreaterThan(1);
    expect(tuned.overlap).toBe(findModel(id).overlap);
    expect(JSON.parse(await fs.readFile(calibrationFile(home, id, 'cpu'), 'utf8'))).toMatchObject({ exactOverlap: findModel(id).overlap, overlapInexact: true });
  });

  test('the pipeline tunes when the request leaves tile and overlap out, and keeps what it sets', async () => {
    // 300×200 at 4x: more than a 64 MiB budget's window holds.
    const input = syntheticRaster(300, 200);
    const store = new ModelStore();
    const previous = process.env.UPBRIDGE_TILE_MEMORY_MIB;
    const run = (raw: Record<string, unknown>) => runUpscalePlan(input, planUpscale({ model: FAST, scale: 4, ...raw }), { runnerFor: (m) => modelRunner(store, m.id, { provider: 'cpu' }), resampler: sharpResampler });
    try {
      process.env.UPBRIDGE_TILE_MEMORY_MIB = '64';
      const tuned = await run({});
      expect(tuned.report.tiles).toBeGreaterThan(1);
      const fixed = await run({ tile: 4096, overlap: 0 });
      expect(fixed.report.tiles).toBe(1);
      expect(maxAbsDiff(tuned.raster, fixed.raster)).toBeLessThanOrEqual(1);
    } finally {
      if (previous === undefined) delete process.env.UPBRIDGE_TILE_MEMORY_MIB;
      else process.env.UPBRIDGE_TILE_MEMORY_MIB = previous;
    }
  });
});
