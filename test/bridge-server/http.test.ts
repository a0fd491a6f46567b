/**
 * The bridge over real HTTP on loopback: jobs, results, SSE, cancellation, the queue and result
 * retention, with real ONNX Runtime inference (the fast model, small images). Security and limits
 * are in http-security.test.ts and http-limits.test.ts.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Engine } from '../../bridge-server/config';
import { catalogue } from '../../core/catalogue';
import { ModelStore } from '../../core/node/model-store';
import { nodeEngine } from '../../bridge-server/engine';
import { syntheticRaster } from '../helpers';
import {
  expectError,
  FAST_MODEL,
  GatedEngine,
  INPUT_A,
  jobsPath,
  rawBody,
  request,
  ROOT,
  SseEvent,
  startBridge,
  subscribe,
  TestBridge,
  waitFor,
  waitForStatus,
} from './bridge-harness';

const runFile = promisify(execFile);
const BIN = path.join(ROOT, 'bin', 'upbridge.js');

const RAW = { 'content-type': 'application/octet-stream' };
const PNG = { 'content-type': 'image/png' };

/** Submits raw pixels; returns the job id. */
async function submitRaw(bridge: TestBridge, raster: { width: number; height: number; channels: number; depth: number; data: Uint8Array | Uint16Array }, extra: Record<string, string | number> = {}): Promise<string> {
  const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 4, width: raster.width, height: raster.height, channels: raster.channels, depth: raster.depth, ...extra }), {
    method: 'POST',
    headers: RAW,
    body: rawBody(raster.data),
    token: bridge.token,
  });
  expect([res.status, res.text]).toEqual([202, expect.stringMatching(/^\{"id":"[0-9a-f-]{36}"\}$/)]);
  return res.json().id as string;
}

const waitDone = (bridge: TestBridge, id: string) => waitForStatus(bridge, id, (s) => ['done', 'failed', 'cancelled'].includes(s.state), `job ${id} to finish`);

/** Progress events of a run: done counts strictly increasing, ending at total, all with the same total. */
function expectProgressStory(events: SseEvent[], terminal: string): void {
  const types = events.map((e) => e.type);
  // A plain job says once what it runs (the model), then reports every tile.
  expect(types.join(' ')).toMatch(new RegExp(`^(queued )?running stage (progress )+${terminal}$`));
  expect(events.find((e) => e.type === 'stage')!.data).toEqual({ type: 'stage', stage: 'model' });
  expect(events[events.length - 1].data).toEqual({ type: terminal });
  const progress = events.filter((e) => e.type === 'progress').map((e) => e.data.progress as { done: number; total: number });
  const total = progress[0].total;
  expect(total).toBeGreaterThan(1);
  for (const p of progress) expect(p.total).toBe(total);
  const dones = progress.map((p) => p.done);
  for (let i = 1; i < dones.length; i++) expect(dones[i]).toBeGreaterThan(dones[i - 1]);
  if (terminal === 'done') expect(dones.filter((d) => d > 0)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
}

describe('bridge over HTTP (real server on loopback)', () => {
  let bridge: TestBridge;
  let engine: GatedEngine;
  let dir: string;

  beforeAll(async () => {
    engine = new GatedEngine();
    bridge = await startBridge({ engine });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-http-cli-'));
  });
  afterAll(async () => {
    engine.open();
    await bridge.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    // Whatever a test held, let it finish so the next test starts with an idle queue.
    engine.open();
    await waitFor(() => bridge.queue.length === 0, 'an idle queue after the test');
  });

  describe('upscaling through HTTP equals the CLI', () => {
    let cliBytes: Buffer;
    beforeAll(async () => {
      const out = path.join(dir, 'cli-out.png');
      await runFile(process.execPath, [BIN, 'upscale', INPUT_A, '-o', out, '--model', FAST_MODEL, '--scale', '4'], { env: process.env });
      cliBytes = await fs.readFile(out);
      const meta = await sharp(cliBytes).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 160, 128]);
    });

    it('POST /v1/jobs (image/png) then GET /v1/jobs/:id/result gives the CLI output byte for byte, as PNG by default', async () => {
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 4 }), { method: 'POST', headers: PNG, body: await fs.readFile(INPUT_A), token: bridge.token });
      expect(res.status).toBe(202);
      const { id } = res.json();
      const status = await waitDone(bridge, id);
      expect(status.state).toBe('done');
      const result = await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token });
      expect(result.status).toBe(200);
      expect(result.headers['content-type']).toBe('image/png');
      expect(result.body.equals(cliBytes)).toBe(true);
    });

    it('wait=true answers with the image itself, identical to the CLI output', async () => {
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 4, wait: true }), { method: 'POST', headers: PNG, body: await fs.readFile(INPUT_A), token: bridge.token });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('image/png');
      expect(res.body.equals(cliBytes)).toBe(true);
      // The job stays queryable afterwards.
      const job = bridge.submitted[bridge.submitted.length - 1];
      const status = await request(bridge.port, `/v1/jobs/${job.id}`, { token: bridge.token });
      expect(status.json()).toMatchObject({ id: job.id, state: 'done', result: { available: true, width: 160, height: 128 } });
    });

    it('wait=true&format=raw answers with raw pixels equal to the PNG result decoded', async () => {
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 4, wait: true, format: 'raw' }), { method: 'POST', headers: PNG, body: await fs.readFile(INPUT_A), token: bridge.token });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/octet-stream');
      expect([res.headers['x-upbridge-width'], res.headers['x-upbridge-height'], res.headers['x-upbridge-channels'], res.headers['x-upbridge-depth']]).toEqual(['160', '128', '3', '8']);
      const decoded = await sharp(cliBytes).raw().toBuffer();
      expect(res.body.equals(decoded)).toBe(true);
    });
  });

  describe('modes through HTTP equal the CLI', () => {
    let cli: { image: Buffer; map: Buffer; report: Record<string, unknown> };
    beforeAll(async () => {
      const out = path.join(dir, 'cli-creative.png');
      const { stdout } = await runFile(process.execPath, [BIN, 'upscale', INPUT_A, '-o', out, '--mode', 'creative', '--content', 'photo', '--map', '--json'], { env: process.env });
      cli = { image: await fs.readFile(out), map: await fs.readFile(path.join(dir, 'cli-creative.map.png')), report: JSON.parse(stdout) };
    });

    it('mode=creative&map=true: the result, the map (GET /v1/jobs/:id/map) and the report are the CLI\'s', async () => {
      const res = await request(bridge.port, jobsPath({ mode: 'creative', content: 'photo', map: true }), { method: 'POST', headers: PNG, body: await fs.readFile(INPUT_A), token: bridge.token });
      expect(res.status).toBe(202);
      const { id } = res.json();
      const status = await waitDone(bridge, id);
      expect(status).toMatchObject({ state: 'done', model: 'realesrgan-x4plus', result: { available: true, map: true, width: 160, height: 128 } });
      const { mode, content, creativity, consistent, models, lrPsnr, map, tiles, passes } = cli.report;
      expect(status.report).toEqual({ mode, content, contentDetected: false, creativity, consistent, models, lrPsnr, map, tiles, passes });
      const image = await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token });
      expect(image.body.equals(cli.image)).toBe(true);
      const mapPng = await request(bridge.port, `/v1/jobs/${id}/map`, { token: bridge.token });
      expect([mapPng.status, mapPng.headers['content-type']]).toEqual([200, 'image/png']);
      expect(mapPng.body.equals(cli.map)).toBe(true);
      const mapRaw = await request(bridge.port, `/v1/jobs/${id}/map?format=raw`, { token: bridge.token });
      expect([mapRaw.headers['x-upbridge-width'], mapRaw.headers['x-upbridge-channels'], mapRaw.body.length]).toEqual(['160', '1', 160 * 128]);
    });

    it('a job without map=true answers GET /map with 404 UPB_NO_MAP; bad mode options are 400 naming the option', async () => {
      const id = await submitRaw(bridge, syntheticRaster(8, 8, 3, 8));
      await waitDone(bridge, id);
      expect(expectError(await request(bridge.port, `/v1/jobs/${id}/map`, { token: bridge.token }), 404, 'UPB_NO_MAP').message).toMatch(/without map=true/);
      const body = rawBody(syntheticRaster(8, 8, 3, 8).data);
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ mode: 'wild' }, /mode must be one of fidelity, balanced, creative/],
        [{ mode: 'creative', creativity: '-1' }, /creativity must be a number from 0 to 1/],
        [{ creativity: '0.5' }, /creativity must be used with a mode/],
        [{ map: 'please' }, /map must be true or false/],
        [{ mode: 'fidelity', tta: '2' }, /tta must be/],
      ];
      for (const [query, message] of cases) {
        const res = await request(bridge.port, jobsPath({ width: 8, height: 8, channels: 3, ...query }), { method: 'POST', headers: RAW, body, token: bridge.token });
        expect(expectError(res, 400, 'UPB_INVALID_OPTION').message).toMatch(message);
      }
    });
  });

  describe('raw transfer', () => {
    it('RGBA8: the raw result carries its size in headers and is exactly 4w × 4h × 4 bytes', async () => {
      const input = syntheticRaster(24, 16, 4, 8);
      const id = await submitRaw(bridge, input);
      expect((await waitDone(bridge, id)).state).toBe('done');
      for (const query of ['?format=raw', '']) {
        const res = await request(bridge.port, `/v1/jobs/${id}/result${query}`, { token: bridge.token });
        expect(res.status).toBe(200);
        expect(res.headers['content-type']).toBe('application/octet-stream');
        expect([res.headers['x-upbridge-width'], res.headers['x-upbridge-height'], res.headers['x-upbridge-channels'], res.headers['x-upbridge-depth']]).toEqual(['96', '64', '4', '8']);
        expect(res.body.length).toBe(96 * 64 * 4);
        expect(Number(res.headers['content-length'])).toBe(96 * 64 * 4);
      }
    });

    it('RGBA16 (little-endian): the raw result is 16-bit, 4w × 4h × 4 × 2 bytes, keeps sub-8-bit values and matches the 8-bit job', async () => {
      const input16 = syntheticRaster(24, 16, 4, 16);
      const input8 = syntheticRaster(24, 16, 4, 8);
      const id16 = await submitRaw(bridge, input16);
      const id8 = await submitRaw(bridge, input8);
      expect((await waitDone(bridge, id16)).state).toBe('done');
      expect((await waitDone(bridge, id8)).state).toBe('done');
      const res16 = await request(bridge.port, `/v1/jobs/${id16}/result?format=raw`, { token: bridge.token });
      const res8 = await request(bridge.port, `/v1/jobs/${id8}/result?format=raw`, { token: bridge.token });
      expect([res16.headers['x-upbridge-width'], res16.headers['x-upbridge-height'], res16.headers['x-upbridge-channels'], res16.headers['x-upbridge-depth']]).toEqual(['96', '64', '4', '16']);
      expect(res16.body.length).toBe(96 * 64 * 4 * 2);
      const samples = Array.from({ length: res16.body.length / 2 }, (_, i) => res16.body.readUInt16LE(2 * i));
      // An 8-bit pipeline would give only multiples of 257 (v8 × 257).
      const fine = samples.filter((v) => v % 257 !== 0).length;
      expect(fine / samples.length).toBeGreaterThan(0.5);
      // The same picture as the 8-bit job: each sample within a few 8-bit levels.
      let worst = 0;
      for (let i = 0; i < samples.length; i++) worst = Math.max(worst, Math.abs(samples[i] / 257 - res8.body[i]));
      expect(worst).toBeLessThan(8);
    });

    it('?format=png of a raw job decodes to the same pixels as ?format=raw', async () => {
      const id = await submitRaw(bridge, syntheticRaster(24, 16, 4, 8, 7));
      await waitDone(bridge, id);
      const raw = await request(bridge.port, `/v1/jobs/${id}/result?format=raw`, { token: bridge.token });
      const png = await request(bridge.port, `/v1/jobs/${id}/result?format=png`, { token: bridge.token });
      expect(png.status).toBe(200);
      expect(png.headers['content-type']).toBe('image/png');
      const { data, info } = await sharp(png.body).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([96, 64, 4]);
      expect(data.equals(raw.body)).toBe(true);
    });

    it('RGB and grey raw inputs keep their channel count', async () => {
      for (const channels of [1, 2, 3] as const) {
        const id = await submitRaw(bridge, syntheticRaster(16, 16, channels, 8));
        expect((await waitDone(bridge, id)).state).toBe('done');
        const res = await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token });
        expect(res.headers['x-upbridge-channels']).toBe(String(channels));
        expect(res.body.length).toBe(64 * 64 * channels);
      }
    });

    it('an unknown result format is refused with 400 naming the allowed ones', async () => {
      const id = await submitRaw(bridge, syntheticRaster(16, 16, 4, 8));
      await waitDone(bridge, id);
      const res = await request(bridge.port, `/v1/jobs/${id}/result?format=gif`, { token: bridge.token });
      expect(expectError(res, 400, 'UPB_INVALID_OPTION').message).toMatch(/format must be one of raw, png, jpeg, webp, tiff/);
    });
  });

  describe('server-sent events', () => {
    it('streams running, progress per tile (done 1..total) and done last, then ends', async () => {
      engine.close();
      const id = await submitRaw(bridge, syntheticRaster(48, 32, 3, 8), { tile: 16, overlap: 4 });
      const sse = subscribe(bridge.port, id, bridge.token);
      expect(await sse.status).toBe(200);
      expect((await sse.headers)['content-type']).toBe('text/event-stream');
      await sse.received(1);
      engine.open();
      const events = await sse.ended;
      expectProgressStory(events, 'done');
      expect(events.filter((e) => e.type === 'progress').pop()!.data.progress).toEqual({ done: 6, total: 6 });
    });

    it('a subscriber to a queued job sees queued, then running, progress and done', async () => {
      engine.close();
      const first = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      await engine.waitHeld(1);
      const second = await submitRaw(bridge, syntheticRaster(32, 16, 3, 8), { tile: 16 });
      const sse = subscribe(bridge.port, second, bridge.token);
      const [queued] = await sse.received(1);
      expect(queued.type).toBe('queued');
      engine.open();
      const events = await sse.ended;
      expectProgressStory(events, 'done');
      expect((await waitDone(bridge, first)).state).toBe('done');
    });

    it('a late subscriber to a finished job gets the terminal event at once and the stream ends', async () => {
      const id = await submitRaw(bridge, syntheticRaster(16, 16, 4, 8));
      await waitDone(bridge, id);
      const sse = subscribe(bridge.port, id, bridge.token);
      expect(await sse.ended).toEqual([{ type: 'done', data: { type: 'done' } }]);
    });

    it('a subscriber that disconnects mid-job is unsubscribed (no listener left behind)', async () => {
      engine.close();
      const id = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      await engine.waitHeld(1);
      const job = bridge.queue.get(id)!;
      const baseline = job.events.listenerCount('event');
      const streams = Array.from({ length: 5 }, () => subscribe(bridge.port, id, bridge.token));
      for (const sse of streams) await sse.received(1);
      expect(job.events.listenerCount('event')).toBe(baseline + 5);
      for (const sse of streams) sse.close();
      await waitFor(() => job.events.listenerCount('event') === baseline, 'the listeners of closed streams to go');
      engine.open();
      expect((await waitDone(bridge, id)).state).toBe('done');
    });
  });

  describe('GET /v1/jobs/:id', () => {
    it('reports state, progress, timings and result availability while running and when done', async () => {
      engine.close();
      const id = await submitRaw(bridge, syntheticRaster(32, 32, 3, 8), { tile: 16 });
      await engine.waitHeld(1);
      engine.allow(1);
      await waitFor(() => engine.completed >= 1 && engine.held >= 1, 'the first tile done, the second held');
      const running = await waitForStatus(bridge, id, (s) => s.progress.done === 1, 'progress 1');
      expect(running).toEqual({
        id,
        state: 'running',
        model: FAST_MODEL,
        scale: 4,
        progress: { done: 1, total: 4 },
        stage: 'model',
        timings: { queuedMs: expect.any(Number), runMs: expect.any(Number) },
        result: { available: false, expired: false, map: false },
      });
      engine.open();
      const done = await waitDone(bridge, id);
      expect(done).toEqual({
        id,
        state: 'done',
        model: FAST_MODEL,
        scale: 4,
        progress: { done: 4, total: 4 },
        timings: { queuedMs: expect.any(Number), runMs: expect.any(Number) },
        result: { available: true, expired: false, width: 128, height: 128, map: false },
        // No mode: the model alone, and how far its result strays from the input.
        report: { content: expect.stringMatching(/^(photo|illustration)$/), contentDetected: true, consistent: false, models: { result: FAST_MODEL }, lrPsnr: expect.any(Number), tiles: 4, passes: 1 },
      });
      expect(done.report.lrPsnr).toBeGreaterThan(10);
      expect(done.timings.queuedMs).toBeGreaterThanOrEqual(0);
      expect(done.timings.runMs).toBeGreaterThanOrEqual(0);
    });

    it('a fractional scale is reported and the result has the rounded size', async () => {
      const id = await submitRaw(bridge, syntheticRaster(20, 12, 4, 8), { scale: 2.5 });
      const done = await waitDone(bridge, id);
      expect(done).toMatchObject({ state: 'done', scale: 2.5, result: { width: 50, height: 30 } });
      const res = await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token });
      expect(res.body.length).toBe(50 * 30 * 4);
    });
  });

  it('wait=true with a result its format cannot hold is refused before any inference, naming the limit', async () => {
    engine.close();
    const calls = engine.calls;
    // 4096×4 at 4x is 16384 px wide; WebP holds 16383 at most. Asynchronous, the same job is taken (its result can come as PNG).
    const webp = await sharp(Buffer.from(syntheticRaster(4096, 4, 3, 8).data), { raw: { width: 4096, height: 4, channels: 3 } }).webp({ lossless: true }).toBuffer();
    const refused = await request(bridge.port, '/v1/jobs?scale=4&wait=true', { method: 'POST', token: bridge.token, body: webp, headers: { 'content-type': 'image/webp' } });
    expect(expectError(refused, 400, 'UPB_INVALID_OPTION').message).toBe('a 16384×16 result does not fit WEBP (at most 16383 px a side); choose PNG or TIFF, or a smaller scale');
    expect(engine.calls).toBe(calls);
    const accepted = await request(bridge.port, '/v1/jobs?scale=4', { method: 'POST', token: bridge.token, body: webp, headers: { 'content-type': 'image/webp' } });
    expect(accepted.status).toBe(202);
    await request(bridge.port, `/v1/jobs/${accepted.json().id}`, { method: 'DELETE', token: bridge.token });
  });

  describe('cancellation', () => {
    it('DELETE stops a running job within one tile; SSE ends with cancelled; the result is 409 UPB_RESULT_NOT_READY', async () => {
      engine.close();
      const callsBefore = engine.calls;
      const id = await submitRaw(bridge, syntheticRaster(48, 32, 3, 8), { tile: 16 });
      const sse = subscribe(bridge.port, id, bridge.token);
      await engine.waitHeld(1);
      engine.allow(1);
      // Tile 1 is done and tile 2 is in flight (held) when the cancel arrives.
      await waitFor(() => engine.completed >= 1 && engine.held >= 1, 'the second tile in flight');
      const del = await request(bridge.port, `/v1/jobs/${id}`, { method: 'DELETE', token: bridge.token });
      expect(del.status).toBe(200);
      expect(del.json()).toMatchObject({ id, state: expect.stringMatching(/^(running|cancelled)$/) });
      engine.open();
      const status = await waitDone(bridge, id);
      expect(status).toMatchObject({ state: 'cancelled', result: { available: false, expired: false } });
      expect(status.progress.done).toBeLessThan(status.progress.total);
      // The tile in flight finished; no tile started after the cancel.
      expect(engine.calls - callsBefore).toBe(2);
      const events = await sse.ended;
      expectProgressStory(events, 'cancelled');
      expectError(await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token }), 409, 'UPB_RESULT_NOT_READY');
      expect(bridge.queue.length).toBe(0);
      // Cancelling again is harmless and reports the final state.
      const again = await request(bridge.port, `/v1/jobs/${id}`, { method: 'DELETE', token: bridge.token });
      expect(again.json()).toMatchObject({ state: 'cancelled' });
    });

    it('DELETE of a queued job cancels it at once; it never runs', async () => {
      engine.close();
      const callsBefore = engine.calls;
      const first = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      await engine.waitHeld(1);
      const second = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      expect(bridge.queue.length).toBe(2);
      const sse = subscribe(bridge.port, second, bridge.token);
      await sse.received(1);
      const del = await request(bridge.port, `/v1/jobs/${second}`, { method: 'DELETE', token: bridge.token });
      expect(del.status).toBe(200);
      expect(del.json()).toMatchObject({ id: second, state: 'cancelled', progress: { done: 0, total: 0 }, result: { available: false } });
      expect(await sse.ended).toEqual([
        { type: 'queued', data: { type: 'queued', position: 0 } },
        { type: 'cancelled', data: { type: 'cancelled' } },
      ]);
      expect(bridge.queue.length).toBe(1);
      expectError(await request(bridge.port, `/v1/jobs/${second}/result`, { token: bridge.token }), 409, 'UPB_RESULT_NOT_READY');
      engine.open();
      expect((await waitDone(bridge, first)).state).toBe('done');
      // Only the first job's single tile ran.
      expect(engine.calls - callsBefore).toBe(1);
    });

    it('DELETE of a finished job changes nothing: it stays done and its result downloadable', async () => {
      const id = await submitRaw(bridge, syntheticRaster(16, 16, 4, 8));
      await waitDone(bridge, id);
      const del = await request(bridge.port, `/v1/jobs/${id}`, { method: 'DELETE', token: bridge.token });
      expect(del.json()).toMatchObject({ state: 'done', result: { available: true } });
      expect((await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token })).status).toBe(200);
    });

    it('a wait=true request whose job is cancelled by DELETE answers 409 UPB_CANCELLED', async () => {
      engine.close();
      const input = syntheticRaster(32, 16, 3, 8);
      const pending = request(bridge.port, jobsPath({ model: FAST_MODEL, width: 32, height: 16, channels: 3, tile: 16, wait: true }), { method: 'POST', headers: RAW, body: rawBody(input.data), token: bridge.token });
      await engine.waitHeld(1);
      const job = bridge.submitted[bridge.submitted.length - 1];
      expect((await request(bridge.port, `/v1/jobs/${job.id}`, { method: 'DELETE', token: bridge.token })).status).toBe(200);
      engine.open();
      expectError(await pending, 409, 'UPB_CANCELLED');
      expect(job.state).toBe('cancelled');
    });

    it('an unknown job id is 404 UPB_JOB_NOT_FOUND for status, cancel, result and events', async () => {
      const id = '00000000-0000-4000-8000-000000000000';
      expectError(await request(bridge.port, `/v1/jobs/${id}`, { token: bridge.token }), 404, 'UPB_JOB_NOT_FOUND');
      expectError(await request(bridge.port, `/v1/jobs/${id}`, { method: 'DELETE', token: bridge.token }), 404, 'UPB_JOB_NOT_FOUND');
      expectError(await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token }), 404, 'UPB_JOB_NOT_FOUND');
      expectError(await request(bridge.port, `/v1/jobs/${id}/events`, { token: bridge.token }), 404, 'UPB_JOB_NOT_FOUND');
    });

    it('a client that disconnects from a wait=true request cancels its job', async () => {
      engine.close();
      const callsBefore = engine.calls;
      const submittedBefore = bridge.submitted.length;
      const controller = new AbortController();
      const input = syntheticRaster(48, 32, 3, 8);
      const pending = request(bridge.port, jobsPath({ model: FAST_MODEL, width: 48, height: 32, channels: 3, tile: 16, wait: true }), {
        method: 'POST',
        headers: RAW,
        body: rawBody(input.data),
        token: bridge.token,
        signal: controller.signal,
      });
      pending.catch(() => {});
      await engine.waitHeld(1);
      expect(bridge.submitted.length).toBe(submittedBefore + 1);
      const job = bridge.submitted[bridge.submitted.length - 1];
      expect(job.state).toBe('running');
      controller.abort();
      await expect(pending).rejects.toThrow();
      await waitFor(() => job.controller.signal.aborted, 'the server to notice the disconnect and abort the job');
      engine.open();
      const status = await waitDone(bridge, job.id);
      expect(status.state).toBe('cancelled');
      expect(engine.calls - callsBefore).toBe(1);
      expect(bridge.queue.length).toBe(0);
    });

    it('a client that disconnects from a queued wait=true request cancels its job before it runs', async () => {
      engine.close();
      const callsBefore = engine.calls;
      const first = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      await engine.waitHeld(1);
      const controller = new AbortController();
      const input = syntheticRaster(16, 16, 3, 8);
      const pending = request(bridge.port, jobsPath({ model: FAST_MODEL, width: 16, height: 16, channels: 3, wait: true }), { method: 'POST', headers: RAW, body: rawBody(input.data), token: bridge.token, signal: controller.signal });
      pending.catch(() => {});
      await waitFor(() => bridge.queue.length === 2, 'the synchronous job to be queued');
      const job = bridge.submitted[bridge.submitted.length - 1];
      expect(job.state).toBe('queued');
      controller.abort();
      await waitFor(() => job.state === 'cancelled', 'the queued job to be cancelled');
      expect(bridge.queue.length).toBe(1);
      engine.open();
      expect((await waitDone(bridge, first)).state).toBe('done');
      expect(engine.calls - callsBefore).toBe(1);
    });
  });
});

describe('first use of a model', () => {
  it('a job whose model is not installed yet says so while it downloads and converts it, then runs it', async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-first-use-'));
    const bridge = await startBridge({ engine: nodeEngine(new ModelStore(home)) });
    try {
      const id = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      const sse = subscribe(bridge.port, id, bridge.token);
      const events = await sse.ended;
      const stages = events.filter((e) => e.type === 'stage').map((e) => e.data.stage);
      // The stream replays the current stage on subscribe, so it starts at download (or just after, on a slow machine).
      expect(stages[0]).toMatch(new RegExp(`^installing ${FAST_MODEL} \\(first use\\): (download|verify)$`));
      expect(stages).toContain(`installing ${FAST_MODEL} (first use): convert`);
      expect(stages.at(-1)).toBe('model');
      expect(events.at(-1)!.type).toBe('done');
      expect((await new ModelStore(home).check(FAST_MODEL)).state).toBe('ok');
    } finally {
      await bridge.close();
      await fs.rm(home, { recursive: true, force: true });
    }
  });
});

describe('failed jobs', () => {
  it('a job whose inference fails reports failed with its error: status, SSE, result 409, wait=true 500', async () => {
    const real = nodeEngine();
    const failing: Engine = {
      runner: async () => ({ provider: 'cpu', run: async () => Promise.reject(new Error('the runtime fell over')) }),
      readyModels: () => real.readyModels(),
      providers: () => real.providers(),
    };
    const bridge = await startBridge({ engine: failing });
    try {
      const id = await submitRaw(bridge, syntheticRaster(16, 16, 4, 8));
      const status = await waitDone(bridge, id);
      expect(status).toMatchObject({ state: 'failed', error: { code: 'UPB_INFERENCE', message: expect.stringMatching(/the runtime fell over/) }, result: { available: false } });
      const sse = subscribe(bridge.port, id, bridge.token);
      expect(await sse.ended).toEqual([{ type: 'failed', data: { type: 'failed', error: status.error } }]);
      expect(expectError(await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token }), 409, 'UPB_RESULT_NOT_READY').message).toMatch(/failed: .*the runtime fell over/);
      const sync = await request(bridge.port, jobsPath({ model: FAST_MODEL, width: 16, height: 16, wait: true }), { method: 'POST', headers: RAW, body: rawBody(syntheticRaster(16, 16, 4, 8).data), token: bridge.token });
      expect(expectError(sync, 500, 'UPB_INFERENCE').message).toMatch(/the runtime fell over/);
    } finally {
      await bridge.close();
    }
  });
});

describe('queue capacity and result retention', () => {
  it('a full queue answers 429 UPB_QUEUE_FULL with Retry-After; it accepts jobs again once drained', async () => {
    const engine = new GatedEngine();
    const bridge = await startBridge({ engine, queueCapacity: 1 });
    try {
      engine.close();
      const a = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      await engine.waitHeld(1);
      const b = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      const body = rawBody(syntheticRaster(16, 16, 3, 8).data);
      for (const wait of [false, true]) {
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, width: 16, height: 16, channels: 3, wait }), { method: 'POST', headers: RAW, body, token: bridge.token });
        expectError(res, 429, 'UPB_QUEUE_FULL');
        expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      }
      const health = await request(bridge.port, '/v1/health');
      expect(health.json().queue).toEqual({ length: 2 });
      engine.open();
      expect((await waitDone(bridge, a)).state).toBe('done');
      expect((await waitDone(bridge, b)).state).toBe('done');
      const c = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      expect((await waitDone(bridge, c)).state).toBe('done');
    } finally {
      engine.open();
      await bridge.close();
    }
  });

  it('results beyond resultBudgetBytes expire oldest first; the newest always stays', async () => {
    // A 16×16 RGB job at 4x gives 64×64×3 = 12,288 bytes; a budget of 30,000 holds two.
    const bridge = await startBridge({ resultBudgetBytes: 30_000 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const id = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8, i + 1));
        expect((await waitDone(bridge, id)).state).toBe('done');
        ids.push(id);
      }
      const states = await Promise.all(ids.map(async (id) => (await request(bridge.port, `/v1/jobs/${id}`, { token: bridge.token })).json().result));
      expect(states.map((r: { available: boolean; expired: boolean }) => [r.available, r.expired])).toEqual([
        [false, true],
        [false, true],
        [true, false],
        [true, false],
      ]);
      expectError(await request(bridge.port, `/v1/jobs/${ids[0]}/result`, { token: bridge.token }), 410, 'UPB_RESULT_EXPIRED');
    } finally {
      await bridge.close();
    }
  });

  it('open event streams are capped (429 UPB_RATE_LIMITED); closing one frees its place', async () => {
    const engine = new GatedEngine();
    const bridge = await startBridge({ engine, maxEventStreams: 2 });
    try {
      engine.close();
      const id = await submitRaw(bridge, syntheticRaster(16, 16, 3, 8));
      await engine.waitHeld(1);
      const first = subscribe(bridge.port, id, bridge.token);
      const second = subscribe(bridge.port, id, bridge.token);
      expect([await first.status, await second.status]).toEqual([200, 200]);
      expectError(await request(bridge.port, `/v1/jobs/${id}/events`, { token: bridge.token }), 429, 'UPB_RATE_LIMITED');
      first.close();
      await waitFor(async () => (await request(bridge.port, `/v1/jobs/${id}/events`, { token: bridge.token, signal: AbortSignal.timeout(500) }).catch(() => ({ status: 200 }))).status === 200 || undefined, 'a freed stream place');
      engine.open();
      expect((await second.ended).map((e) => e.type).pop()).toBe('done');
    } finally {
      engine.open();
      await bridge.close();
    }
  });

  it('results expire after resultTtlMs: the status says expired and the result is 410 UPB_RESULT_EXPIRED', async () => {
    const bridge = await startBridge({ resultTtlMs: 400 });
    try {
      const input = syntheticRaster(16, 16, 4, 8);
      const sync = await request(bridge.port, jobsPath({ model: FAST_MODEL, width: 16, height: 16, wait: true }), { method: 'POST', headers: RAW, body: rawBody(input.data), token: bridge.token });
      expect(sync.status).toBe(200);
      const { id } = bridge.submitted[0];
      const expired = await waitForStatus(bridge, id, (s) => s.result.expired, 'the result to expire', 10000);
      expect(expired).toMatchObject({ state: 'done', result: { available: false, expired: true } });
      expect(expired.result.width).toBeUndefined();
      const res = await request(bridge.port, `/v1/jobs/${id}/result`, { token: bridge.token });
      expectError(res, 410, 'UPB_RESULT_EXPIRED');
      // Later still, the record itself is forgotten.
      await waitFor(async () => (await request(bridge.port, `/v1/jobs/${id}`, { token: bridge.token })).status === 404, 'the job record to be forgotten', 10000, 50);
    } finally {
      await bridge.close();
    }
  });
});

describe('info routes', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await startBridge();
  });
  afterAll(() => bridge.close());

  it('GET /v1/health reports ok, version, providers, ready models, queue length and the job limits', async () => {
    const res = await request(bridge.port, '/v1/health');
    expect(res.status).toBe(200);
    // What works here, in the order jobs try it: the tests run on the CPU provider (jest.config.js),
    // so only the CPU, not the backends onnxruntime-node was built with (webgpu is bundled on Linux).
    expect(res.json().providers).toEqual(process.env.UPBRIDGE_PROVIDER === 'cpu' ? ['cpu'] : expect.arrayContaining(['cpu']));
    expect(res.json()).toEqual({
      ok: true,
      version: expect.any(String),
      providers: expect.arrayContaining(['cpu']),
      modelsReady: expect.arrayContaining([FAST_MODEL]),
      queue: { length: 0 },
      limits: bridge.limits,
    });
  });

  it('GET /v1/models lists the catalogue with the default and readiness', async () => {
    const res = await request(bridge.port, '/v1/models', { token: bridge.token });
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body.defaultModel).toBe(FAST_MODEL);
    expect(body.models.find((m: { id: string }) => m.id === FAST_MODEL)).toMatchObject({ ready: true, default: true, scale: 4 });
    // What each mode runs, per content type, so a client can name the models before a run.
    expect(body.modeDefaults).toEqual(catalogue.modeDefaults);
    for (const byMode of Object.values(body.modeDefaults as Record<string, Record<string, string>>)) {
      for (const id of Object.values(byMode)) expect(body.models.some((m: { id: string }) => m.id === id)).toBe(true);
    }
  });

  it('GET /openapi.json lists the public API paths', async () => {
    const res = await request(bridge.port, '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/jobs', '/v1/health', '/v1/pair', '/v1/models', '/v1/jobs/{id}', '/v1/jobs/{id}/result', '/v1/jobs/{id}/map', '/v1/jobs/{id}/events']));
    expect(Object.keys(doc.paths['/v1/jobs'])).toContain('post');
    expect(Object.keys(doc.paths['/v1/jobs/{id}'])).toEqual(expect.arrayContaining(['get', 'delete']));
  });
});
