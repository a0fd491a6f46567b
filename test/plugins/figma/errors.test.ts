import { START_HINT } from '../../../plugins/shared/bridge-client';
import { STORAGE_KEYS } from '../../../plugins/figma/src/main/plugin';
import { syntheticRaster } from '../../helpers';
import { freePort, GatedEngine, startBridge, TestBridge, waitFor } from '../../bridge-server/bridge-harness';
import { imagePaint, openPlugin, png, runAction, waitForOutcome } from './plugin-harness';
import { FigmaSim, rectangle, setUp, SimRectangle } from './figma-sim';

/**
 * Every way a run can fail, each shown in the plugin window and with figma.notify, and none of
 * them changing the document: the bridge not running (at start, or gone mid-session), not paired
 * (pairing by code, the token in clientStorage, a revoked token), nothing upscalable selected, a
 * bad request, and a cancel in the middle of a job.
 */
let bridge: TestBridge;
let photoBytes: Uint8Array;

beforeAll(async () => {
  bridge = await startBridge();
  photoBytes = await png(syntheticRaster(24, 24, 3, 8, 31));
});

afterAll(async () => {
  await bridge?.close();
});

/** A page with one selected rectangle filled with a small photo. */
function photoDocument(holder: { photo?: SimRectangle }) {
  return (sim: FigmaSim) =>
    setUp(sim, () => {
      holder.photo = rectangle(sim, { name: 'Photo', width: 24, height: 24, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(photoBytes).hash }] });
      sim.page.selection = [holder.photo];
    });
}

test('bridge not running: the window says how to start it, and Figma shows the same as an error', async () => {
  const closedPort = await freePort();
  const url = `http://127.0.0.1:${closedPort}`;
  const { sim, ui } = await openPlugin({ bridgeUrl: url, token: bridge.token, document: photoDocument({}) });

  const message = `the upbridge bridge is not running at ${url}: ${START_HINT}`;
  expect(ui.state.connection).toEqual({ state: 'bridge-down', message });
  expect(sim.notifications).toEqual([{ message, error: true }]);
  // Nothing can be started from there: the run is refused before anything reaches the main thread.
  ui.run('fills', { scale: 4, includeChildren: true });
  expect(ui.state.busy).toBe(false);
});

test('bridge gone mid-session: the run fails with how to start it, the document is unchanged', async () => {
  const own = await startBridge();
  const holder: { photo?: SimRectangle } = {};
  const { sim, ui } = await openPlugin({ bridgeUrl: own.origin, token: own.token, document: photoDocument(holder) });
  expect(ui.state.connection.state).toBe('ready');
  const hash = imagePaint(holder.photo!).imageHash;
  await own.close();

  const outcome = await runAction(ui, 'fills');

  const message = `the upbridge bridge is not running at ${own.origin}: ${START_HINT}`;
  expect(outcome).toEqual({ kind: 'error', text: message, notes: [] });
  expect(sim.notifications).toEqual([{ message, error: true }]);
  expect(ui.state.connection).toEqual({ state: 'bridge-down', message });
  expect(imagePaint(holder.photo!).imageHash).toBe(hash);
  expect(sim.undoSteps).toHaveLength(0);
  expect(sim.uncommitted).toBe(0);
});

test('not paired: asks for the code; a wrong code is refused; the right one pairs and the token goes to clientStorage', async () => {
  const holder: { photo?: SimRectangle } = {};
  const { sim, ui } = await openPlugin({ bridgeUrl: bridge.origin, document: photoDocument(holder) });
  const notPaired = 'Not paired with the bridge yet: enter the pairing code it shows';
  expect(ui.state.connection).toEqual({ state: 'pairing', message: notPaired });
  expect(sim.notifications).toEqual([{ message: notPaired, error: true }]);

  await ui.pair('ZZZZZZ');
  expect(ui.state.connection.state).toBe('pairing');
  expect(ui.state.connection).toEqual({ state: 'pairing', message: expect.stringMatching(/code/i) });
  await ui.pair('no!');
  expect(ui.state.connection).toEqual({ state: 'pairing', message: expect.stringContaining('6 letters and digits') });
  expect(sim.storage.has(STORAGE_KEYS.token)).toBe(false);

  await ui.pair(bridge.codes.at(-1)!.toLowerCase());
  expect(ui.state.connection).toMatchObject({ state: 'ready', models: expect.arrayContaining([expect.objectContaining({ id: 'realesr-general-x4v3' })]) });
  const stored = await waitFor(() => sim.storage.get(STORAGE_KEYS.token) as string | undefined, 'the token in clientStorage');
  await expect(bridge.tokens.verify(stored)).resolves.toMatchObject({ name: 'Figma plugin' });

  // Paired, it works; and the next session starts paired from clientStorage.
  expect(await runAction(ui, 'fills', { scale: 2 })).toMatchObject({ kind: 'done' });
  const next = await openPlugin({ bridgeUrl: bridge.origin, token: stored, document: photoDocument({}) });
  expect(next.ui.state.connection.state).toBe('ready');
});

test('a revoked token: at start the plugin asks to pair again; mid-session the run fails and the token is forgotten', async () => {
  const { token: early } = await bridge.tokens.create('figma-revoked-early');
  await bridge.tokens.revoke('figma-revoked-early');
  const first = await openPlugin({ bridgeUrl: bridge.origin, token: early, document: photoDocument({}) });
  expect(first.ui.state.connection).toEqual({ state: 'pairing', message: expect.stringContaining('pair again') });
  await waitFor(() => !first.sim.storage.has(STORAGE_KEYS.token), 'the token to be deleted from clientStorage');
  expect(first.sim.notifications).toEqual([{ message: expect.stringContaining('pair again'), error: true }]);

  const { token: late } = await bridge.tokens.create('figma-revoked-late');
  const holder: { photo?: SimRectangle } = {};
  const second = await openPlugin({ bridgeUrl: bridge.origin, token: late, document: photoDocument(holder) });
  expect(second.ui.state.connection.state).toBe('ready');
  await bridge.tokens.revoke('figma-revoked-late');
  const hash = imagePaint(holder.photo!).imageHash;

  const outcome = await runAction(second.ui, 'fills');

  expect(outcome).toEqual({ kind: 'error', text: 'unknown or revoked token; pair again', notes: [] });
  expect(second.sim.notifications).toEqual([{ message: 'unknown or revoked token; pair again', error: true }]);
  expect(second.ui.state.connection.state).toBe('pairing');
  await waitFor(() => !second.sim.storage.has(STORAGE_KEYS.token), 'the token to be deleted from clientStorage');
  expect(imagePaint(holder.photo!).imageHash).toBe(hash);
});

test('nothing upscalable selected: each action says what to select', async () => {
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) => setUp(sim, () => rectangle(sim, { name: 'Solid', width: 10, height: 10, fills: [{ type: 'SOLID', color: { r: 0, g: 0, b: 1 } }] })),
  });
  const submittedBefore = bridge.submitted.length;

  const cases: Array<[string, 'fills' | 'frames', boolean, string]> = [
    ['nothing selected', 'fills', true, 'Nothing is selected: select layers with image fills'],
    ['nothing selected', 'frames', true, 'Nothing is selected: select the frames to upscale as images'],
    ['a solid rectangle', 'fills', true, 'No image fills in the selection: select layers filled with an image'],
    ['a solid rectangle', 'fills', false, 'No image fills in the selection: select layers filled with an image (or tick "Include layers inside" to look inside groups and frames)'],
  ];
  for (const [selection, action, includeChildren, message] of cases) {
    sim.page.selection = selection === 'nothing selected' ? [] : [sim.page.children[0]];
    const outcome = await runAction(ui, action, { includeChildren });
    expect({ selection, outcome }).toEqual({ selection, outcome: { kind: 'error', text: message, notes: [] } });
    expect(sim.notifications.at(-1)).toEqual({ message, error: true });
  }
  expect(bridge.submitted.length).toBe(submittedBefore);
  expect(sim.undoSteps).toHaveLength(0);
});

test('a malformed run request is refused with the reason', async () => {
  const { sim } = await openPlugin({ bridgeUrl: bridge.origin, token: bridge.token, document: photoDocument({}) });
  const limits = { maxOutputSide: 16384, maxOutputPixels: 268e6, maxInputPixels: 64e6 };
  const failures: unknown[] = [];
  sim.onUiMessage = (message) => failures.push(message);
  sim.sendFromUi({ type: 'run', request: { action: 'fills', scale: 20, includeChildren: true, limits } });
  sim.sendFromUi({ type: 'run', request: { action: 'sharpen', scale: 2, includeChildren: true, limits } });
  sim.sendFromUi({ type: 'run', request: { action: 'fills', scale: 2, mode: 'wild' as never, includeChildren: true, limits } });
  sim.sendFromUi({ type: 'run', request: { action: 'fills', scale: 2, model: 'realesrgan-x4plus', creativity: 0.5, includeChildren: true, limits } });
  sim.sendFromUi({ type: 'run', request: { action: 'fills', scale: 2, mode: 'creative', creativity: 2, includeChildren: true, limits } });
  await waitFor(() => failures.length >= 5, 'five refusals');
  expect(failures).toEqual([
    { type: 'failed', error: { code: 'UPB_INVALID_OPTION', message: 'scale must be a number from 1 to 16, got 20' } },
    { type: 'failed', error: { code: 'UPB_INVALID_OPTION', message: 'action must be "fills" or "frames", got "sharpen"' } },
    { type: 'failed', error: { code: 'UPB_INVALID_OPTION', message: 'mode must be one of fidelity, balanced, creative, got "wild"' } },
    { type: 'failed', error: { code: 'UPB_INVALID_OPTION', message: 'creativity goes with a mode (fidelity, balanced or creative), which picks the two models it blends' } },
    { type: 'failed', error: { code: 'UPB_INVALID_OPTION', message: 'creativity must be a number from 0 to 1, got 2' } },
  ]);
  expect(bridge.submitted.some((job) => job.input.plan.creativity === 2)).toBe(false);
});

test('cancel mid-job: the job stops on the bridge, the window and Figma say so, nothing changes', async () => {
  const gated = new GatedEngine();
  const own = await startBridge({ engine: gated });
  try {
    const holder: { photo?: SimRectangle } = {};
    const { sim, ui } = await openPlugin({ bridgeUrl: own.origin, token: own.token, document: photoDocument(holder) });
    const hash = imagePaint(holder.photo!).imageHash;
    gated.close();
    ui.run('fills', { scale: 4, includeChildren: true });
    await gated.waitHeld(1);
    await waitFor(() => ui.state.progress?.text.includes('0 of 1 tiles'), 'progress from the running job');

    ui.cancel();
    const outcome = await waitForOutcome(ui);
    // The DELETE is on its way; let the held tile go only once the bridge has it, or a one-tile
    // job could finish before the cancel arrives.
    await waitFor(() => own.submitted[0].controller.signal.aborted, 'the cancel request on the bridge');
    gated.open();

    expect(outcome).toEqual({ kind: 'cancelled', text: 'Upscale cancelled: nothing was changed', notes: [] });
    expect(sim.notifications).toEqual([{ message: 'Upscale cancelled: nothing was changed', error: false }]);
    await waitFor(() => own.submitted[0].state === 'cancelled', 'the bridge job to be cancelled');
    expect(imagePaint(holder.photo!).imageHash).toBe(hash);
    expect(sim.undoSteps).toHaveLength(0);
    expect(sim.uncommitted).toBe(0);
    // The plugin is ready for the next run.
    expect(ui.state).toMatchObject({ busy: false, connection: { state: 'ready' } });
  } finally {
    gated.open();
    await own.close();
  }
});

test('the selection summary follows the selection', async () => {
  const holder: { photo?: SimRectangle } = {};
  const { sim, ui } = await openPlugin({ bridgeUrl: bridge.origin, token: bridge.token, document: photoDocument(holder) });
  expect(ui.state.selection).toEqual({ layers: 1, imageFills: 1 });
  sim.page.selection = [];
  await waitFor(() => ui.state.selection.layers === 0, 'the selection message');
  expect(ui.state.selection).toEqual({ layers: 0, imageFills: 0 });
});
