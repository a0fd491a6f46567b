import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Browser, BrowserContext, chromium } from 'playwright-core';
import { JobReport, START_HINT } from '../../../plugins/shared/bridge-client';
import { STORAGE_KEYS, UI_SIZE } from '../../../plugins/figma/src/main/plugin';
import { syntheticRaster } from '../../helpers';
import { freePort, GatedEngine, startBridge, TestBridge, waitFor } from '../../bridge-server/bridge-harness';
import { FigmaSim, rectangle, setUp, SimRectangle } from './figma-sim';
import { decode, imagePaint, png } from './plugin-harness';
import { CHROMIUM, STEP_MS, within, recordProgress, progressLog } from '../../browser';
import { openUi, UI_HOST_ARGS } from './ui-host';

/**
 * The built UI (dist/figma/ui.html) in Debian's Chromium, as Figma runs it: in a sandboxed iframe
 * (origin null), its messages relayed to and from the real main thread running on the simulated
 * host in this process, talking to a real bridge. Pairing, progress, cancel and the bridge being
 * down are driven through the page's own controls.
 *
 * UPBRIDGE_UPDATE_SCREENSHOTS=1 also writes plugins/figma/screenshot-ui.png (the README's picture).
 */
const ROOT = path.join(__dirname, '..', '..', '..');
const UI_HTML = path.join(ROOT, 'dist', 'figma', 'ui.html');
const README_SCREENSHOT = path.join(ROOT, 'plugins', 'figma', 'screenshot-ui.png');

jest.setTimeout(90_000);


let browser: Browser | undefined;
let context: BrowserContext | undefined;
let html: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the UI test needs Debian's chromium. Install it with: apt-get update && apt-get install -y chromium (CI does this in .ci/run)`);
  }
  if (!existsSync(UI_HTML)) throw new Error('dist/figma/ui.html is missing: run npm run build first');
  html = readFileSync(UI_HTML, 'utf8');
  browser = await within(
    chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...UI_HOST_ARGS], timeout: STEP_MS }),
    STEP_MS + 5_000,
    'launching chromium',
  );
}, 60_000);

afterAll(async () => {
  await within(browser?.close() ?? Promise.resolve(), 15_000, 'closing chromium').catch(() => {});
});

beforeEach(async () => {
  if (!browser) throw new Error('chromium did not start');
  context = await browser.newContext({ viewport: { width: UI_SIZE.width + 40, height: UI_SIZE.height + 40 }, deviceScaleFactor: 2 });
  context.setDefaultTimeout(STEP_MS);
});

afterEach(async () => {
  await within(context?.close() ?? Promise.resolve(), 15_000, 'closing the browser context').catch(() => {});
  context = undefined;
});

/** Loads the built UI in the host page and starts the plugin's main thread on `sim`. */
const open = (sim: FigmaSim) => openUi(context!, sim, html);

describe('with a bridge', () => {
  let bridge: TestBridge;
  const gated = new GatedEngine();

  beforeAll(async () => {
    bridge = await startBridge({ engine: gated });
  });

  afterAll(async () => {
    gated.open();
    await bridge?.close();
  });

  test('pairs with the code, upscales the selected fill with progress in tiles, then cancels a second run', async () => {
    // 768×64 with the model's 256 px tiles: three tiles, so progress has a middle with a rate.
    const bytes = await png(syntheticRaster(768, 64, 3, 8, 41));
    const sim = new FigmaSim();
    sim.storage.set(STORAGE_KEYS.bridgeUrl, bridge.origin);
    let photo!: SimRectangle;
    setUp(sim, () => {
      photo = rectangle(sim, { name: 'Hero banner', width: 768, height: 64, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(bytes).hash }] });
      sim.page.selection = [photo];
    });
    const { ui, pageErrors } = await open(sim);

    // Not paired: the form asks for the code, and Figma shows the same as an error.
    await ui.locator('#pair-form').waitFor({ state: 'visible' });
    await expect(ui.locator('#connection').textContent()).resolves.toBe('Not paired');
    expect(sim.notifications).toEqual([{ message: 'Not paired with the bridge yet: enter the pairing code it shows', error: true }]);

    await ui.locator('#code').fill('WRONG1');
    await ui.locator('#pair').click();
    await ui.locator('#pair-error', { hasText: 'wrong or expired pairing code; use the code the upbridge server shows now' }).waitFor();
    await expect(ui.locator('#controls').isHidden()).resolves.toBe(true);

    await ui.locator('#code').fill(bridge.codes.at(-1)!);
    await ui.locator('#code').press('Enter');
    await ui.locator('#controls').waitFor({ state: 'visible' });
    await expect(ui.locator('#connection').textContent()).resolves.toMatch(/^Connected · (v\d|dev)/);
    const token = await waitFor(() => sim.storage.get(STORAGE_KEYS.token) as string | undefined, 'the token in clientStorage');
    await expect(bridge.tokens.verify(token)).resolves.toMatchObject({ name: 'Figma plugin' });
    await expect(ui.locator('#selection').textContent()).resolves.toBe('1 layer selected · 1 image fill');
    const models = await ui.locator('#model option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
    expect(models).toEqual(expect.arrayContaining(['realesr-general-x4v3', 'realesrgan-x4plus']));
    await expect(ui.locator('#model').inputValue()).resolves.toBe('realesr-general-x4v3');
    await expect(ui.locator('#scale').inputValue()).resolves.toBe('4');

    // Tiles let through one at a time, so the window shows each step and, from the second, a time left.
    await recordProgress(ui);
    gated.close();
    gated.allow(1);
    await ui.locator('#fills').click();
    await ui.locator('#progress-text', { hasText: /^1 of 3 tiles · / }).waitFor();
    gated.allow(1);
    await ui.locator('#progress-text', { hasText: /^2 of 3 tiles · (about \d+ s left|almost done)$/ }).waitFor();
    await expect(ui.locator('#fills').isDisabled()).resolves.toBe(true);
    await expect(ui.locator('#cancel').isEnabled()).resolves.toBe(true);
    await expect(ui.locator('#progress-label').textContent()).resolves.toBe('"Hero banner": 768×64 → 3072×256 px');
    await expect(ui.locator('#progress').evaluate((p) => (p as HTMLProgressElement).value)).resolves.toBeCloseTo(2 / 3, 5);
    const shot = await ui.locator('body').page().locator('#ui').screenshot({ path: path.join(os.tmpdir(), 'upbridge-figma-ui.png') });
    if (process.env.UPBRIDGE_UPDATE_SCREENSHOTS === '1') await fs.writeFile(README_SCREENSHOT, shot);

    gated.open();
    await ui.locator('#outcome[data-kind="done"]').waitFor();
    await expect(ui.locator('#outcome-text').textContent()).resolves.toBe('Upscaled 1 image (4x) in 1 layer');
    await expect(ui.locator('#progress-box').isHidden()).resolves.toBe(true);
    const log = await progressLog(ui);
    expect(log).toContain('3 of 3 tiles · finishing…');
    const job = bridge.submitted.at(-1)!;
    const placed = await decode(sim.images.get(imagePaint(photo).imageHash!)!.bytes);
    expect([placed.width, placed.height]).toEqual([3072, 256]);
    expect(Buffer.compare(placed.data, Buffer.from(job.result!.data.buffer, job.result!.data.byteOffset, job.result!.data.byteLength))).toBe(0);
    expect(sim.notifications.at(-1)).toEqual({ message: 'Upscaled 1 image (4x) in 1 layer', error: false });

    // A second run, cancelled from the window while a tile is held.
    gated.close();
    await ui.locator('#scale').selectOption('2');
    await ui.locator('#fills').click();
    await ui.locator('#progress-text', { hasText: /tiles/ }).waitFor();
    await ui.locator('#cancel').click();
    await ui.locator('#outcome[data-kind="cancelled"]').waitFor();
    gated.open();
    await expect(ui.locator('#outcome-text').textContent()).resolves.toBe('Upscale cancelled: nothing was changed');
    await waitFor(() => bridge.submitted.at(-1)!.state === 'cancelled', 'the bridge job to be cancelled');
    await expect(ui.locator('#fills').isEnabled()).resolves.toBe(true);
    expect(sim.undoSteps).toHaveLength(1);
    // Chromium logs the refused wrong code itself; nothing else may be logged.
    expect(pageErrors).toEqual([`Failed to load resource: the server responded with a status of 403 (Forbidden) ${bridge.origin}/v1/pair`]);
  });

  test('the Mode picker: a mode hides the model and shows creativity at the mode’s start; the job carries the mode, creativity once moved; the outcome says what ran', async () => {
    const bytes = await png(syntheticRaster(24, 20, 3, 8, 43));
    const sim = new FigmaSim();
    sim.storage.set(STORAGE_KEYS.bridgeUrl, bridge.origin);
    sim.storage.set(STORAGE_KEYS.token, bridge.token);
    let photo!: SimRectangle;
    setUp(sim, () => {
      photo = rectangle(sim, { name: 'Thumb', width: 48, height: 40, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(bytes).hash }] });
      sim.page.selection = [photo];
    });
    const { ui, pageErrors } = await open(sim);
    await ui.locator('#controls').waitFor({ state: 'visible' });
    const shown = async () => ({ model: await ui.locator('#model-field').isVisible(), creativity: await ui.locator('#creativity-field').isVisible() });

    const modes = await ui.locator('#mode option').evaluateAll((els) => els.map((e) => [(e as HTMLOptionElement).value, e.textContent]));
    expect(modes).toEqual([
      ['', 'Model (choose below)'],
      ['fidelity', 'Fidelity'],
      ['balanced', 'Balanced'],
      ['creative', 'Creative'],
    ]);
    await expect(ui.locator('#mode').inputValue()).resolves.toBe('');
    expect(await shown()).toEqual({ model: true, creativity: false });

    await ui.locator('#mode').selectOption('creative');
    expect(await shown()).toEqual({ model: false, creativity: true });
    await expect(ui.locator('#creativity').inputValue()).resolves.toBe('1');
    await expect(ui.locator('#creativity-value').textContent()).resolves.toBe('1 (the creative result)');
    await expect(ui.locator('#mode-description').textContent()).resolves.toMatch(/^A GAN invents plausible texture and detail/);
    await ui.locator('#mode').selectOption('balanced');
    await expect(ui.locator('#creativity').inputValue()).resolves.toBe('0.5');
    await expect(ui.locator('#creativity-value').textContent()).resolves.toBe('not set: the fast model alone');

    // Creative, slider untouched: the mode alone goes to the bridge.
    await ui.locator('#mode').selectOption('creative');
    let before = bridge.submitted.length;
    await ui.locator('#fills').click();
    await ui.locator('#outcome[data-kind="done"]').waitFor();
    let job = bridge.submitted[before];
    expect(job.input.plan).toMatchObject({ mode: 'creative', model: undefined, creativity: 1, creativityGiven: false });
    let report = job.report as unknown as JobReport;
    await expect(ui.locator('#outcome-ran').textContent()).resolves.toBe(`Creative (${report.models.creative}) · LR-PSNR ${report.lrPsnr.toFixed(1)} dB`);
    let placed = await decode(sim.images.get(imagePaint(photo).imageHash!)!.bytes);
    expect(Buffer.compare(placed.data, Buffer.from(job.result!.data.buffer, job.result!.data.byteOffset, job.result!.data.byteLength))).toBe(0);

    // Balanced, moved to 0.3 and 2x: both go with the job.
    await ui.locator('#mode').selectOption('balanced');
    await ui.locator('#creativity').evaluate((input) => {
      (input as HTMLInputElement).value = '0.3';
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await expect(ui.locator('#creativity-value').textContent()).resolves.toBe('0.3');
    await ui.locator('#scale').selectOption('2');
    before = bridge.submitted.length;
    await ui.locator('#fills').click();
    await waitFor(() => bridge.submitted.length > before && bridge.submitted[before].state === 'done', 'the second job');
    await ui.locator('#outcome-ran', { hasText: 'Balanced' }).waitFor();
    job = bridge.submitted[before];
    expect(job.input.plan).toMatchObject({ mode: 'balanced', model: undefined, creativity: 0.3, creativityGiven: true, scale: 2 });
    report = job.report as unknown as JobReport;
    await expect(ui.locator('#outcome-ran').textContent()).resolves.toBe(`Balanced · creativity 0.3 (${report.models.fidelity} + ${report.models.creative}) · LR-PSNR ${report.lrPsnr.toFixed(1)} dB`);
    placed = await decode(sim.images.get(imagePaint(photo).imageHash!)!.bytes);
    expect([placed.width, placed.height]).toEqual([192, 160]);
    expect(Buffer.compare(placed.data, Buffer.from(job.result!.data.buffer, job.result!.data.byteOffset, job.result!.data.byteLength))).toBe(0);
    await ui.locator('body').page().locator('#ui').screenshot({ path: path.join(os.tmpdir(), 'upbridge-figma-ui-mode.png') });

    // Back to a model: its picker returns and the slider goes.
    await ui.locator('#mode').selectOption('');
    expect(await shown()).toEqual({ model: true, creativity: false });
    expect(pageErrors).toEqual([]);
  });
});

test('bridge not running: the window says how to start it and offers to try again', async () => {
  const sim = new FigmaSim();
  const url = `http://127.0.0.1:${await freePort()}`;
  sim.storage.set(STORAGE_KEYS.bridgeUrl, url);
  sim.storage.set(STORAGE_KEYS.token, 'upb_not-checked-while-down');
  const { ui, pageErrors } = await open(sim);
  await ui.locator('#down').waitFor({ state: 'visible' });
  const message = `the upbridge bridge is not running at ${url}: ${START_HINT}`;
  await expect(ui.locator('#down-text').textContent()).resolves.toBe(message);
  await expect(ui.locator('#connection').textContent()).resolves.toBe('Bridge not running');
  await expect(ui.locator('#controls').isHidden()).resolves.toBe(true);
  expect(sim.notifications).toEqual([{ message, error: true }]);
  await ui.locator('#retry').click();
  await ui.locator('#connection[data-state="bridge-down"]').waitFor();
  await ui.page().screenshot({ path: path.join(os.tmpdir(), 'upbridge-figma-ui-down.png') });
  // The failed fetch is logged by Chromium itself; nothing else may be.
  expect(pageErrors.filter((e) => !/ERR_CONNECTION_REFUSED/.test(e))).toEqual([]);
});
