import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { buildBridge, Bridge } from '../../bridge-server/app';
import { nodeEngine } from '../../bridge-server/engine';
import { freePort } from '../../bridge-server/free-port';
import { DirectoryStore } from '../../bridge-server/job-store';
import { RedisJobQueue } from '../../bridge-server/redis-queue';
import { Pairing, TokenStore } from '../../bridge-server/tokens';
import { syntheticRaster } from '../helpers';
import { expectError, INPUT_A, request, subscribe, waitFor } from './bridge-harness';
import { BIN, RedisServer, startRedis, startWorker, WorkerProcess } from './redis-harness';

/**
 * The bridge on BullMQ (`serve --queue`): a real fastify bridge on loopback whose queue is a real
 * redis-server, and two `upbridge worker` processes that run the jobs. The HTTP API and its event
 * stream are the same as with the in-process queue; pixels go through the shared store.
 */
const run = promisify(execFile);
let redis: RedisServer;
let dir: string;
let store: string;
let workers: WorkerProcess[];
let bridge: Bridge;
let port: number;
let token: string;

beforeAll(async () => {
  redis = await startRedis();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-bridge-queue-'));
  store = path.join(dir, 'store');
  await fs.mkdir(store);
  workers = await Promise.all([startWorker(redis.url, store, 'w1', ['--lock-ms', '3000']), startWorker(redis.url, store, 'w2', ['--lock-ms', '3000'])]);
  const queue = await RedisJobQueue.connect({ url: redis.url, store: new DirectoryStore(store), capacity: 16, resultTtlMs: 60_000, resultBudgetBytes: 20_000 });
  const tokens = new TokenStore(dir);
  port = await freePort();
  bridge = await buildBridge({ port }, { engine: nodeEngine(), tokens, pairing: new Pairing(tokens, () => {}), queue });
  await bridge.app.listen({ port, host: '127.0.0.1' });
  token = (await tokens.create('test')).token;
});

afterAll(async () => {
  await bridge?.app.close();
  await Promise.all((workers ?? []).map((w) => w.stop()));
  await redis?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const post = (query: string, body: Buffer, type = 'image/png') => request(port, `/v1/jobs?${query}`, { method: 'POST', token, body, headers: { 'content-type': type } });

describe('the bridge with --queue (BullMQ, two worker processes)', () => {
  test('a job runs on a worker: SSE shows running, per-tile progress and done; the result equals the CLI byte for byte', async () => {
    const cliOut = path.join(dir, 'cli.png');
    await run(process.execPath, [BIN, 'upscale', INPUT_A, '-o', cliOut, '--scale', '2', '--tile', '16', '--overlap', '8'], { env: process.env });
    const submitted = await post('scale=2&tile=16&overlap=8', await fs.readFile(INPUT_A));
    expect(submitted.status).toBe(202);
    const { id } = submitted.json();
    const events = await subscribe(port, id, token).ended;
    const types = events.map((e) => e.type);
    expect(types.at(-1)).toBe('done');
    expect(types).toContain('running');
    const progress = events.filter((e) => e.type === 'progress').map((e) => e.data.progress);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ done: 6, total: 6 });
    const result = await request(port, `/v1/jobs/${id}/result`, { token });
    expect(result.status).toBe(200);
    expect(result.body.equals(await fs.readFile(cliOut))).toBe(true);
    const status = (await request(port, `/v1/jobs/${id}`, { token })).json();
    expect(status).toMatchObject({ state: 'done', progress: { done: 6, total: 6 }, result: { available: true, width: 80, height: 64 } });
    expect(['w1', 'w2']).toContain(status.report.worker);
    // The job's pixels left the store with it.
    await waitFor(async () => (await fs.readdir(path.join(store, 'jobs')).catch(() => [])).length === 0, 'the job folder to be removed');
    // Results are held within the memory budget (20,000 bytes here: one 80×64 RGB result): the next one pushes this one out.
    const again = await post('scale=2&tile=16&overlap=8&wait=true', await fs.readFile(INPUT_A));
    expect(again.status).toBe(200);
    expect(again.body.equals(await fs.readFile(cliOut))).toBe(true);
    expect((await request(port, `/v1/jobs/${id}`, { token })).json().result).toMatchObject({ available: false, expired: true });
    expectError(await request(port, `/v1/jobs/${id}/result`, { token }), 410, 'UPB_RESULT_EXPIRED');
  });

  test('cancel reaches the worker within a tile', async () => {
    const r = syntheticRaster(128, 128, 3, 8, 7);
    const png = await sharp(Buffer.from(r.data), { raw: { width: 128, height: 128, channels: 3 } }).png().toBuffer();
    const { id } = (await post('scale=4&tile=16&overlap=8', png)).json();
    const sse = subscribe(port, id, token);
    await waitFor(() => sse.events.some((e) => e.type === 'progress' && e.data.progress.done >= 2), 'two tiles done', 60_000);
    const seen = Math.max(...sse.events.filter((e) => e.type === 'progress').map((e) => e.data.progress.done));
    const cancelled = await request(port, `/v1/jobs/${id}`, { method: 'DELETE', token });
    expect(cancelled.status).toBe(200);
    const events = await sse.ended;
    expect(events.at(-1)!.type).toBe('cancelled');
    const log = workers.map((w) => w.log()).join('\n');
    const m = new RegExp(`job ${id} cancelled: the cancel arrived after tile (\\d+), the job stopped after tile (\\d+) of (\\d+)`).exec(log);
    expect(m).not.toBeNull();
    const [arrived, stopped, total] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(total).toBe(64);
    expect(arrived).toBeGreaterThanOrEqual(seen);
    // Within one tile of the cancel reaching the worker: the tile in flight may finish (and, as the
    // next window is read while the last one is blended, issue 8, at most one more), none after.
    expect(stopped - arrived).toBeLessThanOrEqual(2);
    expect(stopped).toBeLessThan(total);
    expect((await request(port, `/v1/jobs/${id}`, { token })).json().state).toBe('cancelled');
  });

  test('a slow store: an input still being written after the 5 s audit is not taken for lost; closing the bridge cancels its running job on the worker', async () => {
    /** A NAS slower than the queue's audit: an input takes 6 s to land. */
    class SlowStore extends DirectoryStore {
      async write(key: string, bytes: Uint8Array): Promise<void> {
        if (key.endsWith('input.raw')) await new Promise((r) => setTimeout(r, 6000));
        return super.write(key, bytes);
      }
    }
    const slowQueue = await RedisJobQueue.connect({ url: redis.url, store: new SlowStore(store), capacity: 4, resultTtlMs: 60_000 });
    const tokens = new TokenStore(await fs.mkdtemp(path.join(dir, 'tokens-')));
    const slowPort = await freePort();
    const slow = await buildBridge({ port: slowPort }, { engine: nodeEngine(), tokens, pairing: new Pairing(tokens, () => {}), queue: slowQueue });
    await slow.app.listen({ port: slowPort, host: '127.0.0.1' });
    const slowToken = (await tokens.create('test')).token;
    let closed = false;
    try {
      const done = await request(slowPort, '/v1/jobs?scale=2&tile=16&overlap=8&wait=true', { method: 'POST', token: slowToken, body: await fs.readFile(INPUT_A), headers: { 'content-type': 'image/png' } });
      expect([done.status, done.status === 200 ? '' : done.body.toString()]).toEqual([200, '']);

      // A bridge shut down mid-job: its clients are gone, so the worker stops the job within a tile.
      const r = syntheticRaster(128, 128, 3, 8, 13);
      const png = await sharp(Buffer.from(r.data), { raw: { width: 128, height: 128, channels: 3 } }).png().toBuffer();
      const { id } = (await request(slowPort, '/v1/jobs?scale=4&tile=16&overlap=8', { method: 'POST', token: slowToken, body: png, headers: { 'content-type': 'image/png' } })).json();
      const sse = subscribe(slowPort, id, slowToken);
      await waitFor(() => sse.events.some((e) => e.type === 'progress' && e.data.progress.done >= 1), 'a tile done', 60_000);
      await slow.app.close();
      closed = true;
      const log = () => workers.map((w) => w.log()).join('\n');
      await waitFor(() => new RegExp(`job ${id} cancelled: the cancel arrived after tile \\d+, the job stopped after tile \\d+ of 64`).test(log()), 'the worker to stop the job', 30_000);
    } finally {
      if (!closed) await slow.app.close();
    }
  });

  test('Redis down: submissions get a 503 JSON error with its code; Redis back: the bridge and the workers reconnect and jobs run again', async () => {
    await redis.restart(); // warm-up of the restart path itself (empty Redis, same port)
    await waitFor(async () => (await post('scale=2&tile=16&overlap=8', await fs.readFile(INPUT_A))).status === 202, 'the bridge to reconnect', 30_000);
    // A job running when Redis goes down and comes back empty is not silently lost: it fails, saying why.
    const r = syntheticRaster(128, 128, 3, 8, 9);
    const png = await sharp(Buffer.from(r.data), { raw: { width: 128, height: 128, channels: 3 } }).png().toBuffer();
    const lost = (await post('scale=4&tile=16&overlap=8', png)).json().id;
    const lostEvents = subscribe(port, lost, token);
    await waitFor(() => lostEvents.events.some((e) => e.type === 'progress'), 'the job to run', 30_000);
    // Down.
    await redis.kill();
    const refused = await waitFor(async () => {
      const res = await post('scale=2', await fs.readFile(INPUT_A));
      return res.status === 503 ? res : undefined;
    }, 'a 503 while Redis is down', 15_000);
    const error = expectError(refused, 503, 'UPB_QUEUE_UNAVAILABLE');
    expect(error.message).toMatch(/the job queue at redis:\/\/127\.0\.0\.1:\d+ cannot be reached.*retry when Redis is back/);
    // Back (empty, as a restart without persistence).
    await redis.restart();
    const back = await waitFor(async () => {
      const res = await post('scale=2&tile=16&overlap=8', await fs.readFile(INPUT_A));
      return res.status === 202 ? res : undefined;
    }, 'the bridge to take jobs again', 30_000);
    const events = await subscribe(port, back.json().id, token).ended;
    expect(events.at(-1)!.type).toBe('done');
    const ended = (await lostEvents.ended).at(-1)!;
    expect(ended.type).toBe('failed');
    expect(ended.data.error).toEqual({ code: 'UPB_QUEUE_UNAVAILABLE', message: expect.stringMatching(/is no longer in the queue at redis:\/\/127\.0\.0\.1:\d+ \(Redis restarted without its data\?\); submit it again/) });
  }, 120_000);

  test('`upbridge serve --queue --store` as a process: jobs run on the workers; --queue without --store is refused', async () => {
    const refused = await run(process.execPath, [BIN, 'serve', '--port', '7597', '--queue', redis.url], { env: process.env }).catch((e) => e);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--queue needs --store <dir>.*\[UPB_INVALID_OPTION\]/);
    const servePort = await freePort();
    const serve = spawn(process.execPath, [BIN, 'serve', '--port', String(servePort), '--queue', redis.url, '--store', store], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    serve.stdout.on('data', (d) => (out += d));
    serve.stderr.on('data', (d) => (out += d));
    const tokens = new TokenStore();
    const { token: serveToken, record } = await tokens.create('bridge-queue-test');
    try {
      await waitFor(() => /upbridge bridge listening/.test(out), `serve to listen (${out})`, 60_000);
      expect(out).toMatch(/jobs go to the queue at redis:\/\/127\.0\.0\.1:\d+ and run on `upbridge worker` processes/);
      const res = await request(servePort, '/v1/jobs?scale=2&tile=16&overlap=8&wait=true', { method: 'POST', token: serveToken, body: await fs.readFile(INPUT_A), headers: { 'content-type': 'image/png' } });
      expect(res.status).toBe(200);
      expect(res.body.equals(await fs.readFile(path.join(dir, 'cli.png')))).toBe(true);
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => (serve.exitCode === null ? serve.once('exit', r) : r(undefined)));
      await tokens.revoke(record.id);
    }
  }, 90_000);
});
