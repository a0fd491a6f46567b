import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Browser, BrowserContext, chromium } from 'playwright-core';
import { findModel, NcnnSource } from '../../../core/catalogue';
import { psnr } from '../../../core/metrics';
import { upscaleRaster, windowConventions } from '../../../core/upscale';
import { WEB_TILE } from '../../../core/web/web-upscale';
import { STORAGE_KEYS, UI_SIZE } from '../../../plugins/figma/src/main/plugin';
import { freePort, startBridge } from '../../bridge-server/bridge-harness';
import { CHROMIUM, requireChromium, STEP_MS, within } from '../../browser';
import { runnerFor, syntheticRaster } from '../../helpers';
import { ensureNcnnFiles, FakeCdn, startFakeCdn } from '../../core/web/web-harness';
import { FigmaSim, rectangle, setUp, SimRectangle } from './figma-sim';
import { decode, imagePaint, png } from './plugin-harness';
import { openUi, UI_HOST_ARGS } from './ui-host';

/**
 * "Upscale here": the built UI (dist/figma/ui.html) in Chromium as Figma runs it (a sandboxed
 * iframe, origin null), the real main thread on the simulated host, and no bridge listening. The
 * window runs the fast model itself (core/web, onnxruntime-web wasm), with the model's pinned npm
 * files and ORT's .wasm from a loopback stand-in for the npm CDN, and the result must land in the
 * fill exactly as a bridge result does: same node, same paint settings, one undo step.
 *
 * UPBRIDGE_UPDATE_SCREENSHOTS=1 also writes plugins/figma/screenshot-upscale-here.png (its README's picture).
 */
jest.setTimeout(240_000);

const MODEL = 'realesr-general-x4v3';
const UI_HTML = path.join(__dirname, '..', '..', '..', 'dist', 'figma', 'ui.html');

let cdn: FakeCdn;
let browser: Browser | undefined;
let context: BrowserContext | undefined;

beforeAll(async () => {
  requireChromium();
  if (!existsSync(UI_HTML)) throw new Error('dist/figma/ui.html is missing: run npm run build first');
  await ensureNcnnFiles(MODEL);
  cdn = await startFakeCdn();
  browser = await within(chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', ...UI_HOST_ARGS], timeout: STEP_MS }), STEP_MS + 5_000, 'launching chromium');
  context = await browser.newContext({ viewport: { width: UI_SIZE.width + 40, height: UI_SIZE.height + 40 }, deviceScaleFactor: 2 });
  context.setDefaultTimeout(STEP_MS);
}, 120_000);

afterAll(async () => {
  await within(browser?.close() ?? Promise.resolve(), 15_000, 'closing chromium').catch(() => {});
  await cdn?.close();
});

/** Everything about a node and its paints except the image itself. */
function snapshot(node: SimRectangle) {
  const { x, y, width, height, rotation, name } = node;
  const paints = (node.fills as readonly Paint[]).map((p) => (p.type === 'IMAGE' ? { ...p, imageHash: '(image)' } : p));
  return { x, y, width, height, rotation, name, parent: node.parent?.id, paints };
}

test('bridge unreachable → "Upscale here" fills the image in place with the Node path\'s pixels (PSNR ≥ 45 dB), one undo step, the engine named', async () => {
  const input = syntheticRaster(72, 56, 3, 8, 11);
  const bytes = await png(input);
  const sim = new FigmaSim();
  sim.storage.set(STORAGE_KEYS.bridgeUrl, `http://localhost:${await freePort()}`);
  sim.storage.set(STORAGE_KEYS.modelMirrors, [`${cdn.origin}/npm/`]);
  let photo!: SimRectangle;
  setUp(sim, () => {
    photo = rectangle(sim, {
      name: 'Photo',
      x: 40,
      y: 30,
      width: 300,
      height: 200,
      rotation: 15,
      fills: [
        { type: 'SOLID', color: { r: 0, g: 0.5, b: 1 } },
        {
          type: 'IMAGE',
          scaleMode: 'CROP',
          imageHash: sim.addImage(bytes).hash,
          imageTransform: [
            [0.5, 0, 0.25],
            [0, 0.5, 0.1],
          ],
          filters: { exposure: 0.2, contrast: -0.1, saturation: 0.3, temperature: 0, tint: 0, highlights: 0, shadows: 0 },
          opacity: 0.8,
          blendMode: 'MULTIPLY',
          visible: true,
        },
      ],
    });
    sim.page.selection = [photo];
  });
  const before = snapshot(photo);
  const originalHash = imagePaint(photo, 1).imageHash!;

  const { page, ui, pageErrors } = await openUi(context!, sim, readFileSync(UI_HTML, 'utf8'));
  await expect(ui.locator('#connection').textContent()).resolves.toBe('Bridge not running');
  await ui.locator('#local').waitFor({ state: 'visible' });
  await expect(ui.locator('#here').textContent()).resolves.toBe('Upscale here (slower, fast model)');
  await expect(ui.locator('#local-selection').textContent()).resolves.toBe('1 layer selected · 1 image fill');

  await ui.locator('#here').click();
  await ui.locator('#outcome[data-kind="done"], #outcome[data-kind="error"]').waitFor({ timeout: 180_000 });
  await expect(ui.locator('#outcome-text').textContent()).resolves.toBe('Upscaled 1 image (4x) in 1 layer');
  // Which engine ran, in the window.
  await expect(ui.locator('#outcome-ran').textContent()).resolves.toBe(`${MODEL} · in this browser (wasm, 1 thread)`);
  if (process.env.UPBRIDGE_UPDATE_SCREENSHOTS === '1') await page.locator('#ui').screenshot({ path: path.join(__dirname, '..', '..', '..', 'plugins', 'figma', 'screenshot-upscale-here.png') });

  // The fill holds the upscale, and it is the Node path's (onnxruntime-node, same model and tiling).
  const newHash = imagePaint(photo, 1).imageHash!;
  expect(newHash).not.toBe(originalHash);
  const placed = await decode(sim.images.get(newHash)!.bytes);
  expect([placed.width, placed.height, placed.channels]).toEqual([288, 224, 3]);
  const entry = findModel(MODEL);
  const node = await upscaleRaster(input, await runnerFor(MODEL), 4, { resize: () => Promise.reject(new Error('no resize')) }, { ...windowConventions(entry), scale: 4, tile: Math.min(entry.tile, WEB_TILE), overlap: entry.overlap, alpha: 'model' });
  const db = psnr(placed.data, node.raster.data, 255).db;
  console.log(`Figma "Upscale here" vs onnxruntime-node: PSNR ${db.toFixed(2)} dB`);
  expect(db).toBeGreaterThanOrEqual(45);

  // Exactly as the bridge path places it: same node and paint settings, one undo step.
  expect(snapshot(photo)).toEqual(before);
  expect(sim.page.children).toEqual([photo]);
  expect(sim.undoSteps).toHaveLength(1);
  sim.undo();
  expect(imagePaint(photo, 1).imageHash).toBe(originalHash);
  expect(sim.notifications.at(-1)).toEqual({ message: 'Upscaled 1 image (4x) in 1 layer', error: false });

  // The verified model files are kept in clientStorage; ORT's .wasm is left to the HTTP cache.
  const source = entry.source as NcnnSource;
  expect(sim.storage.get(`upbridge.file.${source.bin.sha256}`)).toBeInstanceOf(Uint8Array);
  expect(sim.storage.get(`upbridge.file.${source.param.sha256}`)).toBeInstanceOf(Uint8Array);
  const fetched = () => cdn.requests.filter((r) => /realesrgan-x4fast\.(param|bin)$/.test(r)).length;
  expect(fetched()).toBe(2);
  expect(cdn.requests.filter((r) => r.endsWith('.wasm'))).toEqual(['/npm/onnxruntime-web@1.30.0/dist/ort-wasm-simd-threaded.wasm']);
  // Only the failed health check of the absent bridge shows as a console error.
  expect(pageErrors.filter((e) => !/ERR_CONNECTION_REFUSED .*\/v1\/health$/.test(e))).toEqual([]);

  // The plugin opened again (a new window): the model comes from clientStorage, not the CDN.
  const again = await openUi(context!, sim, readFileSync(UI_HTML, 'utf8'));
  await again.ui.locator('#here').click();
  await again.ui.locator('#outcome[data-kind="done"]').waitFor({ timeout: 180_000 });
  expect(fetched()).toBe(2);
  await expect(decode(sim.images.get(imagePaint(photo, 1).imageHash!)!.bytes)).resolves.toMatchObject({ width: 288, height: 224 });
});

test('"Upscale here" refuses an image over 1024 px a side, naming the limit, and changes nothing', async () => {
  const bytes = await png(syntheticRaster(1030, 40, 3, 8, 3));
  const sim = new FigmaSim();
  sim.storage.set(STORAGE_KEYS.bridgeUrl, `http://localhost:${await freePort()}`);
  sim.storage.set(STORAGE_KEYS.modelMirrors, [`${cdn.origin}/npm/`]);
  let wide!: SimRectangle;
  setUp(sim, () => {
    wide = rectangle(sim, { name: 'Wide', width: 1030, height: 40, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(bytes).hash }] });
    sim.page.selection = [wide];
  });
  const hash = imagePaint(wide).imageHash;
  const { ui } = await openUi(context!, sim, readFileSync(UI_HTML, 'utf8'));
  await ui.locator('#here').click();
  await ui.locator('#outcome[data-kind="error"]').waitFor({ timeout: 60_000 });
  await expect(ui.locator('#outcome-text').textContent()).resolves.toMatch(/up to 1024×1024 px \(this one is 1030×40\); use the bridge/);
  expect(imagePaint(wide).imageHash).toBe(hash);
  expect(sim.undoSteps).toHaveLength(0);
});

test('bridge running but not paired: the pairing field and "Upscale here" both offered; paired: only the bridge', async () => {
  const bridge = await startBridge();
  try {
    const bytes = await png(syntheticRaster(32, 32, 3, 8, 1));
    const sim = new FigmaSim();
    sim.storage.set(STORAGE_KEYS.bridgeUrl, bridge.origin);
    setUp(sim, () => {
      const photo = rectangle(sim, { name: 'Photo', width: 32, height: 32, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(bytes).hash }] });
      sim.page.selection = [photo];
    });
    const { ui } = await openUi(context!, sim, readFileSync(UI_HTML, 'utf8'));
    await ui.locator('#pair-form').waitFor({ state: 'visible' });
    await expect(ui.locator('#local').isVisible()).resolves.toBe(true);
    await expect(ui.locator('#here').isEnabled()).resolves.toBe(true);

    // Once paired, the bridge does the work and the in-window engine is no longer offered.
    await ui.locator('#code').fill(bridge.codes.at(-1)!);
    await ui.locator('#pair').click();
    await ui.locator('#controls').waitFor({ state: 'visible' });
    await expect(ui.locator('#local').isHidden()).resolves.toBe(true);
  } finally {
    await bridge.close();
  }
});
