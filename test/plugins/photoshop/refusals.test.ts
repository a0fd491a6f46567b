/**
 * Every refusal, a cancel and a failure mid-write, against the simulated host and a real bridge:
 * each ends with a clear typed error, every open document exactly as before (pixels, layers,
 * history), no document-changing call, every image data disposed, and no job the user did not
 * ask for.
 */
import { UpbridgeError } from '../../../core/errors';
import { fitsLimits } from '../../../core/scale';
import { BridgeClient } from '../../../plugins/shared/bridge-client';
import { runUpscale } from '../../../plugins/photoshop/src/upscale-command';
import { UpscaleRequest } from '../../../plugins/photoshop/src/plan';
import { expectError, FAST_MODEL, freePort, GatedEngine, jobsPath, rawBody, request, startBridge, TestBridge, waitFor } from '../../bridge-server/bridge-harness';
import { sim, SimDocumentSpec } from './sim/photoshop';
import { changingCalls, clientFor, psPixels, uxpFetch } from './ps-helpers';

let engine: GatedEngine;
let bridge: TestBridge;

beforeAll(async () => {
  engine = new GatedEngine();
  bridge = await startBridge({ engine });
});
afterAll(async () => {
  engine.open();
  await bridge.close();
});
afterEach(async () => {
  engine.open();
  await waitFor(() => bridge.queue.length === 0, 'an idle queue after the test');
  sim.releaseModal();
});

const SELECTION = { left: 20, top: 10, right: 68, bottom: 50 };

function photo(extra: Partial<SimDocumentSpec> = {}): SimDocumentSpec {
  return { title: 'Photo', width: 96, height: 72, layers: [{ name: 'Background', background: true, pixels: psPixels(96, 72, 3, 8, 2) }], selection: SELECTION, ...extra };
}

const SELECTION_TO_DOC: UpscaleRequest = { target: 'selection', destination: 'new-document', scale: 4, model: FAST_MODEL };

/** Runs `run`, expects it to throw, and checks that nothing at all changed. */
async function expectNothingChanged(run: () => Promise<unknown>): Promise<Error> {
  const docs = sim.documentIds();
  const snapshots = docs.map((id) => sim.snapshot(id));
  const active = sim.activeDocumentId();
  const jobs = bridge.submitted.length;
  const error = await run().then(
    () => {
      throw new Error('expected the upscale to be refused');
    },
    (e: Error) => e,
  );
  expect(sim.documentIds()).toEqual(docs);
  docs.forEach((id, i) => expect(sim.snapshot(id)).toEqual(snapshots[i]));
  expect(sim.activeDocumentId()).toBe(active);
  expect(changingCalls()).toEqual([]);
  expect(sim.undisposedImageData()).toEqual([]);
  expect(sim.isModal()).toBe(false);
  expect(bridge.submitted.length).toBe(jobs);
  return error;
}

async function expectRefusal(run: () => Promise<unknown>, code: string, message: RegExp | string): Promise<UpbridgeError> {
  const error = await expectNothingChanged(run);
  expect(error).toBeInstanceOf(UpbridgeError);
  expect({ code: (error as UpbridgeError).code, message: error.message }).toEqual({ code, message: typeof message === 'string' ? message : expect.stringMatching(message) });
  return error as UpbridgeError;
}

describe('refused before anything is read or sent', () => {
  test.each<[string, { documents?: SimDocumentSpec[]; selectionApi?: boolean }, UpscaleRequest, string, RegExp]>([
    ['no document', {}, SELECTION_TO_DOC, 'UPB_NOTHING_TO_UPSCALE', /^no document is open/],
    ['no selection', { documents: [photo({ selection: null })] }, SELECTION_TO_DOC, 'UPB_NOTHING_TO_UPSCALE', /^nothing is selected/],
    ['no selection, before Photoshop 25 (batchPlay)', { selectionApi: false, documents: [photo({ selection: null })] }, SELECTION_TO_DOC, 'UPB_NOTHING_TO_UPSCALE', /^nothing is selected/],
    ['an empty selection', { documents: [photo({ selection: { left: 30, top: 10, right: 30, bottom: 40 } })] }, SELECTION_TO_DOC, 'UPB_NOTHING_TO_UPSCALE', /^the selection is empty or outside the canvas/],
    ['a selection outside the canvas', { documents: [photo({ selection: { left: 100, top: -40, right: 140, bottom: -2 } })] }, SELECTION_TO_DOC, 'UPB_NOTHING_TO_UPSCALE', /^the selection is empty or outside the canvas/],
    ['a CMYK document', { documents: [photo({ mode: 'CMYKColorMode', layers: [{ name: 'Background', background: true }] })] }, SELECTION_TO_DOC, 'UPB_UNSUPPORTED_DOCUMENT', /^CMYK documents can't be upscaled: convert a copy with Image > Mode > RGB Color/],
    ['a Lab document', { documents: [photo({ mode: 'labColorMode', layers: [{ name: 'Background', background: true }] })] }, SELECTION_TO_DOC, 'UPB_UNSUPPORTED_DOCUMENT', /^Lab documents can't be upscaled/],
    ['a 32-bit document', { documents: [photo({ bits: 'bitDepth32', layers: [{ name: 'Background', background: true }] })] }, SELECTION_TO_DOC, 'UPB_UNSUPPORTED_DOCUMENT', /^32-bit documents can't be upscaled: convert a copy with Image > Mode > 16 Bits\/Channel/],
    [
      'a group as the active layer',
      { documents: [photo({ layers: [{ name: 'Folder', children: [{ name: 'Inside', pixels: psPixels(96, 72, 4, 8, 3) }] }, photo().layers[0]], active: ['Folder'] })] },
      { target: 'layer', destination: 'new-layer', scale: 2 },
      'UPB_NOTHING_TO_UPSCALE',
      /^"Folder" is a group: pick a pixel layer/,
    ],
  ])('%s', async (_what, setup, req, code, message) => {
    sim.reset(setup);
    await expectRefusal(() => runUpscale(clientFor(bridge), req), code, message);
    // Nothing was read either.
    expect(sim.callNames().filter((n) => n.startsWith('imaging.'))).toEqual([]);
  });

  test('too large for the bridge: the message names the largest scale that fits, and that scale works', async () => {
    const limits = { maxOutputSide: 512 };
    const small = await startBridge({ limits });
    try {
      const [source] = sim.reset({ documents: [photo()] });
      const client = clientFor(small);
      const health = await client.health();
      expect(health.limits.maxOutputSide).toBe(512);
      // Worked out here from the limits: the largest tenth whose 48×40 output fits.
      let best = 0;
      for (let k = 10; k <= 160; k++) if (fitsLimits(48, 40, k / 10, health.limits)) best = k / 10;
      expect(best).toBeGreaterThan(1);
      const error = await expectRefusal(() => runUpscale(client, { ...SELECTION_TO_DOC, scale: 16 }), 'UPB_TOO_LARGE', `Selection at 16x would be 768×640 px, more than the bridge makes (512 px a side, ${Math.round(health.limits.maxOutputPixels / 1e6)} MP): the largest scale that fits is ${best}x`);
      expect(error.details).toEqual({ largestScale: best });
      expect(small.submitted).toHaveLength(0);

      const result = await runUpscale(client, { ...SELECTION_TO_DOC, scale: best });
      expect(sim.info(result.documentId)).toMatchObject({ width: Math.round(48 * best), height: Math.round(40 * best) });
      expect(Math.max(sim.info(result.documentId).width, sim.info(result.documentId).height)).toBeLessThanOrEqual(512);
      expect(sim.history(source)).toEqual([]);
    } finally {
      await small.close();
    }
  });
});

describe('bridge and pairing', () => {
  test('bridge not running: UPB_BRIDGE_UNREACHABLE with how to start it, and Photoshop is not even asked', async () => {
    sim.reset({ documents: [photo()] });
    const port = await freePort();
    const client = new BridgeClient({ baseUrl: `http://127.0.0.1:${port}`, token: 'any', fetch: uxpFetch() });
    const error = await expectRefusal(() => runUpscale(client, SELECTION_TO_DOC), 'UPB_BRIDGE_UNREACHABLE', /^the upbridge bridge is not running at http:\/\/127\.0\.0\.1:\d+: start it with `npm start`/);
    expect(error.message).toContain(`:${port}`);
    expect(sim.calls).toEqual([]);
  });

  test('not paired: UPB_UNAUTHORIZED before any upload', async () => {
    sim.reset({ documents: [photo()] });
    await expectRefusal(() => runUpscale(clientFor(bridge, { token: null }), SELECTION_TO_DOC), 'UPB_UNAUTHORIZED', /^not paired with the bridge yet: enter the pairing code/);
  });

  test('a token the bridge does not know (revoked): the bridge’s 401 comes through as UPB_UNAUTHORIZED', async () => {
    sim.reset({ documents: [photo()] });
    await expectRefusal(() => runUpscale(clientFor(bridge, { token: 'upb_revoked_or_made_up' }), SELECTION_TO_DOC), 'UPB_UNAUTHORIZED', /revoked token; pair again/);
  });

  test('the Origin header really is sent: a web page’s origin is refused by the bridge', async () => {
    sim.reset({ documents: [photo()] });
    await expectRefusal(() => runUpscale(clientFor(bridge, { origin: 'https://evil.example' }), SELECTION_TO_DOC), 'UPB_FORBIDDEN_ORIGIN', 'requests from "https://evil.example" are not allowed');
    expect(sim.calls).toEqual([]);
  });

  test('a bridge error is shown with the bridge’s own message (unknown model)', async () => {
    sim.reset({ documents: [photo()] });
    // The same request straight to the bridge, for its message.
    const direct = await request(bridge.port, jobsPath({ model: 'no-such-model', scale: 4, width: 48, height: 40, channels: 3, depth: 8 }), {
      method: 'POST',
      token: bridge.token,
      headers: { 'content-type': 'application/octet-stream' },
      body: rawBody(new Uint8Array(48 * 40 * 3)),
    });
    const { message } = expectError(direct, 400, 'UPB_UNKNOWN_MODEL');
    await expectRefusal(() => runUpscale(clientFor(bridge), { ...SELECTION_TO_DOC, model: 'no-such-model' }), 'UPB_UNKNOWN_MODEL', message);
  });

  test('another plugin holding Photoshop’s modal state: its error, nothing changed', async () => {
    sim.reset({ documents: [photo()] });
    sim.holdModal('com.other.plugin');
    const error = await expectNothingChanged(() => runUpscale(clientFor(bridge), SELECTION_TO_DOC));
    expect(error.message).toMatch(/host is in a modal state/);
  });
});

describe('cancel and failures', () => {
  test('cancel mid-job: UPB_CANCELLED, the job cancelled on the bridge, the document unchanged, no history state', async () => {
    const [source] = sim.reset({ documents: [photo()] });
    engine.close();
    const controller = new AbortController();
    const progress: unknown[] = [];
    const run = runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-layer', scale: 2, model: FAST_MODEL }, { signal: controller.signal, onProgress: (p) => progress.push(p) });
    const before = sim.snapshot(source);
    const jobsBefore = bridge.submitted.length;
    await engine.waitHeld(1);
    // The user cancels while the plugin polls the running job (its first progress report comes
    // before the upload, the second from a poll). A cancel racing the upload's response is a
    // shared-client matter (BridgeClient.run registers its DELETE only once the POST resolved).
    await waitFor(() => progress.length >= 2, 'the plugin polling the submitted job');
    controller.abort();
    const error = await run.catch((e) => e);
    expect(error).toBeInstanceOf(UpbridgeError);
    expect(error.code).toBe('UPB_CANCELLED');
    expect(bridge.submitted).toHaveLength(jobsBefore + 1);
    const job = bridge.submitted.at(-1)!;
    // The plugin's DELETE reached the bridge while the tile was still held at the gate…
    await waitFor(() => job.controller.signal.aborted, 'the cancel request on the bridge');
    expect(job.state).toBe('running');
    // …so once the tile is let go, the job stops there, as cancelled, with no result.
    engine.open();
    await waitFor(() => job.state === 'cancelled', 'the job cancelled on the bridge');
    expect(job.result).toBeUndefined();
    expect(sim.snapshot(source)).toEqual(before);
    expect(sim.history(source)).toEqual([]);
    expect(changingCalls()).toEqual([]);
    expect(sim.undisposedImageData()).toEqual([]);
  });

  test('a failure while writing the new layer: the suspended history is rolled back, the document as before', async () => {
    const spec = photo({ layers: [{ name: 'Paint', rect: { left: 4, top: 4, right: 40, bottom: 30 }, pixels: psPixels(36, 26, 4, 8, 5) }, photo().layers[0]] });
    const [source] = sim.reset({ documents: [spec] });
    const before = sim.snapshot(source);
    sim.failNext('imaging.putPixels', new Error('Photoshop ran out of scratch disk'));
    const error = await runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-layer', scale: 2, model: FAST_MODEL }).catch((e) => e);
    expect(error.message).toBe('Photoshop ran out of scratch disk');
    // The resize and the new layer did happen, inside the suspension, before the write failed…
    expect(changingCalls()).toEqual(['Document.resizeImage', 'Document.createPixelLayer', 'imaging.putPixels']);
    expect(sim.calls.filter((c) => changingCalls().includes(c.name)).every((c) => c.modal)).toBe(true);
    // …and were all undone: same size, same layers, same pixels, no history state.
    expect(sim.snapshot(source)).toEqual(before);
    expect(sim.history(source)).toEqual([]);
    expect(bridge.submitted.at(-1)!.state).toBe('done');
    expect(sim.undisposedImageData()).toEqual([]);
  });

  test('a failure while writing into the new document: no half-made document is left open', async () => {
    const [source] = sim.reset({ documents: [photo()] });
    const before = sim.snapshot(source);
    sim.failNext('imaging.putPixels', new Error('write failed'));
    const error = await runUpscale(clientFor(bridge), SELECTION_TO_DOC).catch((e) => e);
    expect(error.message).toBe('write failed');
    expect(sim.callNames()).toContain('app.createDocument');
    expect(sim.documentIds()).toEqual([source]);
    expect(sim.activeDocumentId()).toBe(source);
    expect(sim.snapshot(source)).toEqual(before);
    expect(sim.undisposedImageData()).toEqual([]);
  });
});
