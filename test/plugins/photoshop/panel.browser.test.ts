/**
 * The panel's real code in Chromium, against the simulated Photoshop host and a real bridge on
 * loopback: finding the bridge, pairing with the code, upscaling a selection into a new document
 * with progress, cancelling, the message when the bridge is down, and the Mode picker with its
 * creativity slider. Also renders the panel for the README's screenshots (UPBRIDGE_SCREENSHOTS=<dir>
 * writes screenshot-panel-pairing.png, screenshot-panel.png and screenshot-panel-mode.png there).
 */
import { promises as fs, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { Browser, chromium, Page } from 'playwright-core';
import sharp from 'sharp';
import { FAST_MODEL, freePort, GatedEngine, startBridge, TestBridge, waitFor } from '../../bridge-server/bridge-harness';
import type { Raster } from '../../../core/raster';
import type { JobReport } from '../../../plugins/shared/bridge-client';
import { fingerprint } from './fingerprint';
import { CHROMIUM, requireChromium, STEP_MS, within } from '../../browser';

const ROOT = path.join(__dirname, '..', '..', '..');
const PHOTO = path.join(ROOT, 'test', 'fixtures', 'photo-161x121.png');

jest.setTimeout(90_000);


let dir: string;
let server: http.Server;
let pageUrl: string;
let engine: GatedEngine;
let bridge: TestBridge;
let browser: Browser | undefined;
let page: Page;
let photo: { width: number; height: number; data: number[] };

beforeAll(async () => {
  requireChromium();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-panel-'));
  await build({
    entryPoints: [path.join(__dirname, 'panel-preview.ts')],
    outfile: path.join(dir, 'preview.js'),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2020',
    alias: { photoshop: path.join(__dirname, 'sim', 'photoshop.ts'), uxp: path.join(__dirname, 'sim', 'uxp.ts') },
    logLevel: 'error',
  });
  // The plugin's own page, with the preview script in place of the bundle.
  const html = readFileSync(path.join(ROOT, 'plugins', 'photoshop', 'index.html'), 'utf8')
    .replace('<script src="index.js"></script>', '<script src="preview.js"></script>')
    .replace('</head>', '<link rel="icon" href="data:,"><link rel="stylesheet" href="preview.css"></head>');
  await fs.writeFile(path.join(dir, 'index.html'), html);
  await fs.copyFile(path.join(__dirname, 'panel-preview.css'), path.join(dir, 'preview.css'));
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
  server = http.createServer(async (req, res) => {
    const file = path.join(dir, path.basename(new URL(req.url ?? '/', 'http://x').pathname) || 'index.html');
    const body = await fs.readFile(file).catch(() => null);
    res.writeHead(body ? 200 : 404, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(body ?? '');
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${port}/`;
  engine = new GatedEngine();
  // The page's origin stands in for UXP's; what the bridge allows for UXP is tested over HTTP.
  bridge = await startBridge({ engine, extraOrigins: [pageUrl.slice(0, -1)] });
  const decoded = await sharp(PHOTO).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  // Two copies side by side: wider than one 256 px tile, so progress has steps.
  const width = decoded.info.width * 2;
  const data: number[] = [];
  for (let y = 0; y < decoded.info.height; y++) {
    const row = Array.from(decoded.data.subarray(y * decoded.info.width * 3, (y + 1) * decoded.info.width * 3));
    data.push(...row, ...row);
  }
  photo = { width, height: decoded.info.height, data };
  browser = await within(chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }), STEP_MS, 'launching chromium');
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await bridge?.close();
  server?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  engine.open();
  page = await browser!.newPage({ viewport: { width: 300, height: 500 }, deviceScaleFactor: 2 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  if (process.env.DEBUG_PANEL) page.on('console', (m) => console.log('PAGE', m.type(), m.text()));
  if (process.env.DEBUG_PANEL) page.on('pageerror', (e) => console.log('PAGEERROR', e));
  if (process.env.DEBUG_PANEL) page.on('request', (r) => console.log('REQ', r.method(), r.url()));
  if (process.env.DEBUG_PANEL) page.on('requestfailed', (r) => console.log('REQFAIL', r.url(), r.failure()?.errorText));
  await within(page.goto(pageUrl), STEP_MS, 'loading the panel');
  // One photo document with a selection across both copies.
  await page.evaluate((p) => {
    window.sim.reset({
      documents: [
        {
          title: 'Harbour.psd',
          width: p.width,
          height: p.height,
          layers: [{ name: 'Background', background: true, pixels: Uint8Array.from(p.data) }],
          selection: { left: 10, top: 8, right: p.width - 10, bottom: p.height - 9 },
        },
      ],
    });
  }, photo);
  (page as unknown as { errors: string[] }).errors = errors;
});

afterEach(async () => {
  const errors = (page as unknown as { errors: string[] }).errors;
  await page.close();
  // Failed fetches of a bridge that is down are expected in that test only.
  expect(errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e))).toEqual([]);
});

const text = (cls: string) => page.locator(`.upb-${cls}`).innerText();

async function pair(): Promise<void> {
  await within(page.evaluate((url) => window.startPanel(url), bridge.origin), STEP_MS, 'connecting');
  expect(await text('connection-text')).toMatch(/found: pair to use it/);
  expect(await page.locator('.upb-pairing').isVisible()).toBe(true);
  expect(await page.locator('.upb-controls').isVisible()).toBe(false);
  await page.locator('.upb-code input').fill(bridge.pairing.current().toLowerCase());
  if (process.env.UPBRIDGE_SCREENSHOTS) await page.screenshot({ path: path.join(process.env.UPBRIDGE_SCREENSHOTS, 'screenshot-panel-pairing.png') });
  await page.locator('.upb-pair').click();
  await page.locator('.upb-connection-text', { hasText: 'Connected' }).waitFor({ timeout: STEP_MS });
  expect(await page.locator('.upb-pairing').isVisible()).toBe(false);
}

/** The fingerprint of an 8-bit result as a new pixel layer holds it: opaque RGB gains an opaque alpha. */
function layerPrint(result: Raster): string {
  if (result.channels !== 3) return fingerprint(result.data);
  const withAlpha = new Uint8Array(result.width * result.height * 4);
  for (let i = 0, j = 0; i < result.data.length; i += 3, j += 4) {
    withAlpha.set(result.data.subarray(i, i + 3), j);
    withAlpha[j + 3] = 255;
  }
  return fingerprint(withAlpha);
}

test('pairs with the code, upscales the selection into a new document with tile progress, and says what it did', async () => {
  await pair();
  expect(await page.locator('.upb-model sp-menu-item[selected]').getAttribute('value')).toBe(FAST_MODEL);
  expect(await text('model-description')).toMatch(/Native 4×/);
  // Selection → New document by default; "Every layer" is only for the whole document.
  expect(await page.locator('.upb-destination sp-radio[checked]').getAttribute('value')).toBe('new-document');
  expect(await page.locator('.upb-destination sp-radio[value="layers"]').getAttribute('disabled')).not.toBeNull();

  engine.close();
  const jobsBefore = bridge.submitted.length;
  await page.locator('.upb-run').click();
  await engine.waitHeld(1);
  engine.allow(1);
  await page.locator('.upb-progress-text', { hasText: 'tile 1 of 2' }).waitFor({ timeout: STEP_MS });
  expect(await text('progress-text')).toMatch(/^Selection: tile 1 of 2, (about \d+ s left|almost done)$/);
  expect(Number(await page.locator('.upb-bar').getAttribute('value'))).toBe(50);
  if (process.env.UPBRIDGE_SCREENSHOTS) await page.screenshot({ path: path.join(process.env.UPBRIDGE_SCREENSHOTS, 'screenshot-panel.png') });
  engine.open();
  await page.locator('.upb-message', { hasText: 'Done' }).waitFor({ timeout: STEP_MS });
  expect(await text('message')).toMatch(/Selection upscaled ×4 into a new 1208×416 document/);
  expect(await page.locator('.upb-progress').isVisible()).toBe(false);

  const job = bridge.submitted[jobsBefore];
  expect(bridge.submitted).toHaveLength(jobsBefore + 1);
  const placed = await page.evaluate(() => {
    const [source, created] = window.sim.documentIds();
    const layer = window.sim.layers(created)[0];
    const pixels = window.sim.layerPixels(created, layer.id);
    return { docs: window.sim.documentIds().length, sourceHistory: window.sim.history(source), history: window.sim.history(created), extent: pixels.extent, channels: pixels.channels, print: window.fingerprint(pixels.data) };
  });
  expect(placed).toMatchObject({ docs: 2, sourceHistory: [], history: ['Upscale ×4 (upbridge)'], extent: { left: 0, top: 0, right: 1208, bottom: 416 } });
  // What landed is what the bridge made (the new layer adds alpha to the opaque RGB result).
  const result = job.result!;
  expect([result.width, result.height, result.channels]).toEqual([1208, 416, 3]);
  expect(placed.print).toBe(placed.channels === 4 ? layerPrint(result) : fingerprint(result.data));
});

test('Cancel stops the job on the bridge and leaves the document as it was', async () => {
  await pair();
  engine.close();
  const jobsBefore = bridge.submitted.length;
  await page.locator('.upb-run').click();
  await engine.waitHeld(1);
  await page.locator('.upb-cancel').click();
  await page.locator('.upb-message', { hasText: 'Cancelled' }).waitFor({ timeout: STEP_MS });
  const job = bridge.submitted[jobsBefore];
  await waitFor(() => job.controller.signal.aborted, 'the cancel request on the bridge');
  // The held tile finishes, then the job stops (a running job stops within one tile).
  engine.open();
  await waitFor(() => job.state === 'cancelled', 'the job to be cancelled on the bridge');
  const after = await page.evaluate(() => ({ docs: window.sim.documentIds().length, history: window.sim.history(window.sim.documentIds()[0]) }));
  expect(after).toEqual({ docs: 1, history: [] });
  expect(await page.locator('.upb-run').getAttribute('disabled')).toBeNull();
});

test('a bridge that is not running is named, with how to start it', async () => {
  const port = await freePort();
  await within(page.evaluate((url) => window.startPanel(url), `http://127.0.0.1:${port}`), STEP_MS, 'connecting');
  expect(await text('connection-text')).toMatch(new RegExp(`Bridge not running at http://127\\.0\\.0\\.1:${port}: start it with \`npm start\``));
  expect(await page.locator('.upb-dot').getAttribute('data-state')).toBe('down');
  expect(await page.locator('.upb-retry').isVisible()).toBe(true);
  expect(await page.locator('.upb-controls').isVisible()).toBe(false);
});

test('the Mode picker: a mode hides the model and shows creativity at the mode’s start; a run sends the mode, creativity only once moved, and the status line says what ran with its LR-PSNR', async () => {
  // A 40×30 crop of the photo, all selected: the fidelity and creative models run on it in seconds.
  const crop = { width: 40, height: 30, data: [] as number[] };
  for (let y = 40; y < 70; y++) crop.data.push(...photo.data.slice((y * photo.width + 60) * 3, (y * photo.width + 100) * 3));
  const resetToCrop = () =>
    page.evaluate((p) => {
      window.sim.reset({ documents: [{ title: 'Crop.psd', width: p.width, height: p.height, layers: [{ name: 'Background', background: true, pixels: Uint8Array.from(p.data) }], selection: { left: 0, top: 0, right: p.width, bottom: p.height } }] });
    }, crop);
  const pick = (cls: string, value: string) => page.evaluate(([c, v]) => (document.querySelector(`.upb-${c}`) as HTMLElement & { pick(v: string): void }).pick(v), [cls, value]);
  const visible = async () => ({ model: await page.locator('.upb-model-box').isVisible(), creativity: await page.locator('.upb-creativity-box').isVisible() });
  const slider = () => page.locator('.upb-creativity input').inputValue();
  const newestLayerPrint = () =>
    page.evaluate(() => {
      const created = window.sim.documentIds().at(-1)!;
      const layer = window.sim.layers(created)[0];
      return window.fingerprint(window.sim.layerPixels(created, layer.id).data);
    });

  await resetToCrop();
  await pair();
  expect(await page.locator('.upb-mode sp-menu-item').evaluateAll((items) => items.map((i) => [i.getAttribute('value'), i.textContent]))).toEqual([
    ['model', 'Model (choose below)'],
    ['fidelity', 'Fidelity'],
    ['balanced', 'Balanced'],
    ['creative', 'Creative'],
  ]);
  expect(await page.locator('.upb-mode sp-menu-item[selected]').getAttribute('value')).toBe('model');
  expect(await visible()).toEqual({ model: true, creativity: false });

  await pick('mode', 'creative');
  expect(await visible()).toEqual({ model: false, creativity: true });
  expect([await slider(), await text('creativity-value')]).toEqual(['1', '1 (the creative result)']);
  expect(await text('mode-description')).toMatch(/^A GAN invents plausible texture and detail/);
  await pick('mode', 'fidelity');
  expect([await slider(), await text('creativity-value')]).toEqual(['0', '0 (the fidelity result)']);
  await pick('mode', 'balanced');
  expect([await slider(), await text('creativity-value')]).toEqual(['0.5', 'not set: the fast model alone']);
  await pick('scale', '2');

  // Balanced, slider untouched: the mode alone goes out, and the bridge runs its fast model.
  let before = bridge.submitted.length;
  await page.locator('.upb-run').click();
  await page.locator('.upb-message', { hasText: 'Done' }).waitFor({ timeout: STEP_MS });
  let job = bridge.submitted[before];
  expect(bridge.submitted).toHaveLength(before + 1);
  expect(job.input.plan).toMatchObject({ mode: 'balanced', model: undefined, creativity: undefined, creativityGiven: false, scale: 2 });
  let report = job.report as unknown as JobReport;
  expect(await text('message')).toBe(`Done: Selection upscaled ×2 into a new 80×60 document. Balanced (${report.models.result}) · LR-PSNR ${report.lrPsnr.toFixed(1)} dB`);
  expect(await newestLayerPrint()).toBe(layerPrint(job.result!));

  // Moved to 0.3: the creativity goes out too, and the bridge blends its fidelity and creative models.
  await resetToCrop();
  await page.evaluate(() => {
    const input = document.querySelector('.upb-creativity input') as HTMLInputElement;
    input.value = '0.3';
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  expect(await text('creativity-value')).toBe('0.3');
  before = bridge.submitted.length;
  await page.locator('.upb-run').click();
  await page.locator('.upb-message', { hasText: 'Done' }).waitFor({ timeout: STEP_MS });
  job = bridge.submitted[before];
  expect(job.input.plan).toMatchObject({ mode: 'balanced', model: undefined, creativity: 0.3, creativityGiven: true });
  report = job.report as unknown as JobReport;
  expect(await text('message')).toBe(
    `Done: Selection upscaled ×2 into a new 80×60 document. Balanced · creativity 0.3 (${report.models.fidelity} + ${report.models.creative}) · LR-PSNR ${report.lrPsnr.toFixed(1)} dB`,
  );
  expect(await newestLayerPrint()).toBe(layerPrint(job.result!));
  if (process.env.UPBRIDGE_SCREENSHOTS) await page.screenshot({ path: path.join(process.env.UPBRIDGE_SCREENSHOTS, 'screenshot-panel-mode.png') });

  // Back to a model: the picker returns, the slider goes.
  await pick('mode', 'model');
  expect(await visible()).toEqual({ model: true, creativity: false });
});
