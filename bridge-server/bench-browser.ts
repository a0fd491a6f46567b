import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import sharp from 'sharp';
import { findModel } from '../core/catalogue';
import { psnr } from '../core/metrics';
import { ModelStore } from '../core/node/model-store';
import { ortRunner } from '../core/node/ort-session';
import { upscaleRaster, windowConventions } from '../core/upscale';
import { ORT_WASM_FILE, ORT_WASM_GLUE_FILE, ORT_WEBGPU_WASM_FILE } from '../core/web/ort-files';
import { WEB_DEFAULT_MODEL } from '../core/web/web-model';
import { WEB_TILE } from '../core/web/web-upscale';
import type { BrowserBenchRequest, BrowserBenchRun } from './bench-browser-page';

/**
 * `upbridge bench`'s browser section (issue 10): the in-browser engine (core/web on onnxruntime-web
 * in Debian's headless Chromium, as the Figma plugin and the page run it) against onnxruntime-node
 * on the CPU, on the same size×size crop of the bench photo with the same model and tiling, in
 * output megapixels per second (a warm run each; the first browser run, which compiles kernels,
 * is reported beside it); the PSNR between the two outputs; and what a user downloads: the plugin
 * bundle, ORT's .wasm and the model. Chromium's WebGPU is tried as the products try it (an adapter,
 * else wasm); without a GPU it has none, and the reason is reported instead of a figure.
 */
const ROOT = path.resolve(__dirname, '..');
const CHROMIUM = '/usr/bin/chromium';

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
const fileBytes = (file: string) => (existsSync(file) ? statSync(file).size : undefined);

function ortDist(): string {
  return path.dirname(require.resolve('onnxruntime-web'));
}

/** What is downloaded or shipped, in bytes. */
async function sizes(store: ModelStore) {
  const fp32 = await store.ensureOne(WEB_DEFAULT_MODEL);
  const fp16 = await store.ensureVariant(WEB_DEFAULT_MODEL, 'fp16');
  const figma = ['code.js', 'ui.html'].map((f) => fileBytes(path.join(ROOT, 'dist', 'figma', f)));
  return {
    figmaPluginBytes: figma.every((n) => n !== undefined) ? figma.reduce((a, b) => a! + b!, 0) : undefined,
    figmaUiHtmlBytes: figma[1],
    pagePageJsBytes: fileBytes(path.join(ROOT, 'dist', 'page', 'page.js')),
    ortWasmBytes: fileBytes(path.join(ortDist(), ORT_WASM_FILE)),
    ortWebGpuWasmBytes: fileBytes(path.join(ortDist(), ORT_WEBGPU_WASM_FILE)),
    modelFp32OnnxBytes: statSync(fp32.onnxPath).size,
    modelFp16OnnxBytes: statSync(fp16.onnxPath).size,
  };
}

export async function runBrowserBenchmark(size: number, imagePath: string) {
  const entry = findModel(WEB_DEFAULT_MODEL);
  const store = new ModelStore();
  const installed = await store.ensureOne(WEB_DEFAULT_MODEL);
  const { data, info } = await sharp(imagePath).removeAlpha().resize(size, size, { fit: 'cover' }).raw().toBuffer({ resolveWithObject: true });
  const input = { width: info.width, height: info.height, channels: 3 as const, depth: 8 as const, data: new Uint8Array(data) };
  const outputMegapixels = (input.width * 4 * input.height * 4) / 1e6;
  // The browser's tiling (core/web's default) for both, so the two runs infer the same windows.
  const tiling = { tile: Math.min(entry.tile, WEB_TILE), overlap: entry.overlap };

  const runner = await ortRunner(installed.onnxPath, { provider: 'cpu' });
  const noResize = { resize: () => Promise.reject(new Error('no resize at the model scale')) };
  const nodeRun = () => upscaleRaster(input, runner, entry.scale, noResize, { ...windowConventions(entry), scale: 4, ...tiling, alpha: 'model' });
  await nodeRun();
  const nodeStart = performance.now();
  const node = await nodeRun();
  const nodeSeconds = (performance.now() - nodeStart) / 1000;
  const nodeResult = { provider: runner.provider, seconds: round(nodeSeconds, 3), outputMegapixelsPerSecond: round(outputMegapixels / nodeSeconds, 3) };

  const base = { model: WEB_DEFAULT_MODEL, input: `${size}x${size}`, ...tiling, node: nodeResult, sizes: await sizes(store) };
  const script = path.join(ROOT, 'dist', 'bench-web', 'bench.js');
  if (!existsSync(script)) return { ...base, skipped: 'dist/bench-web/bench.js is missing: run npm run build' };
  if (!existsSync(CHROMIUM)) return { ...base, skipped: `${CHROMIUM} not found (apt-get install chromium)` };
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch {
    return { ...base, skipped: 'playwright-core is not installed (a dev dependency: npm ci in the checkout)' };
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (type: string, body: Buffer | string) => res.writeHead(200, { 'content-type': type }).end(body);
    if (url.pathname === '/') send('text/html', '<!doctype html><link rel="icon" href="data:,"><script src="/bench.js"></script>');
    // The same page cross-origin isolated, as the bridge's own page is: wasm may use threads.
    else if (url.pathname === '/isolated/') {
      res.writeHead(200, { 'content-type': 'text/html', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }).end('<!doctype html><link rel="icon" href="data:,"><script src="/bench.js"></script>');
    } else if (url.pathname === `/ort/${ORT_WASM_GLUE_FILE}`) send('text/javascript', readFileSync(path.join(ortDist(), ORT_WASM_GLUE_FILE)));
    else if (url.pathname === '/bench.js') send('text/javascript', readFileSync(script));
    else if (url.pathname === '/model.onnx') send('application/octet-stream', readFileSync(installed.onnxPath));
    else if (url.pathname === `/ort/${ORT_WASM_FILE}` || url.pathname === `/ort/${ORT_WEBGPU_WASM_FILE}`) send('application/wasm', readFileSync(path.join(ortDist(), path.basename(url.pathname))));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pin = (name: string) => ({ name, urls: [`${origin}/ort/${name}`], sha256: createHash('sha256').update(readFileSync(path.join(ortDist(), name))).digest('hex') });
  const browser = await playwright.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 30_000 });
  try {
    const page = await browser.newPage();
    await page.goto(origin);
    await page.waitForFunction(() => 'upbridgeBench' in window, undefined, { timeout: 30_000 });
    const request: BrowserBenchRequest = { ...tiling, width: input.width, height: input.height, pixels: Buffer.from(input.data).toString('base64'), provider: 'auto', modelUrl: `${origin}/model.onnx`, files: { wasm: pin(ORT_WASM_FILE), webgpu: pin(ORT_WEBGPU_WASM_FILE) } };
    // page.evaluate has no timeout of its own: a hung GPU process must fail the bench, not stall it.
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      page.evaluate((r) => (window as unknown as { upbridgeBench: { run(r: BrowserBenchRequest): Promise<BrowserBenchRun> } }).upbridgeBench.run(r), request),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the browser run took over 10 minutes')), 600_000))),
    ]).finally(() => clearTimeout(timer));
    const pixels = Buffer.from(result.pixels, 'base64');
    // wasm with threads on the isolated page (the bridge's page): threads only change the speed.
    const isolatedPage = await browser.newPage();
    await isolatedPage.goto(`${origin}/isolated/`);
    await isolatedPage.waitForFunction(() => 'upbridgeBench' in window, undefined, { timeout: 30_000 });
    const threaded = await isolatedPage.evaluate(
      (r) => (window as unknown as { upbridgeBench: { run(r: BrowserBenchRequest): Promise<BrowserBenchRun> } }).upbridgeBench.run(r),
      { ...request, provider: 'wasm' as const, files: { ...request.files, wasmGlue: pin(ORT_WASM_GLUE_FILE) } },
    );
    const wasmThreaded = {
      threads: threaded.threads,
      crossOriginIsolated: threaded.crossOriginIsolated,
      seconds: round(threaded.seconds, 3),
      outputMegapixelsPerSecond: round(outputMegapixels / threaded.seconds, 3),
      psnrAgainstNodeDb: round(psnr(Buffer.from(threaded.pixels, 'base64'), node.raster.data, 255).db, 2),
    };
    const browserRun = {
      provider: result.provider,
      precision: result.precision,
      threads: result.threads,
      crossOriginIsolated: result.crossOriginIsolated,
      setupSeconds: round(result.setupSeconds, 3),
      firstRunSeconds: round(result.firstRunSeconds, 3),
      seconds: round(result.seconds, 3),
      outputMegapixelsPerSecond: round(outputMegapixels / result.seconds, 3),
      tiles: result.tiles,
      secondsPerTile: round(result.seconds / result.tiles, 3),
      psnrAgainstNodeDb: round(psnr(pixels, node.raster.data, 255).db, 2),
    };
    return {
      ...base,
      userAgent: await page.evaluate(() => navigator.userAgent),
      wasm: result.provider === 'wasm' ? browserRun : undefined,
      webgpu: result.provider === 'webgpu' ? browserRun : { ran: false, reason: result.fallbackReason ?? 'not tried' },
      nodeOverBrowser: round(browserRun.seconds / nodeSeconds, 2),
      /** On a cross-origin-isolated page (the bridge's own page; not Figma's iframe). */
      wasmThreaded: { ...wasmThreaded, overOneThread: result.provider === 'wasm' ? round(browserRun.seconds / wasmThreaded.seconds, 2) : undefined },
    };
  } finally {
    await browser.close().catch(() => {});
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export type BrowserBenchResult = Awaited<ReturnType<typeof runBrowserBenchmark>>;
