import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { freePort } from './bridge-harness';
import { buildBridge, Bridge } from '../../bridge-server/app';
import { nodeEngine } from '../../bridge-server/engine';
import { Pairing, TokenStore } from '../../bridge-server/tokens';
import { CHROMIUM, progressLog, recordProgress, requireChromium, STEP_MS, within } from '../browser';

/**
 * The page's "in this browser" switch: the same image through the bridge (onnxruntime-node) and
 * through the page itself (core/web on onnxruntime-web's wasm, the model and .wasm served by the
 * bridge and checked against the hashes pinned in the page), shown one after the other, with the
 * PSNR between the two results. Needs `npm run build` (dist/page) and /usr/bin/chromium.
 */
const ROOT = path.join(__dirname, '..', '..');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'ncnn-reference', 'input-a.png');
const PHOTO = path.join(ROOT, 'test', 'fixtures', 'photo-161x121.png');

jest.setTimeout(180_000);

let tmpDir: string;
let bridge: Bridge;
let baseUrl: string;
let browser: Browser | undefined;

beforeAll(async () => {
  requireChromium();
  if (!existsSync(path.join(ROOT, 'dist', 'page', 'page.js'))) throw new Error('dist/page is missing: run npm run build first');
  tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-page-web-'));
  const port = await freePort();
  const tokens = new TokenStore(tmpDir);
  bridge = await buildBridge({ port }, { engine: nodeEngine(), tokens, pairing: new Pairing(tokens) });
  await bridge.app.listen({ port, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${port}/`;
  browser = await within(chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'], timeout: STEP_MS }), STEP_MS + 5_000, 'launching chromium');
}, 60_000);

afterAll(async () => {
  await within(browser?.close() ?? Promise.resolve(), 15_000, 'closing chromium').catch(() => {});
  await bridge?.app.close();
  if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
});

async function run(page: Page): Promise<void> {
  await page.locator('#upscale').click();
  // The last run's "done" stays until this run starts: wait for it to go first.
  await page.locator('#progress:not([data-state="done"]), #message:not([hidden])').first().waitFor({ state: 'attached' });
  await page.locator('#progress[data-state="done"], #message:not([hidden])').first().waitFor({ state: 'attached', timeout: 150_000 });
  if (await page.locator('#message').isVisible()) throw new Error(`the page failed: ${await page.locator('#message').textContent()}`);
}

test('the same image on the bridge, then in this browser: both shown, the engine named, the two within PSNR ≥ 45 dB', async () => {
  const context = await browser!.newContext({ viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(STEP_MS);
  const pageErrors: string[] = [];
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(baseUrl);
    await page.locator('#connection[data-state="paired"]').waitFor();
    await page.locator('#file').setInputFiles(SAMPLE);
    await page.locator('#model').selectOption('realesr-general-x4v3');
    await page.locator('#scale').selectOption('4');
    // The same tiling for both engines: 16 px tiles, 8 px overlap (6 tiles of the 40×32 sample).
    await page.locator('.advanced summary').click();
    await page.locator('#tile').fill('16');
    await page.locator('#overlap').fill('8');

    await run(page);
    await expect(page.locator('#engine').textContent()).resolves.toBe('the bridge (onnxruntime-node)');
    await expect(page.locator('#engine-psnr').count()).resolves.toBe(0);

    await page.locator('#in-browser').check();
    // The bridge's own choices do not apply in the browser: the fast model, 4x, alone.
    for (const id of ['#mode', '#model', '#scale', '#tta', '#map']) await expect(page.locator(id).isDisabled()).resolves.toBe(true);
    await expect(page.locator('#tile').isEnabled()).resolves.toBe(true);
    await run(page);
    // Chromium here has no GPU (--disable-gpu): the engine says why it ran on wasm. The page is
    // cross-origin isolated, so wasm runs on a thread per core (at most 4).
    await expect(page.evaluate(() => self.crossOriginIsolated)).resolves.toBe(true);
    const threads = Math.min(os.cpus().length, 4);
    await expect(page.locator('#engine').textContent()).resolves.toBe(`this browser (onnxruntime-web: wasm, ${threads} thread${threads === 1 ? '' : 's'}; no WebGPU adapter)`);
    await expect(page.locator('#result-info').textContent()).resolves.toMatch(/^160 × 128 px/);
    const against = await page.locator('#engine-psnr').textContent();
    const db = against === 'identical pixels' ? Infinity : Number(/^PSNR ([\d.]+) dB$/.exec(against ?? '')?.[1]);
    console.log(`page: this browser vs the bridge on the same image: ${against}`);
    expect(db).toBeGreaterThanOrEqual(45);
    await expect(page.locator('#report').textContent()).resolves.toContain("Against the bridge's result");
    expect(pageErrors).toEqual([]);
  } finally {
    await within(context.close(), 15_000, 'closing the context').catch(() => {});
  }
});

test('Cancel stops a run in this browser within a tile, and the page is ready for the next', async () => {
  const context = await browser!.newContext({ viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(STEP_MS);
  try {
    const page = await context.newPage();
    await page.goto(baseUrl);
    await page.locator('#connection[data-state="paired"]').waitFor();
    // 161×121 in 24 px tiles: 7 × 6 = 42 tiles, far more than can finish while Cancel is clicked.
    await page.locator('#file').setInputFiles(PHOTO);
    await page.locator('.advanced summary').click();
    await page.locator('#tile').fill('24');
    await page.locator('#overlap').fill('8');
    await page.locator('#in-browser').check();
    await recordProgress(page);
    await page.locator('#upscale').click();
    // Any tile done, not "1 of 42" exactly: 40² windows take a fraction of a second, so the text
    // can pass "1 of 42" between two polls (it did: the wait then ran out at 120 s in CI).
    await page.locator('#progress-text', { hasText: /^[1-9]\d* of 42 tiles/ }).waitFor({ timeout: 240_000 });
    await page.locator('#cancel').click();
    await page.locator('#progress[data-state="cancelled"]').waitFor({ state: 'attached', timeout: 60_000 });
    await expect(page.locator('#progress-text').textContent()).resolves.toBe('Cancelled.');
    // At most the tile already running when Cancel was clicked finishes after it.
    const log = await progressLog(page);
    const tiles = (texts: string[]) => texts.map((t) => Number(/^(\d+) of 42 tiles/.exec(t)?.[1])).filter((n) => !Number.isNaN(n));
    const afterCancel = tiles(log.slice(log.indexOf('Cancelling…') + 1));
    expect(log).toContain('Cancelling…');
    expect(afterCancel.length).toBeLessThanOrEqual(1);
    expect(Math.max(...tiles(log))).toBeLessThan(42);
    await expect(page.locator('#message').isHidden()).resolves.toBe(true);
    await expect(page.locator('#upscale').isEnabled()).resolves.toBe(true);
  } finally {
    await within(context.close(), 15_000, 'closing the context').catch(() => {});
  }
}, 360_000);

test("the routes serve only ORT's runtime files (two .wasm builds, the glue) and the web model, without a token", async () => {
  const wasm = await fetch(`${baseUrl}web/ort/ort-wasm-simd-threaded.wasm`);
  expect([wasm.status, wasm.headers.get('content-type')]).toEqual([200, 'application/wasm']);
  expect((await wasm.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000);
  const glue = await fetch(`${baseUrl}web/ort/ort-wasm-simd-threaded.mjs`);
  expect([glue.status, glue.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
  expect((await fetch(`${baseUrl}web/ort/ort.node.min.js`)).status).toBe(404);
  expect((await fetch(`${baseUrl}web/ort/..%2F..%2Fpackage.json`)).status).toBe(404);
  expect((await fetch(`${baseUrl}web/models/realesr-general-x4v3.onnx`)).status).toBe(200);
  expect((await fetch(`${baseUrl}web/models/realesrgan-x4plus.onnx`)).status).toBe(404);
});
