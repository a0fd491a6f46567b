/**
 * Bounded load test of the bridge server, in this process over loopback HTTP:
 *
 *   node scripts/run-ts.mjs scripts/load-test.ts [--seconds 60] [--clients 8] [--queue-capacity 16]
 *        [--warmup 10] [--result-ttl-ms 600000] [--out bench/load-test.json]
 *
 * Starts the real bridge (buildBridge + nodeEngine on 127.0.0.1, a free port), then `clients`
 * clients loop for `seconds`: submit a small job, follow it over SSE to its end, download the
 * result and compare it byte for byte with a reference computed once up front by the same
 * pipeline without HTTP. Even clients send a 32×32 RGB PNG at scale 4 (result: PNG), odd clients
 * 32×32 RGBA8 raw pixels at scale 2 (result: raw). 429 is back-pressure: the client waits
 * Retry-After (capped at 0.5 s) and submits again. Server RSS is sampled every second.
 *
 * The model session is created before the clock starts (by the reference run), so the first
 * `warmup` seconds are not session creation; they are still reported apart: "afterWarmup"
 * figures (throughput, latency) count only jobs submitted after them, and RSS "afterWarmup" is
 * the sample at that time. Prints one JSON object and stores it in `out` under
 * "queueCapacity-<n>" (other runs in the file are kept). Exits 1 on any failure or wrong output.
 */
import { freePort } from '../bridge-server/free-port';
import { existsSync, promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { buildBridge } from '../bridge-server/app';
import { nodeEngine } from '../bridge-server/engine';
import { jobExecutor } from '../bridge-server/routes/jobs';
import { Pairing, TokenStore } from '../bridge-server/tokens';
import { decodeImage, encodeImage } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { Raster } from '../core/raster';
import { planUpscale, resolveContent } from '../core/modes';

/** The checkout: from source or from run-ts.mjs's bundle under .cache/. */
function findRoot(): string {
  for (let d = __dirname, i = 0; i < 8; i++, d = path.dirname(d)) {
    if (existsSync(path.join(d, 'package.json')) && existsSync(path.join(d, 'bridge-server'))) return d;
  }
  return process.cwd();
}
const ROOT = findRoot();

interface Args {
  seconds: number;
  clients: number;
  queueCapacity: number;
  warmup: number;
  resultTtlMs: number;
  out: string;
  model: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 60, clients: 8, queueCapacity: 16, warmup: 10, resultTtlMs: 10 * 60 * 1000, out: path.join(ROOT, 'bench', 'load-test.json'), model: 'realesr-general-x4v3' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const num = (min: number, max: number) => {
      const n = Number(value);
      if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${flag} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
      i++;
      return n;
    };
    switch (flag) {
      case '--seconds':
        args.seconds = num(1, 3600);
        break;
      case '--clients':
        args.clients = Math.round(num(1, 64));
        break;
      case '--queue-capacity':
        args.queueCapacity = Math.round(num(0, 1000));
        break;
      case '--warmup':
        args.warmup = num(0, 3600);
        break;
      case '--result-ttl-ms':
        args.resultTtlMs = Math.round(num(1, 24 * 3600 * 1000));
        break;
      case '--out':
        if (!value) throw new Error('--out needs a path');
        args.out = path.resolve(value);
        i++;
        break;
      case '--model':
        if (!value) throw new Error('--model needs an id');
        args.model = value;
        i++;
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  args.warmup = Math.min(args.warmup, args.seconds / 2);
  return args;
}

// ---------------------------------------------------------------------------------------------

/** Deterministic photo-like content: gradients, an edge pattern, a disk, a little noise. */
function syntheticRaster(width: number, height: number, channels: 3 | 4, seed: number): Raster {
  const data = new Uint8Array(width * height * channels);
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const edge = (x * 7 + y * 3) % 23 < 11 ? 0.25 : 0;
      const disk = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (Math.min(width, height) / 3) ** 2 ? 0.2 : 0;
      for (let c = 0; c < channels; c++) {
        const v = c === 3 ? (disk > 0 ? 1 : 0.3 + 0.4 * (x / (width - 1))) : 0.2 + (0.3 * (x / width) * (c + 1)) / 3 + edge + disk + 0.08 * rand();
        data[(y * width + x) * channels + c] = Math.round(Math.min(0.92, Math.max(0.06, v)) * 255);
      }
    }
  }
  return { width, height, channels, depth: 8, data };
}

interface Workload {
  name: string;
  contentType: string;
  query: string;
  body: Buffer;
  /** The result as the server must send it, computed without HTTP. */
  expected: Buffer;
  expectedType: string;
  width: number;
  height: number;
  /** What the server keeps per finished job: the input and result rasters. */
  retainedBytes: number;
}

async function buildWorkloads(model: string): Promise<Workload[]> {
  // No results folder given: every result comes back in memory (`raster`).
  const execute = jobExecutor(nodeEngine());
  const never = new AbortController().signal;

  const rgb = syntheticRaster(32, 32, 3, 1);
  const png = (await encodeImage(rgb, 'png')).bytes;
  const pngDecoded = await decodeImage(png);
  const pngPlan = planUpscale({ model, scale: '4' });
  const pngResult = (await execute({ plan: pngPlan, content: resolveContent(pngPlan, pngDecoded.raster), raster: pngDecoded.raster, metadata: pngDecoded.metadata, format: 'png' }, never, () => {})).raster!;
  const pngExpected = (await encodeImage(pngResult, 'png', pngDecoded.metadata)).bytes;

  const rgba = syntheticRaster(32, 32, 4, 2);
  const rawPlan = planUpscale({ model, scale: '2' });
  const rawResult = (await execute({ plan: rawPlan, content: resolveContent(rawPlan, rgba), raster: rgba, metadata: { format: 'raw' }, format: 'raw' }, never, () => {})).raster!;
  return [
    { name: 'png32-x4', contentType: 'image/png', query: `model=${model}&scale=4`, body: png, expected: pngExpected, expectedType: 'image/png', width: 128, height: 128, retainedBytes: 128 * 128 * 3 + 32 * 32 * 3 },
    {
      name: 'rgba8-32-x2',
      contentType: 'application/octet-stream',
      query: `model=${model}&scale=2&width=32&height=32&channels=4&depth=8`,
      body: Buffer.from(rgba.data.buffer, rgba.data.byteOffset, rgba.data.byteLength),
      expected: Buffer.from(rawResult.data.buffer, rawResult.data.byteOffset, rawResult.data.byteLength),
      expectedType: 'application/octet-stream',
      width: 64,
      height: 64,
      retainedBytes: 64 * 64 * 4 + 32 * 32 * 4,
    },
  ];
}

// ---------------------------------------------------------------------------------------------

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(port: number, method: string, urlPath: string, headers: Record<string, string>, body?: Buffer, timeoutMs = 60_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Follows a job's server-sent events to its terminal event. */
function follow(port: number, token: string, id: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path: `/v1/jobs/${id}/events`, headers: { authorization: `Bearer ${token}` }, agent }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`events: HTTP ${res.statusCode}`));
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        const m = /event: (done|failed|cancelled)\ndata: (.*)\n\n/.exec(text);
        if (m) {
          resolve(m[1] === 'failed' ? `failed ${m[2]}` : m[1]);
          req.destroy();
        }
      });
      res.on('end', () => reject(new Error(`events ended without a terminal event: ${text.slice(-200)}`)));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`job ${id}: no terminal event in ${timeoutMs} ms`)));
    req.on('error', (e) => reject(e));
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  return sxx === 0 ? null : sxy / sxx;
}


const round = (v: number | null, digits = 1) => (v === null ? null : Math.round(v * 10 ** digits) / 10 ** digits);
const mib = (bytes: number) => bytes / 2 ** 20;

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  // The test suite's model cache, when there is one; else the user's (installed on demand).
  const testHome = path.join(ROOT, '.cache', 'test-home');
  if (!process.env.UPBRIDGE_HOME && existsSync(testHome)) process.env.UPBRIDGE_HOME = testHome;
  await new ModelStore().ensure([args.model]);

  const configDir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-load-'));
  const unhandled: string[] = [];
  process.on('unhandledRejection', (reason) => unhandled.push(String(reason)));
  try {
    const setupStart = performance.now();
    const workloads = await buildWorkloads(args.model);
    const setupMs = performance.now() - setupStart;

    const tokens = new TokenStore(configDir);
    const pairing = new Pairing(tokens);
    const port = await freePort();
    const bridge = await buildBridge({ port, queueCapacity: args.queueCapacity, resultTtlMs: args.resultTtlMs }, { engine: nodeEngine(), tokens, pairing });
    await bridge.app.listen({ port, host: '127.0.0.1' });
    const { token } = await tokens.create('load');
    const auth = { authorization: `Bearer ${token}` };

    const counts = { submitted: 0, accepted: 0, completed: 0, rejected429: 0, failures: 0, wrongOutputs: 0 };
    const failureSamples: string[] = [];
    const fail = (kind: 'failures' | 'wrongOutputs', what: string) => {
      counts[kind]++;
      if (failureSamples.length < 20) failureSamples.push(`${kind}: ${what}`);
    };
    const latencies: { at: number; ms: number }[] = [];
    const retryWaits: number[] = [];

    const t0 = performance.now();
    const deadline = t0 + args.seconds * 1000;
    const warmupEnd = t0 + args.warmup * 1000;
    const rss: [number, number][] = [[0, process.memoryUsage().rss]];
    const sampler = setInterval(() => rss.push([(performance.now() - t0) / 1000, process.memoryUsage().rss]), 1000);

    const client = async (k: number) => {
      const w = workloads[k % workloads.length];
      // Bounded in count as well as time.
      for (let n = 0; n < 1_000_000 && performance.now() < deadline; n++) {
        const start = performance.now();
        counts.submitted++;
        let id: string;
        try {
          const r = await request(port, 'POST', `/v1/jobs?${w.query}`, { ...auth, 'content-type': w.contentType }, w.body);
          if (r.status === 429) {
            counts.rejected429++;
            const retryAfter = Number(r.headers['retry-after']);
            const waitMs = Math.min(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 500, 500);
            retryWaits.push(waitMs);
            await sleep(waitMs);
            continue;
          }
          if (r.status !== 202) {
            fail('failures', `${w.name} submit: HTTP ${r.status} ${r.body.toString('utf8', 0, 200)}`);
            continue;
          }
          id = (JSON.parse(r.body.toString('utf8')) as { id: string }).id;
          counts.accepted++;
          const end = await follow(port, token, id, 120_000);
          if (end !== 'done') {
            fail('failures', `${w.name} job ${id}: ${end}`);
            continue;
          }
          const result = await request(port, 'GET', `/v1/jobs/${id}/result`, auth);
          if (result.status !== 200) {
            fail('failures', `${w.name} result ${id}: HTTP ${result.status} ${result.body.toString('utf8', 0, 200)}`);
            continue;
          }
          counts.completed++;
          latencies.push({ at: start, ms: performance.now() - start });
          const type = String(result.headers['content-type'] ?? '').split(';')[0];
          let size: { width?: number; height?: number };
          if (type === 'application/octet-stream') {
            size = { width: Number(result.headers['x-upbridge-width']), height: Number(result.headers['x-upbridge-height']) };
          } else {
            size = await sharp(result.body).metadata();
          }
          if (type !== w.expectedType || size.width !== w.width || size.height !== w.height || !result.body.equals(w.expected)) {
            fail('wrongOutputs', `${w.name} job ${id}: ${type} ${size.width}×${size.height}, ${result.body.length} B, equal=${result.body.equals(w.expected)}`);
          }
        } catch (e) {
          fail('failures', `${w.name}: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: args.clients }, (_, k) => client(k)));
    const elapsed = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    rss.push([elapsed, process.memoryUsage().rss]);

    // The server must still answer and hold nothing.
    const health = await request(port, 'GET', '/v1/health', {});
    const healthy = health.status === 200 && (JSON.parse(health.body.toString('utf8')) as { queue: { length: number } }).queue.length === 0;
    if (!healthy) fail('failures', `health after the run: HTTP ${health.status} ${health.body.toString('utf8', 0, 200)}`);
    await bridge.app.close();
    agent.destroy();
    for (const u of unhandled) fail('failures', `unhandled rejection: ${u}`);

    const all = latencies.map((l) => l.ms).sort((a, b) => a - b);
    const after = latencies.filter((l) => l.at >= warmupEnd).map((l) => l.ms).sort((a, b) => a - b);
    const afterSeconds = Math.max(1e-9, elapsed - args.warmup);
    const secondHalf = rss.filter(([t]) => t >= elapsed / 2).map(([t, v]): [number, number] => [t / 60, mib(v)]);
    const warmSample = rss.find(([t]) => t >= args.warmup) ?? rss[rss.length - 1];
    const perJobRetained = workloads.reduce((a, w) => a + w.retainedBytes, 0) / workloads.length;
    const cpus = os.cpus();

    const report = {
      when: new Date().toISOString(),
      server: 'in-process (buildBridge + nodeEngine, 127.0.0.1); RSS is this process: server plus the light HTTP clients',
      durationSeconds: round(elapsed, 2),
      warmupSeconds: args.warmup,
      warmupTreatment: 'model session created before the clock (reference run); afterWarmup figures count jobs submitted after warmupSeconds, overall figures count all',
      clients: args.clients,
      queueCapacity: args.queueCapacity,
      resultTtlMs: args.resultTtlMs,
      model: args.model,
      workloads: workloads.map((w) => ({ name: w.name, input: `${w.contentType}, ${w.body.length} B`, query: w.query, output: `${w.width}×${w.height} ${w.expectedType}, ${w.expected.length} B` })),
      setupSeconds: round(setupMs / 1000, 2),
      ...counts,
      jobsPerSecond: { overall: round(counts.completed / elapsed, 2), afterWarmup: round(after.length / afterSeconds, 2) },
      latencyMs: {
        p50: round(percentile(all, 50)),
        p95: round(percentile(all, 95)),
        max: round(all.length ? all[all.length - 1] : null),
        afterWarmup: { p50: round(percentile(after, 50)), p95: round(percentile(after, 95)) },
      },
      retryAfterWaitMs: { count: retryWaits.length, max: retryWaits.length ? Math.max(...retryWaits) : null },
      rssMiB: {
        start: round(mib(rss[0][1])),
        afterWarmup: round(mib(warmSample[1])),
        end: round(mib(rss[rss.length - 1][1])),
        max: round(mib(Math.max(...rss.map(([, v]) => v)))),
        secondHalfSlopeMiBPerMin: round(slope(secondHalf), 2),
        samples: rss.length,
      },
      // Finished jobs keep their result raster for resultTtlMs and their record, input raster
      // included, for 6× that (queue.ts): pixel bytes alone, object overhead not counted.
      retainedPixelsMiBPerMin: round(mib(perJobRetained * (counts.completed / elapsed) * 60), 2),
      failureSamples,
      machine: {
        cpu: cpus[0]?.model ?? 'unknown',
        cores: cpus.length,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        node: process.version,
        providers: await nodeEngine().providers(),
      },
    };

    const text = JSON.stringify(report, null, 2);
    process.stdout.write(`${text}\n`);
    await fs.mkdir(path.dirname(args.out), { recursive: true });
    let file: Record<string, unknown> = {};
    try {
      file = JSON.parse(await fs.readFile(args.out, 'utf8')) as Record<string, unknown>;
    } catch {
      file = {};
    }
    file[`queueCapacity-${args.queueCapacity}`] = report;
    await fs.writeFile(args.out, `${JSON.stringify(file, null, 2)}\n`);
    return counts.failures > 0 || counts.wrongOutputs > 0 ? 1 : 0;
  } finally {
    await fs.rm(configDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`load test: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
