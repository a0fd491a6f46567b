/**
 * Figma's side of the UI iframe, for the browser tests: a host page with the built UI in a
 * sandboxed iframe (origin null), relaying its messages to and from the plugin's real main thread
 * running on the simulated host in this process.
 */
import type { BrowserContext, Frame, Page } from 'playwright-core';
import { startPlugin, UI_SIZE } from '../../../plugins/figma/src/main/plugin';
import { waitFor } from '../../bridge-server/bridge-harness';
import { STEP_MS, within } from '../../browser';
import { FigmaSim } from './figma-sim';

/**
 * The page ↔ test boundary is playwright's JSON, so bytes cross it as base64 and are turned back
 * into Uint8Array on each side. This is the test's stand-in for Figma's channel only; the plugin
 * itself sends Uint8Array.
 */
export function toWire(value: unknown): unknown {
  if (value instanceof Uint8Array) return { __bytes: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
  return value;
}

export function fromWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value && typeof value === 'object') {
    if ('__bytes' in value) return new Uint8Array(Buffer.from((value as { __bytes: string }).__bytes, 'base64'));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v)]));
  }
  return value;
}

/**
 * Chromium flags for a browser that hosts the UI. Chromium puts a sandboxed iframe in a process of
 * its own, and that frame misses playwright's emulated device scale (devicePixelRatio 1 in a page
 * at 2): one fresh-clone run in about ten, with another browser suite loading the CPUs, clicks were
 * routed to the wrong point for 30 s ("<section id=controls> intercepts pointer events"). In the
 * page's process the frame is still sandboxed, its origin still null (openUi checks).
 */
export const UI_HOST_ARGS = ['--disable-features=IsolateSandboxedIframes'];

/** The host page: a sandboxed iframe, and the relay Figma's editor would be. */
export const HOST_PAGE = `<!doctype html><html><head><link rel="icon" href="data:,"><style>body{margin:0;background:#e5e5e5}iframe{border:0;display:block;background:#fff}</style></head><body>
<iframe id="ui" sandbox="allow-scripts" width="${UI_SIZE.width}" height="${UI_SIZE.height}"></iframe>
<script>
  const wire = (v) => v instanceof Uint8Array ? { __bytes: btoa(Array.from(v, (b) => String.fromCharCode(b)).join('')) }
    : Array.isArray(v) ? v.map(wire) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wire(x)])) : v;
  const unwire = (v) => Array.isArray(v) ? v.map(unwire) : v && typeof v === 'object'
    ? ('__bytes' in v ? Uint8Array.from(atob(v.__bytes), (c) => c.charCodeAt(0)) : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwire(x)]))) : v;
  addEventListener('message', (e) => {
    if (e.source === document.getElementById('ui').contentWindow && e.data && e.data.pluginMessage) window.toMain(wire(e.data.pluginMessage));
  });
  window.toUi = (m) => document.getElementById('ui').contentWindow.postMessage({ pluginMessage: unwire(m) }, '*');
</script></body></html>`;

export interface Session {
  page: Page;
  ui: Frame;
  pageErrors: string[];
}

/** Loads the built UI in the host page and starts the plugin's main thread on `sim`. */
export async function openUi(context: BrowserContext, sim: FigmaSim, html: string): Promise<Session> {
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`${m.text()} ${m.location().url}`);
  });
  await page.exposeFunction('toMain', (message: unknown) => sim.sendFromUi(fromWire(message)));
  await page.setContent(HOST_PAGE);
  sim.onUiMessage = (message) => void page.evaluate((m) => (window as unknown as { toUi(m: unknown): void }).toUi(m), toWire(message)).catch(() => {});
  startPlugin(sim.api, html);
  if (sim.ui.options?.width !== UI_SIZE.width || sim.ui.options?.height !== UI_SIZE.height) throw new Error(`showUI was given ${JSON.stringify(sim.ui.options)}`);
  // Figma puts the showUI html into the iframe; here the test does, from what the main thread was given.
  await page.evaluate((source) => ((document.getElementById('ui') as HTMLIFrameElement).srcdoc = source), sim.ui.html!);
  const ui = await waitFor(() => page.frames().find((f) => f !== page.mainFrame()), 'the UI frame');
  await ui.waitForSelector('#connection:not([data-state="connecting"])');
  const origin = await within(ui.evaluate(() => self.origin), STEP_MS, 'reading the frame origin');
  if (origin !== 'null') throw new Error(`the UI frame's origin is ${origin}, not null as in Figma`);
  const scales = await within(Promise.all([page.evaluate(() => devicePixelRatio), ui.evaluate(() => devicePixelRatio)]), STEP_MS, 'reading the device scales');
  if (scales[0] !== scales[1]) throw new Error(`the UI frame's devicePixelRatio is ${scales[1]} in a page at ${scales[0]}: launch chromium with UI_HOST_ARGS`);
  return { page, ui, pageErrors };
}


