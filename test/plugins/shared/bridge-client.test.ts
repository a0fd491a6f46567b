/**
 * The shared plugin client against a real bridge: the cancel races that a plugin's Cancel button
 * can hit, errors keeping the bridge's codes, and modes: the settings reaching the bridge and
 * the job's report coming back with the pixels.
 */
import { modelForMode } from '../../../core/catalogue';
import { UpbridgeError } from '../../../core/errors';
import { encodeImage } from '../../../core/node/image-io';
import { BridgeClient } from '../../../plugins/shared/bridge-client';
import { FAST_MODEL, GatedEngine, startBridge, TestBridge, waitFor } from '../../bridge-server/bridge-harness';
import { syntheticRaster } from '../../helpers';

let engine: GatedEngine;
let bridge: TestBridge;

beforeAll(async () => {
  engine = new GatedEngine();
  bridge = await startBridge({ engine });
});
afterAll(() => bridge.close());
afterEach(() => engine.open());

async function rejection(promise: Promise<unknown>): Promise<UpbridgeError> {
  try {
    await promise;
  } catch (error) {
    return error as UpbridgeError;
  }
  throw new Error('expected a rejection');
}

test('a cancel while the submit is in flight still cancels the job on the bridge', async () => {
  const controller = new AbortController();
  let submitted: Promise<void> | undefined;
  // The bridge's answer to the POST is held until the cancel has happened.
  const slowSubmit: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (init?.method === 'POST') {
      submitted = waitFor(() => controller.signal.aborted, 'the cancel').then(() => undefined);
      await submitted;
    }
    return response;
  };
  engine.close();
  const client = new BridgeClient({ baseUrl: bridge.origin, token: bridge.token, fetch: slowSubmit, pollMs: 20 });
  const before = bridge.submitted.length;
  const run = client.upscaleRaster(syntheticRaster(40, 32), { model: FAST_MODEL, scale: 4 }, { signal: controller.signal });
  await waitFor(() => bridge.submitted.length > before, 'the job on the bridge');
  controller.abort();
  expect((await rejection(run)).code).toBe('UPB_CANCELLED');
  const job = bridge.submitted[before];
  await waitFor(() => job.controller.signal.aborted, 'the cancel request on the bridge');
  engine.open();
  await waitFor(() => job.state === 'cancelled', 'the job cancelled on the bridge');
});

test('a bridge error keeps its code and message; a closed port is UPB_BRIDGE_UNREACHABLE', async () => {
  const client = new BridgeClient({ baseUrl: bridge.origin, token: bridge.token });
  const unknown = await rejection(client.upscaleRaster(syntheticRaster(8, 8), { model: 'no-such-model', scale: 2 }));
  expect([unknown.code, unknown.message]).toEqual(['UPB_UNKNOWN_MODEL', expect.stringContaining('"no-such-model"')]);
  const down = new BridgeClient({ baseUrl: 'http://127.0.0.1:9', token: 'x' });
  expect((await rejection(down.health())).code).toBe('UPB_BRIDGE_UNREACHABLE');
});

/** Node's fetch, recording the query of every job submitted (what the plugin asked the bridge for). */
function recordingFetch(queries: URLSearchParams[], rewrite: (url: URL) => void = () => {}): typeof fetch {
  return (input, init) => {
    const url = new URL(String(input));
    if (init?.method === 'POST' && url.pathname === '/v1/jobs') {
      queries.push(new URLSearchParams(url.search));
      rewrite(url);
    }
    return fetch(url, init);
  };
}

describe('modes', () => {
  test('a raster job in creative mode: only the mode, the content and the scale go out; the pixels come back with the bridge’s report', async () => {
    const queries: URLSearchParams[] = [];
    const client = new BridgeClient({ baseUrl: bridge.origin, token: bridge.token, fetch: recordingFetch(queries), pollMs: 20 });
    const before = bridge.submitted.length;
    const result = await client.upscaleRaster(syntheticRaster(24, 20, 3, 8, 5), { scale: 4, mode: 'creative', content: 'photo' });

    expect(queries.map((q) => Object.fromEntries(q))).toEqual([{ scale: '4', mode: 'creative', content: 'photo', width: '24', height: '20', channels: '3', depth: '8' }]);
    const job = bridge.submitted[before];
    expect(job.input.plan).toMatchObject({ mode: 'creative', model: undefined, content: 'photo', creativity: 1, creativityGiven: false });
    // The pixels are the bridge's result, and the report is the bridge's own, as the status gave it.
    expect([result.width, result.height, result.channels, result.depth]).toEqual([96, 80, 3, 8]);
    expect(Buffer.compare(Buffer.from(result.data.buffer, result.data.byteOffset, result.data.byteLength), Buffer.from(job.result!.data.buffer, job.result!.data.byteOffset, job.result!.data.byteLength))).toBe(0);
    expect(result.report).toEqual(job.report);
    expect(result.report).toMatchObject({ mode: 'creative', content: 'photo', contentDetected: false, creativity: 1, models: { creative: modelForMode('photo', 'creative').id } });
    expect(result.report!.lrPsnr).toBeGreaterThan(10);
    expect(result.report!.lrPsnr).toBeLessThanOrEqual(100);
  });

  test('an encoded job in balanced mode with creativity blends the two ends; the report says so and comes with the PNG', async () => {
    const queries: URLSearchParams[] = [];
    const client = new BridgeClient({ baseUrl: bridge.origin, token: bridge.token, fetch: recordingFetch(queries), pollMs: 20 });
    const { bytes } = await encodeImage(syntheticRaster(20, 16, 3, 8, 9), 'png');
    const before = bridge.submitted.length;
    const result = await client.upscaleEncoded(new Uint8Array(bytes), 'image/png', { scale: 2, mode: 'balanced', creativity: 0.25, content: 'photo' });

    expect(Object.fromEntries(queries[0])).toEqual({ scale: '2', mode: 'balanced', creativity: '0.25', content: 'photo' });
    const job = bridge.submitted[before];
    expect(job.input.plan).toMatchObject({ mode: 'balanced', creativity: 0.25, creativityGiven: true });
    expect([result.width, result.height]).toEqual([40, 32]);
    expect(Buffer.from(result.bytes.subarray(1, 4)).toString('latin1')).toBe('PNG');
    expect(result.report).toEqual(job.report);
    expect(result.report).toMatchObject({ mode: 'balanced', creativity: 0.25, models: { fidelity: modelForMode('photo', 'fidelity').id, creative: modelForMode('photo', 'creative').id } });
  });

  test('without a mode the model runs alone and the report still names it, with the LR-PSNR', async () => {
    const client = new BridgeClient({ baseUrl: bridge.origin, token: bridge.token, pollMs: 20 });
    const result = await client.upscaleRaster(syntheticRaster(16, 12), { model: FAST_MODEL, scale: 2 });
    expect(result.report).toMatchObject({ models: { result: FAST_MODEL }, consistent: false });
    expect(result.report!.mode).toBeUndefined();
    expect(result.report!.lrPsnr).toEqual(expect.any(Number));
  });

  test('a bridge that ignores the mode (older than modes) gets its result refused, with what to do', async () => {
    const queries: URLSearchParams[] = [];
    // The mode is dropped on the way, as a bridge that does not know the option would drop it.
    const client = new BridgeClient({ baseUrl: bridge.origin, token: bridge.token, fetch: recordingFetch(queries, (url) => url.searchParams.delete('mode')), pollMs: 20 });
    const error = await rejection(client.upscaleRaster(syntheticRaster(16, 12), { scale: 2, mode: 'balanced' }));
    expect(queries[0].get('mode')).toBe('balanced');
    expect([error.code, error.message]).toEqual(['UPB_INTERNAL', `the bridge at ${bridge.origin} ran the job without the balanced mode (it reported no mode); it is probably older than modes: update upbridge and restart the bridge`]);
  });

  test('creativity without a mode is the bridge’s refusal, with its message', async () => {
    const client = new BridgeClient({ baseUrl: bridge.origin, token: bridge.token, pollMs: 20 });
    const error = await rejection(client.upscaleRaster(syntheticRaster(8, 8), { model: FAST_MODEL, scale: 2, creativity: 0.5 }));
    expect([error.code, error.message]).toEqual(['UPB_INVALID_OPTION', expect.stringMatching(/^creativity must be used with a mode/)]);
  });
});
