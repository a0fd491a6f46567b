/**
 * The bridge answers while a tile infers: ONNX Runtime runs in a worker thread
 * (core/node/ort-worker-session.ts), so the event loop that serves HTTP is free during inference.
 * Shown by order, not by timing: a health check sent once the job's first tile has started comes
 * back while that one-tile job still reports 0 tiles done.
 */
import { FAST_MODEL, jobsPath, rawBody, request, startBridge, subscribe, TestBridge, waitForStatus } from './bridge-harness';
import { syntheticRaster } from '../helpers';

describe('bridge responsiveness during inference', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await startBridge();
  });
  afterAll(() => bridge.close());

  test('health and job status answer while the only tile of a job is inferring', async () => {
    // One 532² window of the fast model: seconds of inference on two CPU cores.
    const raster = syntheticRaster(512, 512);
    const submit = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 4, tile: 4096, overlap: 32, width: 512, height: 512, channels: 3, depth: 8 }), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: rawBody(raster.data),
      token: bridge.token,
    });
    expect(submit.status).toBe(202);
    const id = submit.json().id as string;
    const events = subscribe(bridge.port, id, bridge.token);
    // The progress event with 0 done is sent as the first (and only) tile starts.
    await waitForStatus(bridge, id, (s) => s.state === 'running' || s.state === 'done', 'the job to run', 60000);
    const seen = await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (events.events.some((e) => e.type === 'progress' && e.data.progress.total === 1)) {
          clearInterval(timer);
          resolve();
        }
        if (events.events.some((e) => ['done', 'failed', 'cancelled'].includes(e.type))) {
          clearInterval(timer);
          reject(new Error(`the job ended before its tile was seen starting: ${JSON.stringify(events.events)}`));
        }
      }, 1);
    });
    expect(seen).toBeUndefined();
    const health = await request(bridge.port, '/v1/health');
    expect(health.status).toBe(200);
    const status = await request(bridge.port, `/v1/jobs/${id}`, { token: bridge.token });
    expect(status.json()).toMatchObject({ state: 'running', progress: { done: 0, total: 1 } });
    await waitForStatus(bridge, id, (s) => s.state === 'done', 'the job to finish', 120000);
    events.close();
  });
});
