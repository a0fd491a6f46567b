import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { OnnxGraphBuilder } from '../../core/convert/onnx-builder';
import { syntheticRaster } from '../helpers';
import { BIN, listeningPorts, RedisServer, startRedis, startWorker, WorkerProcess } from './redis-harness';

/**
 * `upbridge batch --queue` over two `upbridge worker` processes and a real redis-server on
 * loopback: the outputs equal the single-machine batch (itself byte-equal to `upbridge upscale`,
 * batch.test.ts), and a worker killed mid-job loses nothing: BullMQ's stalled-job check hands
 * its job to the other worker, and the manifest has every image exactly once.
 */
const run = promisify(execFile);
const SETTINGS = ['--scale', '2', '--tile', '16', '--overlap', '8'];
// Short locks, so a killed worker's job is recovered in ~2 s rather than BullMQ's default 30 s.
const LOCK = ['--lock-ms', '1500'];

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWith(process.env, ...args);
}
async function cliWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
const jsonLines = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l));

let dir: string;
let input: string;
let store: string;
let redis: RedisServer;
const reference = new Map<string, Buffer>();
const KEYS: string[] = [];
let workers: WorkerProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-batch-queue-'));
  input = path.join(dir, 'in');
  store = path.join(dir, 'store');
  await fs.mkdir(path.join(input, 'set'), { recursive: true });
  await fs.mkdir(store);
  for (let i = 0; i < 6; i++) {
    const key = i % 2 ? `set/img-${i}.png` : `img-${i}.png`;
    const r = syntheticRaster(40 + 4 * i, 36, 3, 8, 10 + i);
    await sharp(Buffer.from(r.data), { raw: { width: r.width, height: r.height, channels: 3 } }).png().toFile(path.join(input, key));
    KEYS.push(key);
  }
  KEYS.sort();
  // The single-machine result.
  const local = await cli('batch', input, '-o', path.join(dir, 'local'), ...SETTINGS, '--json');
  expect(local.code).toBe(0);
  for (const key of KEYS) reference.set(key, await fs.readFile(path.join(dir, 'local', key)));
});

afterEach(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  workers = [];
});

afterAll(async () => {
  await redis?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function manifestOf(out: string) {
  return JSON.parse(await fs.readFile(path.join(out, 'upbridge-manifest.json'), 'utf8'));
}

describe('upbridge batch --queue (BullMQ on a real redis-server)', () => {
  test('two workers share a batch; outputs are byte-equal to the single-machine batch, and the store is left empty', async () => {
    workers = await Promise.all([startWorker(redis.url, store, 'w1', LOCK), startWorker(redis.url, store, 'w2', LOCK)]);
    const out = path.join(dir, 'out-two');
    const r = await cli('batch', input, '-o', out, ...SETTINGS, '--queue', redis.url, '--store', store, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ event: 'summary', total: 6, done: 6, failed: 0 });
    for (const key of KEYS) expect((await fs.readFile(path.join(out, key))).equals(reference.get(key)!)).toBe(true);
    const manifest = await manifestOf(out);
    expect(manifest.items.map((i: { key: string }) => i.key)).toEqual(KEYS);
    // Both workers took jobs (all six were queued at once, each worker runs one at a time).
    expect(new Set(manifest.items.map((i: { worker: string }) => i.worker))).toEqual(new Set(['w1', 'w2']));
    // Images travel through the store and are removed once copied out.
    expect(await fs.readdir(path.join(store, 'batch'))).toEqual([]);
    // Workers only connect out, to Redis: they listen on no port (checked on Linux, where CI runs).
    if (process.platform === 'linux') {
      // The check itself works: redis-server listens on its port.
      expect(await listeningPorts(redis.pid)).toContain(redis.port);
      for (const w of workers) expect(await listeningPorts(w.child.pid!)).toEqual([]);
    }
  });

  test('a worker killed mid-job loses nothing: its job is picked up by the other worker and every image is in the manifest exactly once', async () => {
    workers = await Promise.all([startWorker(redis.url, store, 'w1', LOCK), startWorker(redis.url, store, 'w2', LOCK)]);
    const [w1, w2] = workers;
    const out = path.join(dir, 'out-kill');
    const batch = spawn(process.execPath, [BIN, 'batch', input, '-o', out, ...SETTINGS, '--queue', redis.url, '--store', store, '--json'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    batch.stdout.on('data', (d) => (stdout += d));
    batch.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((resolve) => batch.once('exit', (code) => resolve(code ?? -1)));
    // Killed (SIGKILL: no goodbye to Redis) as soon as it starts a job.
    await w1.waitForLog(/w1: job \S+ \((\S+)\) started/);
    await w1.stop('SIGKILL');
    const killedKey = /w1: job \S+ \((\S+)\) started/.exec(w1.log())![1];
    expect(w1.log()).not.toMatch(new RegExp(`job \\S+ \\(${killedKey.replace(/[.]/g, '\\.')}\\) done`));
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    expect(jsonLines(stdout).at(-1)).toMatchObject({ event: 'summary', total: 6, done: 6, failed: 0 });
    const manifest = await manifestOf(out);
    // Exactly once each, all done, byte-equal; the killed worker's image was finished by w2.
    expect(manifest.items.map((i: { key: string }) => i.key)).toEqual(KEYS);
    for (const item of manifest.items) expect(item.status).toBe('done');
    for (const key of KEYS) expect((await fs.readFile(path.join(out, key))).equals(reference.get(key)!)).toBe(true);
    expect(manifest.items.find((i: { key: string }) => i.key === killedKey).worker).toBe('w2');
    expect(w2.log()).toMatch(new RegExp(`\\(${killedKey.replace(/[.]/g, '\\.')}\\) started \\(attempt 2`));
    // The per-image event lines: one per image, no duplicates.
    expect(jsonLines(stdout).filter((l) => l.event === 'image').map((l) => l.key).sort()).toEqual(KEYS);
  }, 90_000);

  test('a password-protected Redis: the right password works, a wrong one is a clear error that never prints the password', async () => {
    const locked = await startRedis({ password: 's3cret/pass' });
    try {
      const wrong = await cli('batch', input, '-o', path.join(dir, 'out-wrong'), ...SETTINGS, '--queue', `redis://:wrong-pass@127.0.0.1:${locked.port}`, '--store', store);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/cannot reach the job queue at redis:\/\/\*\*\*@127\.0\.0\.1:\d+ \(.*WRONGPASS.*\).*\[UPB_QUEUE_UNAVAILABLE\]/);
      expect(wrong.stderr).not.toContain('wrong-pass');
      workers = [await startWorker(locked.url, store, 'w-auth', LOCK)];
      const out = path.join(dir, 'out-auth');
      const r = await cli('batch', path.join(input, 'img-0.png'), '-o', out, ...SETTINGS, '--queue', locked.url, '--store', store, '--json');
      expect(r.code).toBe(0);
      expect((await fs.readFile(path.join(out, 'img-0.png'))).equals(reference.get('img-0.png')!)).toBe(true);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      workers = [];
      await locked.stop();
    }
  });

  test('TLS (rediss://): the server certificate is checked, against a CA given with NODE_EXTRA_CA_CERTS', async () => {
    const secure = await startRedis({ tls: true });
    try {
      expect(secure.url).toMatch(/^rediss:\/\/127\.0\.0\.1:\d+$/);
      // Without the CA: refused, with the reason.
      const untrusted = await cli('batch', path.join(input, 'img-0.png'), '-o', path.join(dir, 'out-untrusted'), ...SETTINGS, '--queue', secure.url, '--store', store);
      expect(untrusted.code).toBe(1);
      expect(untrusted.stderr).toMatch(/cannot reach the job queue at rediss:\/\/127\.0\.0\.1:\d+ \(.*certificate.*\).*\[UPB_QUEUE_UNAVAILABLE\]/);
      const env = { ...process.env, NODE_EXTRA_CA_CERTS: secure.caFile };
      workers = [await startWorker(secure.url, store, 'w-tls', LOCK, env)];
      const out = path.join(dir, 'out-tls');
      const r = await cliWith(env, 'batch', path.join(input, 'img-0.png'), '-o', out, ...SETTINGS, '--queue', secure.url, '--store', store, '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((await fs.readFile(path.join(out, 'img-0.png'))).equals(reference.get('img-0.png')!)).toBe(true);
      expect((await manifestOf(out)).items[0].worker).toBe('w-tls');
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      workers = [];
      await secure.stop();
    }
  });

  test('Redis restarted mid-batch (empty): no image is lost; the worker reconnects and the batch completes', async () => {
    workers = [await startWorker(redis.url, store, 'w1', LOCK)];
    const out = path.join(dir, 'out-restart');
    const batch = spawn(process.execPath, [BIN, 'batch', input, '-o', out, ...SETTINGS, '--queue', redis.url, '--store', store, '--json'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    batch.stdout.on('data', (d) => (stdout += d));
    batch.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((resolve) => batch.once('exit', (code) => resolve(code ?? -1)));
    // While the first image runs and the other five wait: Redis loses all six.
    await workers[0].waitForLog(/w1: job \S+ \(\S+\) started/, 60_000);
    await redis.restart();
    const code = await exited;
    // On failure, what the batch said (its last lines name the images and their errors).
    expect({ code, stderr, last: jsonLines(stdout).slice(-3) }).toEqual({ code: 0, stderr: '', last: expect.anything() });
    // The worker saw Redis go and come back, and ran the lost jobs again (six images, more starts).
    expect(workers[0].log()).toMatch(/w1: queue connection: .* \(reconnecting\)/);
    expect(workers[0].log().match(/\) started/g)!.length).toBeGreaterThan(6);
    expect(stderr).toBe('');
    expect(jsonLines(stdout).at(-1)).toMatchObject({ event: 'summary', total: 6, done: 6, failed: 0 });
    const manifest = await manifestOf(out);
    expect(manifest.items.map((i: { key: string }) => i.key)).toEqual(KEYS);
    for (const key of KEYS) expect((await fs.readFile(path.join(out, key))).equals(reference.get(key)!)).toBe(true);
  }, 90_000);

  test('a custom model runs on a worker only with the client\'s own file: a different file under the same id is refused, naming the worker', async () => {
    // A queue of its own (Redis database 1): the suite's workers do not have the model.
    const url = `${redis.url}/1`;
    /** A 2x resize, nearest or linear: two different files for the same id. */
    const tinyModel = (mode: 'nearest' | 'linear') => {
      const b = new OnnxGraphBuilder();
      b.addInput('input', [1, 3, 'h', 'w']);
      const scales = b.addFloatInitializer('scales', [4], [1, 1, 2, 2]);
      b.addNode('Resize', ['input', '', scales], ['output'], { mode });
      b.addOutput('output', [1, 3, 'H', 'W']);
      return b.encode('test').bytes;
    };
    const homes = { client: path.join(dir, 'home-client'), worker: path.join(dir, 'home-worker') };
    for (const home of Object.values(homes)) await fs.mkdir(path.join(home, 'models', 'custom'), { recursive: true });
    await fs.writeFile(path.join(homes.client, 'models', 'custom', 'tiny.onnx'), tinyModel('nearest'));
    await fs.writeFile(path.join(homes.worker, 'models', 'custom', 'tiny.onnx'), tinyModel('linear'));
    const client = { ...process.env, UPBRIDGE_HOME: homes.client };
    const batch = (out: string) => cliWith(client, 'batch', path.join(input, KEYS[0]), '-o', path.join(dir, out), '--queue', url, '--store', store, '--model', 'custom:tiny', ...SETTINGS, '--json');

    let worker = await startWorker(url, store, 'wc', LOCK, { ...process.env, UPBRIDGE_HOME: homes.worker });
    try {
      const refused = await batch('out-custom-refused');
      expect(refused.code).toBe(1);
      expect(jsonLines(refused.stdout).find((l) => l.event === 'image')).toMatchObject({
        status: 'failed',
        error: { code: 'UPB_UNKNOWN_MODEL', message: expect.stringMatching(/^worker wc has a different custom:tiny \(sha256 [0-9a-f]{12}…, the job's is [0-9a-f]{12}…\): copy the same \.onnx into every worker's models\/custom folder and restart them$/) },
      });
      // The client's file on the worker: the same image runs.
      await worker.stop();
      await fs.copyFile(path.join(homes.client, 'models', 'custom', 'tiny.onnx'), path.join(homes.worker, 'models', 'custom', 'tiny.onnx'));
      worker = await startWorker(url, store, 'wc', LOCK, { ...process.env, UPBRIDGE_HOME: homes.worker });
      const ran = await batch('out-custom');
      expect([ran.code, ran.stderr]).toEqual([0, '']);
      expect(jsonLines(ran.stdout).find((l) => l.event === 'image')).toMatchObject({ status: 'done', model: 'custom:tiny', worker: 'wc' });
    } finally {
      await worker.stop();
    }
  }, 90_000);
});
