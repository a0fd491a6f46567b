/**
 * The shared plugin client against a real bridge: the cancel races that a plugin's Cancel button
 * can hit, and errors keeping the bridge's codes.
 */
import { UpbridgeError } from '../../../core/errors';
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
