import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { catalogue } from '../core/catalogue';
import { freePort } from './free-port';
import { Manifest } from './batch';

/**
 * `upbridge bench-batch` (issue 11): images per minute of `upbridge batch` in this process, and
 * of `batch --queue` over 1 and 2 `upbridge worker` processes on a redis-server started here on a
 * free loopback port, and the queue's overhead per job. Every run is a separate process tree, as
 * a user would start it; workers are started (and have loaded nothing) before the clock starts,
 * so each run includes one model load per worker.
 */
export interface BatchBenchOptions {
  images: number;
  /** Input side, px (square photos-like images made here). */
  size: number;
  scale: number;
  model: string;
}

export const BATCH_BENCH_DEFAULTS: BatchBenchOptions = { images: 8, size: 96, scale: 4, model: catalogue.defaultModel };

export interface BatchBenchRun {
  seconds: number;
  imagesPerMinute: number;
  /** Mean of the pipeline's own seconds per image (upscaleFile, as reported by whoever ran it). */
  pipelineSecondsPerImage: number;
  workers?: Record<string, number>;
}

export interface BatchBenchReport extends BatchBenchOptions {
  cpus: number;
  local: BatchBenchRun;
  queue1: BatchBenchRun;
  queue2: BatchBenchRun;
  /** queue2 ÷ queue1 images per minute. */
  speedup2: number;
  /**
   * What the queue adds per job: time outside the pipeline per image with one worker, minus the
   * same for the batch in one process. Both run the images back to back; what differs is the
   * enqueue, the copies into and out of the store, Redis round trips, the worker picking the job
   * up and the events back. The pipeline's own seconds are taken out of both, because on a shared
   * machine they vary more from run to run than the queue costs.
   */
  queueOverheadMsPerJob: number;
  /** Wall time per image minus the pipeline's own seconds per image: hashing, manifest, the client's process start spread over the images (and, queued, the queue). */
  outsidePipelineMsPerJob: { local: number; queue1: number };
  /** (one worker's wall time − the local batch's) ÷ images: the queue plus the pipeline's run-to-run noise. */
  wallDifferenceMsPerJob: number;
  note: string;
}

const BIN = () => path.join(__dirname, '..', 'bin', 'upbridge.js');

function syntheticPhoto(size: number, seed: number): Buffer {
  const data = Buffer.alloc(size * size * 3);
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const edge = (x * 7 + y * 3 + seed) % 23 < 11 ? 50 : 0;
      for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = Math.min(240, 30 + ((x + y * (c + 1)) % 128) + edge + Math.floor(20 * rand()));
    }
  }
  return data;
}

function waitForLine(child: ReturnType<typeof spawn>, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${text}`)), timeoutMs);
    const on = (d: Buffer) => {
      text += d;
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before ${pattern}: ${text}`));
    });
  });
}

async function runBatch(args: string[]): Promise<{ seconds: number; manifest: Manifest }> {
  const t0 = performance.now();
  const child = spawnSync(process.execPath, [BIN(), 'batch', ...args, '--json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - t0) / 1000;
  if (child.status !== 0) throw new Error(`batch ${args.join(' ')} failed (exit ${child.status}): ${child.stderr}`);
  const out = args[args.indexOf('-o') + 1];
  const manifest = JSON.parse(await fs.readFile(path.join(out, 'upbridge-manifest.json'), 'utf8')) as Manifest;
  return { seconds, manifest };
}

function summarize(run: { seconds: number; manifest: Manifest }, images: number): BatchBenchRun {
  const done = run.manifest.items.filter((i) => i.status === 'done');
  if (done.length !== images) throw new Error(`${images - done.length} of ${images} images failed in the benchmark batch`);
  const pipeline = done.reduce((a, i) => a + Number((i.report as { seconds?: number } | undefined)?.seconds ?? 0), 0) / done.length;
  const workers: Record<string, number> = {};
  for (const i of done) if (i.worker) workers[i.worker] = (workers[i.worker] ?? 0) + 1;
  return {
    seconds: round(run.seconds, 3),
    imagesPerMinute: round((images / run.seconds) * 60, 2),
    pipelineSecondsPerImage: round(pipeline, 3),
    ...(Object.keys(workers).length ? { workers } : {}),
  };
}

export async function runBatchBenchmark(options: BatchBenchOptions = BATCH_BENCH_DEFAULTS): Promise<BatchBenchReport> {
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('the batch benchmark needs redis-server (apt-get install redis-server)');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-bench-batch-'));
  const children: ReturnType<typeof spawn>[] = [];
  try {
    const input = path.join(dir, 'in');
    const store = path.join(dir, 'store');
    await fs.mkdir(input);
    await fs.mkdir(store);
    for (let i = 0; i < options.images; i++) {
      await sharp(syntheticPhoto(options.size, i + 1), { raw: { width: options.size, height: options.size, channels: 3 } })
        .png()
        .toFile(path.join(input, `img-${String(i).padStart(3, '0')}.png`));
    }
    const settings = ['--scale', String(options.scale), '--model', options.model];
    // Installs the model if needed, outside the clock.
    await runBatch([path.join(input, 'img-000.png'), '-o', path.join(dir, 'warm'), ...settings]);
    const local = summarize(await runBatch([input, '-o', path.join(dir, 'local'), ...settings]), options.images);

    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(redis);
    await waitForLine(redis, /Ready to accept connections/);
    const url = `redis://127.0.0.1:${port}`;
    const withWorkers = async (n: number) => {
      const workers = Array.from({ length: n }, (_, i) => spawn(process.execPath, [BIN(), 'worker', '--queue', url, '--store', store, '--name', `w${i + 1}`], { stdio: ['ignore', 'pipe', 'pipe'] }));
      children.push(...workers);
      await Promise.all(workers.map((w) => waitForLine(w, /taking jobs from/)));
      try {
        return summarize(await runBatch([input, '-o', path.join(dir, `queue${n}`), ...settings, '--queue', url, '--store', store]), options.images);
      } finally {
        for (const w of workers) w.kill('SIGTERM');
        await Promise.all(workers.map((w) => (w.exitCode === null ? new Promise((r) => w.once('exit', r)) : undefined)));
      }
    };
    const queue1 = await withWorkers(1);
    const queue2 = await withWorkers(2);
    const cpus = os.cpus().length;
    return {
      ...options,
      cpus,
      local,
      queue1,
      queue2,
      speedup2: round(queue2.imagesPerMinute / queue1.imagesPerMinute, 2),
      queueOverheadMsPerJob: round((queue1.seconds / options.images - queue1.pipelineSecondsPerImage - (local.seconds / options.images - local.pipelineSecondsPerImage)) * 1000, 1),
      outsidePipelineMsPerJob: {
        local: round((local.seconds / options.images - local.pipelineSecondsPerImage) * 1000, 1),
        queue1: round((queue1.seconds / options.images - queue1.pipelineSecondsPerImage) * 1000, 1),
      },
      wallDifferenceMsPerJob: round(((queue1.seconds - local.seconds) / options.images) * 1000, 1),
      note: `Both workers run on this one machine (${cpus} CPUs); each one's ONNX Runtime already uses every core, so a second worker here competes for the same cores and the ratio says how little it costs to add one (≈1 = no loss), not what a second GPU machine gives (≈2 when the store and Redis keep up, since jobs are independent).`,
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
