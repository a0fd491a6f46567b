import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { freePort } from './bridge-harness';
import { buildBridge, Bridge } from '../../bridge-server/app';
import { nodeEngine } from '../../bridge-server/engine';
import { Pairing, TokenStore } from '../../bridge-server/tokens';
import { CHROMIUM, STEP_MS, within, recordProgress, progressLog } from '../browser';

/**
 * The bridge's own page in a real browser (Debian's chromium, driven by playwright-core), against
 * the real server on loopback: pairing, upload, progress from the event stream, the result and
 * its download link, cancelling, and a readable error. Needs `npm run build` (dist/page), which
 * `npm test` runs first, and /usr/bin/chromium, which .ci/run installs.
 */
const ROOT = path.join(__dirname, '..', '..');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'ncnn-reference', 'input-a.png');
const PHOTO = path.join(ROOT, 'test', 'fixtures', 'photo-161x121.png');
const SCREENSHOT = path.join(os.tmpdir(), 'upbridge-page.png');

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
