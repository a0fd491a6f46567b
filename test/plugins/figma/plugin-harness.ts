/**
 * Runs the real plugin in jest: the main thread (startPlugin) on the simulated Figma host, and the
 * UI iframe's logic (UiController) against a real bridge, joined by the simulation's message
 * channel. Only the DOM of the UI is left out; the browser test covers it.
 */
import sharp from 'sharp';
import { STORAGE_KEYS, startPlugin } from '../../../plugins/figma/src/main/plugin';
import { Action } from '../../../plugins/figma/src/common/messages';
import { Outcome, RunOptions, UiController, ViewState } from '../../../plugins/figma/src/ui/controller';
import { TestBridge, waitFor } from '../../bridge-server/bridge-harness';
import { FigmaSim } from './figma-sim';
import { Raster } from '../../../core/raster';
import { decodeImage } from '../../../core/node/image-io';

export interface OpenPlugin {
  sim: FigmaSim;
  ui: UiController;
}

export interface OpenOptions {
  bridgeUrl: string;
  token?: string;
  /** Builds the document before the plugin starts. */
  document?: (sim: FigmaSim) => void;
}

export async function openPlugin(options: OpenOptions): Promise<OpenPlugin> {
  const sim = new FigmaSim();
  sim.storage.set(STORAGE_KEYS.bridgeUrl, options.bridgeUrl);
  if (options.token) sim.storage.set(STORAGE_KEYS.token, options.token);
  options.document?.(sim);
  startPlugin(sim.api, '<!doctype html><title>upbridge</title>');
  const ui = new UiController({ post: (message) => sim.sendFromUi(message), render: () => {}, pollMs: 25 });
  sim.onUiMessage = (message) => ui.receive(message as never);
  ui.start();
  await settled(ui);
  return { sim, ui };
}

/** Waits until the UI has finished connecting (ready, pairing or bridge down). */
export function settled(ui: UiController): Promise<ViewState> {
  return waitFor(() => (ui.state.connection.state !== 'connecting' ? ui.state : undefined), 'the UI to connect');
}

export async function runAction(ui: UiController, action: Action, options: Partial<RunOptions> = {}): Promise<Outcome> {
  if (ui.state.connection.state !== 'ready') throw new Error(`the UI is not ready: ${JSON.stringify(ui.state.connection)}`);
  ui.run(action, { scale: 4, includeChildren: true, ...options });
  return waitForOutcome(ui);
}

export function waitForOutcome(ui: UiController): Promise<Outcome> {
  return waitFor(() => (!ui.state.busy && ui.state.outcome ? ui.state.outcome : undefined), 'the run to finish', 60000);
}

/** An 8-bit raster encoded by sharp (libvips), as a designer's image file would be. */
export async function encode(raster: Raster, format: 'png' | 'jpeg' | 'gif'): Promise<Uint8Array> {
  const image = sharp(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength), { raw: { width: raster.width, height: raster.height, channels: raster.channels } });
  return new Uint8Array(await image.toFormat(format).toBuffer());
}

export const png = (raster: Raster) => encode(raster, 'png');

/** Decoded with the project's own libvips decoder, as the bridge decodes its inputs. */
export async function decode(bytes: Uint8Array): Promise<{ width: number; height: number; channels: number; data: Buffer }> {
  const { raster } = await decodeImage(Buffer.from(bytes));
  return { width: raster.width, height: raster.height, channels: raster.channels, data: Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength) };
}

/** The IMAGE paint at `index` of a node's fills. */
export function imagePaint(node: { fills: readonly Paint[] | symbol }, index = 0): ImagePaint {
  const paint = (node.fills as readonly Paint[])[index];
  if (paint?.type !== 'IMAGE') throw new Error(`fill ${index} is not an image: ${JSON.stringify(paint)}`);
  return paint;
}

/** Runs `edit` as the bridge takes its next job: the designer working in Figma while the bridge runs. */
export function whenNextJobStarts(bridge: TestBridge, edit: () => void): void {
  const submit = bridge.queue.submit.bind(bridge.queue);
  bridge.queue.submit = (input) => {
    bridge.queue.submit = submit;
    edit();
    return submit(input);
  };
}
