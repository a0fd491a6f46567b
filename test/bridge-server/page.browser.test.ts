import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import sharp from 'sharp';
import { freePort } from './bridge-harness';
import { buildBridge, Bridge } from '../../bridge-server/app';
import { nodeEngine } from '../../bridge-server/engine';
import { Pairing, TokenStore } from '../../bridge-server/tokens';
import { CHROMIUM, STEP_MS, within, recordProgress, progressLog } from '../browser';

/**
 * The bridge's own page in a real browser (Debian's chromium, driven by playwright-core), against
 * the real server on loopback: pairing, upload, progress from the event stream, the result and
 * its download link, cancelling, and a readable error; modes, what ran, and the invented-detail
 * map laid over the result. Needs `npm run build` (dist/page), which `npm test` runs first, and
 * /usr/bin/chromium, which .ci/run installs.
 *
 * UPBRIDGE_UPDATE_SCREENSHOTS=1 also writes bridge-server/page/screenshot-map.png (the README's picture).
 */
const ROOT = path.join(__dirname, '..', '..');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'ncnn-reference', 'input-a.png');
const PHOTO = path.join(ROOT, 'test', 'fixtures', 'photo-161x121.png');
const SCREENSHOT = path.join(os.tmpdir(), 'upbridge-page.png');
const README_MAP_SCREENSHOT = path.join(ROOT, 'bridge-server', 'page', 'screenshot-map.png');

jest.setTimeout(60_000);

/** Playwright's own waits have timeouts, page.evaluate and launch/close may not: bound everything. */

let tmpDir: string;
let tokens: TokenStore;
let bridge: Bridge;
let baseUrl: string;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let pageErrors: string[];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the page tests need Debian's chromium. Install it with: apt-get update && apt-get install -y chromium (CI does this in .ci/run)`);
  }
  if (!existsSync(path.join(ROOT, 'dist', 'page', 'page.js'))) throw new Error('dist/page is missing: run npm run build first');
  tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-page-'));
  const port = await freePort();
  tokens = new TokenStore(tmpDir);
  const pairing = new Pairing(tokens);
  bridge = await buildBridge({ port }, { engine: nodeEngine(), tokens, pairing });
  await bridge.app.listen({ port, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${port}/`;
  // The server must serve the built page and its script (dist/page).
  for (const file of ['', 'page.js']) {
    const res = await fetch(baseUrl + file);
    if (res.status !== 200) throw new Error(`GET /${file} answered ${res.status}: ${await res.text()}`);
  }
  browser = await within(
    chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      timeout: STEP_MS,
    }),
    STEP_MS + 5_000,
    'launching chromium',
  );
}, 60_000);

afterAll(async () => {
  await within(browser?.close() ?? Promise.resolve(), 15_000, 'closing chromium').catch(() => {});
  await bridge?.app.close();
  if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
});

beforeEach(async () => {
  if (!browser) throw new Error('chromium did not start');
  pageErrors = [];
  context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  context.setDefaultTimeout(STEP_MS);
});

afterEach(async () => {
  await within(context?.close() ?? Promise.resolve(), 15_000, 'closing the browser context').catch(() => {});
  context = undefined;
});

async function openPage(): Promise<Page> {
  const page = await context!.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const script = page.waitForResponse((r) => new URL(r.url()).pathname === '/page.js');
  await page.goto(baseUrl);
  const scriptResponse = await script;
  if (scriptResponse.status() !== 200) throw new Error(`GET /page.js answered ${scriptResponse.status()}`);
  // Paired, or a readable reason why not.
  const connection = page.locator('#connection');
  await page.locator('#connection:not([data-state="connecting"])').waitFor();
  if ((await connection.getAttribute('data-state')) !== 'paired') {
    throw new Error(`the page did not pair: ${await connection.textContent()}: ${await page.locator('#message').textContent()}`);
  }
  return page;
}


test('pairs itself, upscales a PNG with progress, and shows the result with a download link', async () => {
  const page = await openPage();
  await expect(page.locator('#connection').textContent()).resolves.toContain('Paired');
  const stored = await within(page.evaluate(() => localStorage.getItem('upbridge.token')), STEP_MS, 'reading localStorage');
  expect(stored).toMatch(/^upb_/);
  expect(await tokens.verify(stored!)).toMatchObject({ name: 'upbridge page' });

  // Models come from /v1/models, with the description beside the select.
  const options = await page.locator('#model option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
  expect(options).toEqual(expect.arrayContaining(['realesr-general-x4v3', 'realesrgan-x4plus']));
  await page.locator('#model').selectOption('realesr-general-x4v3');
  await expect(page.locator('#model-description').textContent()).resolves.toMatch(/4x/);

  await page.locator('#file').setInputFiles(SAMPLE);
  await page.locator('#output-size', { hasText: '160 × 128' }).waitFor();
  await page.locator('#scale').selectOption('4');
  await page.locator('.advanced summary').click();
  await page.locator('#tile').fill('16');
  await page.locator('#overlap').fill('8');

  await recordProgress(page);
  await page.locator('#upscale').click();
  await page.locator('#result').waitFor({ state: 'visible' });
  await page.locator('#progress[data-state="done"]').waitFor({ state: 'attached' });

  // 40×32 in tiles of 16: 3 × 2 = 6 tiles, reported one by one through the event stream.
  const log = await progressLog(page);
  expect(log).toContain('6 of 6 tiles · finishing…');
  expect(log.some((t) => /^[1-5] of 6 tiles · about .* left$/.test(t))).toBe(true);
  const progress = await within(page.evaluate(() => { const p = document.getElementById('progress') as HTMLProgressElement; return { value: p.value, max: p.max }; }), STEP_MS, 'reading the progress bar');
  expect(progress).toEqual({ value: 6, max: 6 });

  const images = await within(
    page.evaluate(() => {
      const size = (id: string) => { const img = document.getElementById(id) as HTMLImageElement; return { w: img.naturalWidth, h: img.naturalHeight, complete: img.complete, shown: img.offsetWidth }; };
      return { after: size('after'), before: size('before') };
    }),
    STEP_MS,
    'reading the result image',
  );
  expect(images.after).toEqual({ w: 160, h: 128, complete: true, shown: 160 });
  expect(images.before).toEqual({ w: 40, h: 32, complete: true, shown: 160 });

  const download = page.locator('#download');
  await expect(download.getAttribute('href')).resolves.toMatch(/^blob:http:\/\/127\.0\.0\.1:\d+\//);
  await expect(download.getAttribute('download')).resolves.toBe('input-a-x4.png');
  // The link's blob is the PNG itself.
  const signature = await within(
    page.evaluate(async () => {
      const blob = await (await fetch((document.getElementById('download') as HTMLAnchorElement).href)).blob();
      return [blob.type, Array.from(new Uint8Array(await blob.slice(0, 4).arrayBuffer()))];
    }),
    STEP_MS,
    'reading the download blob',
  );
  expect(signature).toEqual(['image/png', [0x89, 0x50, 0x4e, 0x47]]);

  // The slider moves the split between before and after.
  await page.locator('#split').fill('25');
  await expect(page.locator('#after').evaluate((img) => (img as HTMLImageElement).style.clipPath)).resolves.toBe('inset(0px 0px 0px 25%)');
  await page.locator('#split').fill('50');

  await expect(page.locator('#message').isHidden()).resolves.toBe(true);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect(pageErrors).toEqual([]);
});

test('a stored token the server no longer knows: the page pairs itself again', async () => {
  await context!.addInitScript(() => {
    if (!sessionStorage.getItem('seeded')) {
      localStorage.setItem('upbridge.token', 'upb_revoked-or-never-issued');
      sessionStorage.setItem('seeded', '1');
    }
  });
  const page = await openPage();
  const stored = await within(page.evaluate(() => localStorage.getItem('upbridge.token')), STEP_MS, 'reading localStorage');
  expect(stored).not.toBe('upb_revoked-or-never-issued');
  expect(await tokens.verify(stored!)).toBeDefined();
  // A reload keeps the (now valid) token instead of pairing again.
  const before = (await tokens.list()).length;
  await page.reload();
  await page.locator('#connection[data-state="paired"]').waitFor();
  expect((await tokens.list()).length).toBe(before);
  expect(pageErrors).toEqual([]);
});

test('a file that is not an image: the server\'s message is shown, and nothing else breaks', async () => {
  const page = await openPage();
  await page.locator('#file').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is text, not a picture') });
  await page.locator('#upscale').click();
  const message = page.locator('#message');
  await message.waitFor({ state: 'visible' });
  await expect(message.textContent()).resolves.toMatch(/is not an image sharp can read \(PNG, JPEG, WebP, TIFF\)/);
  await expect(page.locator('#upscale').isEnabled()).resolves.toBe(true);
  await expect(page.locator('#result').isHidden()).resolves.toBe(true);
  await page.screenshot({ path: path.join(os.tmpdir(), 'upbridge-page-error.png'), fullPage: true });

  // Picking a real image clears the message; a scale out of range is refused before uploading.
  await page.locator('#file').setInputFiles(SAMPLE);
  await expect(message.isHidden()).resolves.toBe(true);
  await page.locator('#scale').selectOption('custom');
  await page.locator('#scale-custom').fill('40');
  await page.locator('#upscale').click();
  await page.locator('#message', { hasText: 'Scale must be a number from 1 to 16.' }).waitFor();
  expect(pageErrors).toEqual([]);
});

test('Cancel stops a running job', async () => {
  const page = await openPage();
  await page.locator('#file').setInputFiles(PHOTO);
  await page.locator('#model').selectOption('realesrgan-x4plus');
  await page.locator('.advanced summary').click();
  await page.locator('#tile').fill('16');
  await page.locator('#overlap').fill('8');
  await page.locator('#upscale').click();
  // 161×121 in tiles of 16: 11 × 8 = 88 tiles of the large model; cancel after the first.
  await page.locator('#progress-text', { hasText: /^\d+ of 88 tiles/ }).waitFor();
  const cancelled = page.waitForRequest((r) => r.method() === 'DELETE');
  await page.locator('#cancel').click();
  const id = new URL((await cancelled).url()).pathname.split('/').pop()!;
  await page.locator('#progress[data-state="cancelled"]').waitFor({ state: 'attached' });
  await expect(page.locator('#progress-text').textContent()).resolves.toBe('Cancelled.');
  await expect(page.locator('#cancel').isDisabled()).resolves.toBe(true);
  await expect(page.locator('#upscale').isEnabled()).resolves.toBe(true);
  await expect(page.locator('#result').isHidden()).resolves.toBe(true);
  expect(bridge.queue.get(id)?.state).toBe('cancelled');
  expect(pageErrors).toEqual([]);
});

// ---------------------------------------------------------------- modes and the invented-detail map

/** A square from the photo fixture (the window in the brick wall: flat paint beside texture), tiny so the two large models of a mode run in seconds. */
function photoCrop(side: number): Promise<Buffer> {
  return sharp(PHOTO).extract({ left: 86, top: 66, width: side, height: side }).png().toBuffer();
}

/** Clicks Upscale and returns the query the page sent and the job id the bridge answered. */
async function submit(page: Page): Promise<{ query: Record<string, string>; id: string }> {
  const response = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/v1/jobs');
  await page.locator('#upscale').click();
  const answered = await response;
  expect(answered.status()).toBe(202);
  return { query: Object.fromEntries(new URL(answered.url()).searchParams), id: ((await answered.json()) as { id: string }).id };
}

/** Waits for the page to finish the job; a failure throws the page's own message. */
async function finished(page: Page): Promise<void> {
  await page.locator('#progress[data-state="done"], #progress[data-state="failed"]').waitFor({ state: 'attached', timeout: 90_000 });
  if ((await page.locator('#progress').getAttribute('data-state')) === 'failed') throw new Error(`the job failed in the page: ${await page.locator('#message').textContent()}`);
}

/** GET /v1/jobs/:id as any client sees it, with the token the page paired for. */
async function jobStatus(page: Page, id: string): Promise<{ result: { width: number; height: number; map: boolean }; report: { mode?: string; content: string; contentDetected: boolean; creativity?: number; models: Record<string, string>; lrPsnr: number; map?: { mean: number; shareOver: number; regions: { x: number; y: number; width: number; height: number }[] } } }> {
  const token = await within(page.evaluate(() => localStorage.getItem('upbridge.token')), STEP_MS, 'reading localStorage');
  const res = await fetch(`${baseUrl}v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return res.json() as never;
}

test('creative mode with the map: the request carries them, the map lies on the result pixel for pixel, and the page shows what ran', async () => {
  const page = await openPage();
  await page.locator('#file').setInputFiles({ name: 'crop.png', mimeType: 'image/png', buffer: await photoCrop(32) });
  await page.locator('#output-size', { hasText: '128 × 128' }).waitFor();

  // A mode picks its models: the model choice steps aside, and the slider shows the mode's default.
  await expect(page.locator('#creativity').isDisabled()).resolves.toBe(true);
  await page.locator('#mode').selectOption('creative');
  await expect(page.locator('#model').isDisabled()).resolves.toBe(true);
  await expect(page.locator('#creativity').isEnabled()).resolves.toBe(true);
  await expect(page.locator('#creativity').inputValue()).resolves.toBe('1');
  await expect(page.locator('#creativity-value').textContent()).resolves.toBe('1');
  // Moved, it is sent.
  await page.locator('#creativity').fill('0.8');
  await expect(page.locator('#creativity-value').textContent()).resolves.toBe('0.80');
  await page.locator('#map').check();

  const { query, id } = await submit(page);
  expect(query).toEqual({ mode: 'creative', creativity: '0.8', map: 'true', scale: '4' });
  await finished(page);
  const status = await jobStatus(page, id);
  const report = status.report;
  expect(report).toMatchObject({ mode: 'creative', creativity: 0.8, contentDetected: true });
  expect(status.result).toMatchObject({ width: 128, height: 128, map: true });

  // The overlay: a canvas of the result's own size, in the same box as the result.
  const geometry = await within(
    page.evaluate(() => {
      const after = document.getElementById('after') as HTMLImageElement;
      const overlay = document.getElementById('map-overlay') as HTMLCanvasElement;
      const box = (el: Element) => { const r = el.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; };
      return { result: [after.naturalWidth, after.naturalHeight], overlay: [overlay.width, overlay.height], afterBox: box(after), overlayBox: box(overlay), clip: [after.style.clipPath, overlay.style.clipPath] };
    }),
    STEP_MS,
    'reading the overlay geometry',
  );
  expect(geometry.result).toEqual([128, 128]);
  expect(geometry.overlay).toEqual([128, 128]);
  expect(geometry.overlayBox).toEqual(geometry.afterBox);
  expect(geometry.clip[1]).toBe(geometry.clip[0]);

  // Pixel for pixel: the overlay's alpha is the map the bridge made, and its colour is magenta.
  const map = bridge.queue.get(id)!.map!;
  expect([map.width, map.height, map.channels]).toEqual([128, 128, 1]);
  expect(Math.max(...map.data) - Math.min(...map.data)).toBeGreaterThan(50); // a map with something to line up
  const overlayPixels = await within(
    page.evaluate(() => {
      const overlay = document.getElementById('map-overlay') as HTMLCanvasElement;
      return Array.from(overlay.getContext('2d')!.getImageData(0, 0, overlay.width, overlay.height).data);
    }),
    STEP_MS,
    'reading the overlay pixels',
  );
  const alpha = overlayPixels.filter((_, i) => i % 4 === 3);
  expect(alpha).toEqual(Array.from(map.data));
  const strongest = alpha.indexOf(Math.max(...alpha)) * 4;
  expect(overlayPixels.slice(strongest, strongest + 3)).toEqual([255, 0, 255]);

  // The toggle hides and shows it (outlines with it); the slider sets its opacity.
  const overlay = page.locator('#map-overlay');
  await expect(overlay.isVisible()).resolves.toBe(true);
  await page.locator('#map-show').uncheck();
  await expect(overlay.isHidden()).resolves.toBe(true);
  await expect(page.locator('#map-regions').isHidden()).resolves.toBe(true);
  await expect(page.locator('#map-opacity').isDisabled()).resolves.toBe(true);
  await page.locator('#map-show').check();
  await expect(overlay.isVisible()).resolves.toBe(true);
  await page.locator('#map-opacity').fill('30');
  await expect(overlay.evaluate((el) => getComputedStyle(el).opacity)).resolves.toBe('0.3');
  await page.locator('#map-opacity').fill('60');
  await expect(overlay.evaluate((el) => getComputedStyle(el).opacity)).resolves.toBe('0.6');

  // The summary and the outlined regions are the report's.
  const summary = report.map!;
  await expect(page.locator('#map-summary').textContent()).resolves.toContain(`mean ${summary.mean.toFixed(3)} · ${(summary.shareOver * 100).toFixed(1)} % of pixels over 0.5`);
  const rects = await page.locator('#map-regions rect').evaluateAll((els) => els.map((e) => ['x', 'y', 'width', 'height'].map((k) => Number(e.getAttribute(k)))));
  expect(rects).toEqual(summary.regions.map((r) => [r.x, r.y, r.width, r.height]));
  await expect(page.locator('#map-regions').getAttribute('viewBox')).resolves.toBe('0 0 128 128');

  // What ran, and the LR-PSNR, as the job reports them.
  const lrPsnr = page.locator('#lr-psnr');
  await expect(lrPsnr.getAttribute('data-db')).resolves.toBe(String(report.lrPsnr));
  await expect(lrPsnr.textContent()).resolves.toBe(`${report.lrPsnr.toFixed(2)} dB`);
  const shown = await page.locator('#report').textContent();
  expect(shown).toContain('Modecreative');
  expect(shown).toContain(`creative: ${report.models.creative}`);
  expect(shown).toContain(`fidelity: ${report.models.fidelity}`);
  expect(shown).toContain(`Content${report.content} (detected)`);
  expect(shown).toContain('Creativity0.80');

  await expect(page.locator('#message').isHidden()).resolves.toBe(true);
  await page.locator('#split').fill('35');
  await expect(overlay.evaluate((el) => el.style.clipPath)).resolves.toBe('inset(0px 0px 0px 35%)');
  const shot = await page.screenshot({ path: path.join(os.tmpdir(), 'upbridge-page-map.png'), fullPage: true });
  if (process.env.UPBRIDGE_UPDATE_SCREENSHOTS === '1') await fs.writeFile(README_MAP_SCREENSHOT, shot);
  expect(pageErrors).toEqual([]);
}, 120_000);

test('a job without the map shows no overlay controls; creativity is sent only once moved', async () => {
  const page = await openPage();
  await page.locator('#file').setInputFiles({ name: 'crop.png', mimeType: 'image/png', buffer: await photoCrop(24) });
  await page.locator('#mode').selectOption('balanced');
  await expect(page.locator('#creativity-value').textContent()).resolves.toBe('off');
  await expect(page.locator('#creativity-hint').textContent()).resolves.toContain('the fast model alone');
  await page.locator('#creativity').fill('0.3');
  await expect(page.locator('#creativity-value').textContent()).resolves.toBe('0.30');
  await page.locator('#creativity-reset').click();
  await expect(page.locator('#creativity-value').textContent()).resolves.toBe('off');
  await expect(page.locator('#creativity-reset').isHidden()).resolves.toBe(true);

  const { query, id } = await submit(page);
  expect(query).toEqual({ mode: 'balanced', scale: '4' });
  await finished(page);
  const { report, result } = await jobStatus(page, id);
  expect(result.map).toBe(false);
  expect(report.models).toEqual({ result: expect.any(String) });

  await expect(page.locator('#map-controls').isHidden()).resolves.toBe(true);
  await expect(page.locator('#map-overlay').isHidden()).resolves.toBe(true);
  await expect(page.locator('#map-regions rect').count()).resolves.toBe(0);
  await expect(page.locator('#lr-psnr').textContent()).resolves.toBe(report.lrPsnr >= 100 ? '100 dB (identical)' : `${report.lrPsnr.toFixed(2)} dB`);
  const shown = await page.locator('#report').textContent();
  expect(shown).toContain('Modebalanced');
  expect(shown).toContain(`Model${report.models.result}`);
  expect(pageErrors).toEqual([]);
});
