import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Job as BullJob, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import IORedis from 'ioredis';
import { findModel } from '../core/catalogue';
import { cancelledError, isUpbridgeError, UpbridgeError } from '../core/errors';
import { resolveContent, UpscalePlan } from '../core/modes';
import { BitDepth, ChannelCount, Raster } from '../core/raster';
import { CUSTOM_PREFIX, registerCustomModels } from '../core/node/custom-models';
import { ModelStore } from '../core/node/model-store';
import { upscaleFile } from '../core/node/upscale-file';
import { BatchItem, BatchRunner, BatchSettings, sha256File } from './batch';
import { nodeEngine } from './engine';
import { copyFileAtomic, JobStore } from './job-store';
import { Job, JobProgress, JobQueue } from './queue';
import { BridgeJobInput, jobExecutor } from './routes/jobs';

/**
 * One queue across many machines: BullMQ on Redis. The bridge (`serve --queue`) and batch clients
 * (`batch --queue`) add jobs; workers (`upbridge worker`, one per GPU, one job at a time) take
 * them. Jobs carry store keys and settings only: image bytes go through the shared store
 * (job-store.ts), never through Redis. A worker killed mid-job stops renewing its lock; BullMQ's
 * stalled-job check moves the job back to waiting and another worker runs it from the start.
 * Cancel goes over a Redis channel (and a key, for a job not yet started): the worker aborts the
 * job's signal, which the pipeline checks before every tile.
 */
export const QUEUE_NAME = 'upbridge';
/** How often a running job's worker looks for a cancel it may have missed. */
const CANCEL_LOOK_MS = 2000;
const CANCEL_CHANNEL = `${QUEUE_NAME}:cancel`;
const cancelKey = (id: string) => `${QUEUE_NAME}:cancelled:${id}`;

/** Parses `redis://[user:pass@]host[:port][/db]` or `rediss://…` (TLS) into ioredis options, with a clear error. */
export function redisOptions(url: string): RedisOptions & { display: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UpbridgeError('UPB_INVALID_OPTION', `--queue must be a Redis URL, redis://[user:password@]host[:port][/db] or rediss://… for TLS, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UpbridgeError('UPB_INVALID_OPTION', `--queue must start with redis:// or rediss:// (TLS), got ${JSON.stringify(u.protocol)}`);
  }
  const port = u.port === '' ? 6379 : Number(u.port);
  const db = u.pathname === '' || u.pathname === '/' ? 0 : Number(u.pathname.slice(1));
  if (!Number.isInteger(db) || db < 0 || db > 15) throw new UpbridgeError('UPB_INVALID_OPTION', `--queue database must be an integer from 0 to 15, got ${JSON.stringify(u.pathname.slice(1))}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    // rediss://: TLS, the server's certificate checked against the system's CAs (NODE_EXTRA_CA_CERTS adds one)
    // and the host name; SNI only for names (RFC 6066 forbids IP addresses there).
    ...(u.protocol === 'rediss:' ? { tls: isIP(host) ? {} : { servername: host } } : {}),
    // The password never appears in messages.
    display: `${u.protocol}//${u.username || u.password ? '***@' : ''}${u.host}${db ? `/${db}` : ''}`,
  };
}

export interface QueueConnection {
  url: string;
  /** Lock of a running job; a worker that dies is noticed after about this long (BullMQ's default 30 s). */
  lockDurationMs?: number;
  /** How often workers look for stalled jobs (default: half the lock). */
  stalledIntervalMs?: number;
}

function connectionOptions(conn: QueueConnection, blocking: boolean): RedisOptions {
  const { display: _display, ...options } = redisOptions(conn.url);
  return {
    ...options,
    // Workers and event readers block on Redis and must wait through an outage; clients that
    // answer HTTP requests fail at once instead (enableOfflineQueue false), so the bridge can say 503.
    maxRetriesPerRequest: blocking ? null : 1,
    enableOfflineQueue: blocking,
    retryStrategy: (times) => Math.min(200 * times, 2000),
  };
}

/**
 * Waits for BullMQ's connection (which waits forever while Redis is unreachable or refuses the
 * password), or throws UPB_QUEUE_UNAVAILABLE naming the URL and Redis's last error.
 */
async function connected<T>(what: Promise<T>, sources: { on(event: 'error', fn: (e: Error) => void): unknown }[], display: string, timeoutMs = 5000): Promise<T> {
  let lastError: string | undefined;
  for (const s of sources) s.on('error', (e: Error) => (lastError = e.message));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new UpbridgeError('UPB_QUEUE_UNAVAILABLE', `cannot reach the job queue at ${display} (${lastError ?? 'no answer'} within ${timeoutMs / 1000} s); is redis-server running there, and are the password and TLS right?`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([what, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function unavailable(display: string, e?: unknown): UpbridgeError {
  return new UpbridgeError('UPB_QUEUE_UNAVAILABLE', `the job queue at ${display} cannot be reached${e instanceof Error ? ` (${e.message})` : ''}; retry when Redis is back`);
}

/** Errors cross Redis as "CODE: message"; this turns them back into typed errors. */
function encodeError(e: unknown): string {
  if (isUpbridgeError(e)) return `${e.code}: ${e.message}`;
  return `UPB_INFERENCE: ${e instanceof Error ? e.message : String(e)}`;
}
function decodeError(reason: string | undefined): UpbridgeError {
  const m = /^(UPB_[A-Z_]+): ([\s\S]*)$/.exec(reason ?? '');
  return m ? new UpbridgeError(m[1] as never, m[2]) : new UpbridgeError('UPB_INFERENCE', reason || 'the worker failed without a reason');
}

// ---------------------------------------------------------------- job data

interface RasterRef {
  key: string;
  width: number;
  height: number;
  channels: ChannelCount;
  depth: BitDepth;
}

/** A bridge job: the decoded input as raw pixels in the store, the plan with its model by id. */
export interface RasterJobData {
  kind: 'raster';
  input: RasterRef;
  plan: Omit<UpscalePlan, 'model'> & { model?: string };
  content: ReturnType<typeof resolveContent>;
  /** Where the worker puts results: `<prefix>result.raw`, `<prefix>map.raw`. */
  prefix: string;
  /** As FileJobData's. */
  modelSha256?: string;
}

/** A batch image: an image file in the store, an output key whose extension picks the format. */
export interface FileJobData {
  kind: 'file';
  /** What the client calls the image (its relative path): messages name it rather than the store's copy. */
  name: string;
  input: string;
  output: string;
  settings: BatchSettings;
  /** sha256 of the client's .onnx for a custom model: a worker whose file of that name differs refuses the job. */
  modelSha256?: string;
}

/**
 * A custom model travels by id, and each machine has its own file under that id: a worker runs a
 * job only with the very file the client chose.
 */
function customModelSha256(id: string | undefined): string | undefined {
  return id?.startsWith(CUSTOM_PREFIX) ? findModel(id).onnxSha256 : undefined;
}

function checkSameModel(id: string | undefined, expected: string | undefined, worker: string): void {
  if (!id || !expected) return;
  const here = findModel(id).onnxSha256;
  if (here !== expected) {
    throw new UpbridgeError('UPB_UNKNOWN_MODEL', `worker ${worker} has a different ${id} (sha256 ${here.slice(0, 12)}…, the job's is ${expected.slice(0, 12)}…): copy the same .onnx into every worker's models/custom folder and restart them`);
  }
}

export interface RasterJobResult {
  result: RasterRef;
  map?: RasterRef;
  report: Record<string, unknown>;
  worker: string;
}

export interface FileJobResult {
  model: string;
  report: Record<string, unknown>;
  outputSha256: string;
  worker: string;
  seconds: number;
}

async function writeRaster(store: JobStore, key: string, raster: Raster): Promise<RasterRef> {
  await store.write(key, new Uint8Array(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength));
  return { key, width: raster.width, height: raster.height, channels: raster.channels, depth: raster.depth };
}

async function readRaster(store: JobStore, ref: RasterRef): Promise<Raster> {
  const bytes = await store.read(ref.key);
  const expected = ref.width * ref.height * ref.channels * (ref.depth / 8);
  if (bytes.length !== expected) throw new UpbridgeError('UPB_INTERNAL', `store file ${ref.key} has ${bytes.length} bytes, ${expected} expected`);
  // 16-bit samples are little-endian in the file, as in raw uploads; copied once into an aligned array.
  const data = ref.depth === 16 ? new Uint16Array(Uint8Array.from(bytes).buffer) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  return { width: ref.width, height: ref.height, channels: ref.channels, depth: ref.depth, data };
}

// ---------------------------------------------------------------- worker

export interface WorkerOptions extends QueueConnection {
  store: JobStore;
  provider?: string;
  /** Printed with each job and recorded in batch manifests (default: host name and pid). */
  name?: string;
  log?: (line: string) => void;
}

/**
 * `upbridge worker`: takes one job at a time (one inference per GPU), reports per-tile progress
 * as BullMQ job progress, never listens on a port. Resolves once connected; `close()` finishes
 * the running job, then stops.
 */
export async function startWorker(options: WorkerOptions): Promise<{ close(): Promise<void>; name: string }> {
  const display = redisOptions(options.url).display;
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const name = options.name ?? `${os.hostname()}:${process.pid}`;
  const store = new ModelStore();
  const custom = await registerCustomModels(store.modelsDir);
  for (const p of custom.problems) log(`warning: custom model skipped: ${p.message}`);
  const engine = nodeEngine(store, { provider: options.provider });
  const execute = jobExecutor(engine);

  // Cancels: a message names the job; the running one is aborted at once (the pipeline stops before its next tile).
  const running = new Map<string, () => void>();
  const subscriber = new IORedis(connectionOptions(options, true));
  subscriber.on('error', () => undefined);
  subscriber.on('message', (_channel, id: string) => running.get(id)?.());
  const commands = new IORedis(connectionOptions(options, true));
  commands.on('error', () => undefined);

  const processor = async (job: BullJob): Promise<RasterJobResult | FileJobResult> => {
    const id = job.id!;
    const controller = new AbortController();
    /** Tiles done when the cancel reached this worker (logged, so a test can tell how fast a cancel stops the job). */
    let cancelSeenAt: number | undefined;
    running.set(id, () => {
      cancelSeenAt ??= current.done;
      controller.abort();
    });
    const t0 = performance.now();
    let current: JobProgress = { done: 0, total: 0 };
    let lastSent = 0;
    const progress = (p: JobProgress, stage?: string) => {
      // Every tile, but no more than ~20 messages a second.
      const now = performance.now();
      if (p.done !== p.total && now - lastSent < 50 && stage === undefined) return;
      lastSent = now;
      void job.updateProgress({ done: p.done, total: p.total, ...(stage ? { stage } : {}) }).catch(() => undefined);
    };
    // Pub/sub messages are not kept: a worker whose subscriber was reconnecting would miss a cancel.
    const lookForCancel = () => void commands.exists(cancelKey(id)).then((n) => n === 1 && running.get(id)?.(), () => undefined);
    const cancelWatch = setInterval(lookForCancel, CANCEL_LOOK_MS);
    try {
      if ((await commands.exists(cancelKey(id))) === 1) running.get(id)?.();
      const data = job.data as RasterJobData | FileJobData;
      log(`${name}: job ${id} (${data.kind === 'file' ? data.name : `${data.input.width}×${data.input.height} pixels`}) started${job.attemptsStarted > 1 ? ` (attempt ${job.attemptsStarted}: a worker before this one stopped)` : ''}`);
      if (data.kind === 'file') {
        checkSameModel(data.settings.model, data.modelSha256, name);
        const input = await options.store.open(data.input);
        const output = await options.store.create(data.output);
        try {
          const report = await upscaleFile({
            input: input.path,
            output: output.path,
            ...data.settings,
            provider: options.provider,
            signal: controller.signal,
            onProgress: (p) => progress((current = p)),
          });
          await output.commit();
          const { exifKept: _e, ...rest } = report;
          const result: FileJobResult = { model: report.model, report: rest as unknown as Record<string, unknown>, outputSha256: await sha256File(output.path), worker: name, seconds: secondsSince(t0) };
          log(`${name}: job ${id} done in ${result.seconds} s`);
          return result;
        } catch (e) {
          await output.abort();
          throw isUpbridgeError(e) ? new UpbridgeError(e.code, e.message.split(input.path).join(data.name)) : e;
        } finally {
          await input.release();
        }
      }
      checkSameModel(data.plan.model, data.modelSha256, name);
      const raster = await readRaster(options.store, data.input);
      const plan = { ...data.plan, model: data.plan.model === undefined ? undefined : findModel(data.plan.model) } as UpscalePlan;
      const input: BridgeJobInput = { plan, content: data.content, raster, metadata: { format: 'raw' }, format: 'raw' };
      const out = await execute(input, controller.signal, (p) => progress((current = p)), (stage) => progress(current, stage));
      if (!out.raster) throw new UpbridgeError('UPB_INTERNAL', 'the worker made no result');
      const result: RasterJobResult = {
        result: await writeRaster(options.store, `${data.prefix}result.raw`, out.raster),
        ...(out.map ? { map: await writeRaster(options.store, `${data.prefix}map.raw`, out.map) } : {}),
        report: out.report ?? {},
        worker: name,
      };
      log(`${name}: job ${id} done in ${secondsSince(t0)} s`);
      return result;
    } catch (e) {
      const cancelled = controller.signal.aborted || (isUpbridgeError(e) && e.code === 'UPB_CANCELLED');
      log(`${name}: job ${id} ${cancelled ? `cancelled: the cancel arrived after tile ${cancelSeenAt ?? current.done}, the job stopped after tile ${current.done} of ${current.total}` : `failed: ${encodeError(e)}`}`);
      // Never retried: the pipeline is deterministic, the same input fails the same way.
      throw new UnrecoverableError(cancelled ? 'UPB_CANCELLED: cancelled' : encodeError(e));
    } finally {
      clearInterval(cancelWatch);
      running.delete(id);
    }
  };

  const worker = new Worker(QUEUE_NAME, processor, {
    connection: connectionOptions(options, true),
    concurrency: 1,
    autorun: false,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? Math.max(500, Math.floor((options.lockDurationMs ?? 30_000) / 2)),
    // A job whose worker died is run again (twice at most) before it is failed as stalled.
    maxStalledCount: 2,
    name,
  });
  let lastError = '';
  worker.on('error', (e) => {
    // ioredis reconnects by itself; say so once per kind of error, not every retry.
    if (e.message !== lastError) log(`${name}: queue connection: ${e.message} (reconnecting)`);
    lastError = e.message;
  });
  await connected(worker.waitUntilReady(), [worker], display, 10_000);
  await subscriber.subscribe(CANCEL_CHANNEL);
  void worker.run();
  log(`upbridge worker ${name} taking jobs from ${display} (store ${options.store.description})`);
  return {
    name,
    async close() {
      await worker.close();
      subscriber.disconnect();
      commands.disconnect();
    },
  };
}

// ---------------------------------------------------------------- batch client

/** How often a batch client checks that Redis still knows its jobs. */
const WATCH_MS = 3000;
/** How long a batch client keeps resubmitting an image while Redis cannot be reached. */
const RESUBMIT_MS = 30_000;
/** BullMQ's words for a job whose keys Redis lost while a worker held it. */
const LOST_JOB = /Missing key for job|Missing lock for job|job .* not found/i;

/** `upbridge batch --queue`: each image goes to whichever worker is free; this process only waits. */
export async function queueBatchRunner(conn: QueueConnection, store: JobStore): Promise<BatchRunner> {
  const display = redisOptions(conn.url).display;
  const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(conn, false) });
  const events = new QueueEvents(QUEUE_NAME, { connection: connectionOptions(conn, true) });
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  await connected(Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), [queue, events], display);
  const batchId = randomUUID().slice(0, 13);
  const progressOf = new Map<string, (p: JobProgress) => void>();
  events.on('progress', ({ jobId, data }) => {
    const d = data as Partial<JobProgress>;
    if (typeof d?.done === 'number' && typeof d.total === 'number') progressOf.get(jobId)?.({ done: d.done, total: d.total });
  });
  const publisher = (await queue.client) as unknown as IORedis;
  let n = 0;
  return {
    // Every image is queued at once; the workers set the pace.
    concurrency: 10_000,
    async run(item: BatchItem, settings: BatchSettings, signal: AbortSignal, onProgress) {
      const id = `${batchId}-${n++}`;
      const prefix = `batch/${batchId}/${n - 1}/`;
      const inputKey = `${prefix}input${path.extname(item.input).toLowerCase()}`;
      const outputKey = `${prefix}output${path.extname(item.output).toLowerCase()}`;
      progressOf.set(id, onProgress);
      // Ctrl-C: the running job stops on its worker within a tile, a waiting one leaves the queue; this image ends now.
      let onAbort!: () => void;
      const aborted = new Promise<never>((_resolve, reject) => {
        onAbort = () => {
          void cancelRemote(publisher, id).catch(() => undefined);
          void queue.remove(id).catch(() => undefined);
          reject(cancelledError());
        };
      });
      aborted.catch(() => undefined);
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort);
      try {
        await Promise.race([store.put(inputKey, item.input), aborted]);
        const modelSha256 = customModelSha256(settings.model);
        const data: FileJobData = { kind: 'file', name: item.key, input: inputKey, output: outputKey, settings, ...(modelSha256 ? { modelSha256 } : {}) };
        const add = () => queue.add('file', data, { jobId: id, attempts: 1, removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } });
        // Redis restarting: keep trying for a while before the image fails (the batch can be run again).
        const addSoon = async (): Promise<BullJob> => {
          const deadline = Date.now() + RESUBMIT_MS;
          for (;;) {
            try {
              return await add();
            } catch (e) {
              if (Date.now() > deadline || signal.aborted) throw unavailable(display, e);
              await Promise.race([new Promise((r) => setTimeout(r, 500)), aborted]);
            }
          }
        };
        await Promise.race([addSoon(), aborted]);
        let result: FileJobResult;
        for (;;) {
          const finished = jobFinished<FileJobResult>(events, id);
          try {
            let r: FileJobResult | 'tick' = 'tick';
            while (r === 'tick') {
              // Events are missed while Redis restarts, so the job itself is looked at too: at once
              // (it may have finished before the listeners), then every tick. A failed look waits for the next.
              // The state first, then the job: a job read before it completed would carry no return value.
              const seen = await queue.getJobState(id).then(async (state) => ({ state, job: state === 'completed' || state === 'failed' ? await BullJob.fromId<FileJobData, FileJobResult>(queue, id) : undefined }), () => undefined);
              // Never lost: a job Redis no longer knows (restarted without its data) is queued again.
              if (seen?.state === 'unknown') await add().catch(() => undefined);
              else if (seen?.state === 'completed' && seen.job) {
                r = seen.job.returnvalue;
                break;
              } else if (seen?.state === 'failed' && seen.job) throw new Error(seen.job.failedReason);
              const tick = new Promise<'tick'>((resolve) => setTimeout(() => resolve('tick'), WATCH_MS).unref());
              r = await Promise.race([finished.result, aborted, tick]);
            }
            result = r;
            break;
          } catch (e) {
            if (isUpbridgeError(e)) throw e;
            const message = e instanceof Error ? e.message : String(e);
            // The job vanished under its worker (Redis restarted mid-job): queued again, not failed.
            if (LOST_JOB.test(message)) {
              await Promise.race([addSoon(), aborted]);
              continue;
            }
            throw decodeError(message);
          } finally {
            finished.dispose();
          }
        }
        const stored = await store.open(outputKey);
        try {
          await copyFileAtomic(stored.path, item.output);
        } finally {
          await stored.release();
        }
        return { model: result.model, report: result.report, worker: result.worker, outputSha256: result.outputSha256 };
      } finally {
        signal.removeEventListener('abort', onAbort);
        progressOf.delete(id);
        await store.remove(prefix).catch(() => undefined);
      }
    },
    async close() {
      // Images still out (the batch ended early): their jobs go before their inputs do.
      await Promise.all([...progressOf.keys()].map((id) => Promise.all([cancelRemote(publisher, id), queue.remove(id)]).catch(() => undefined)));
      await store.remove(`batch/${batchId}`).catch(() => undefined);
      await events.close();
      await queue.close();
    },
  };
}

/**
 * A job's end, from its QueueEvents. Not BullMQ's Job.waitUntilFinished: that looks at the job from
 * inside an async Promise executor, so a Redis outage at that moment is an unhandled rejection that
 * ends the process (seen in CI: MaxRetriesPerRequestError while Redis restarted).
 */
function jobFinished<T>(events: QueueEvents, id: string): { result: Promise<T>; dispose(): void } {
  let dispose!: () => void;
  const result = new Promise<T>((resolve, reject) => {
    const onCompleted = ({ returnvalue }: { returnvalue: unknown }) => (dispose(), resolve(returnvalue as T));
    const onFailed = ({ failedReason }: { failedReason: string }) => (dispose(), reject(new Error(failedReason)));
    const completed = `completed:${id}`;
    const failed = `failed:${id}`;
    events.on(completed as 'completed', onCompleted as never);
    events.on(failed as 'failed', onFailed as never);
    dispose = () => {
      events.off(completed as 'completed', onCompleted as never);
      events.off(failed as 'failed', onFailed as never);
    };
  });
  result.catch(() => undefined);
  return { result, dispose };
}

/**
 * The key (for a worker that has not started the job, or that missed the message while
 * reconnecting: workers look at it every few seconds) and the message (for the worker running it
 * now), in one round trip so that both go out even if the connection is closed next.
 */
async function cancelRemote(client: IORedis, id: string): Promise<void> {
  await client.multi().set(cancelKey(id), '1', 'EX', 3600).publish(CANCEL_CHANNEL, id).exec();
}

// ---------------------------------------------------------------- the bridge's queue

export interface RedisJobQueueOptions extends QueueConnection {
  store: JobStore;
  /** Jobs of this bridge waiting or running at most (as the in-process queue's capacity). */
  capacity: number;
  resultTtlMs: number;
  /** Bytes of results (and maps) kept in memory at most (default 4 GiB); beyond it the oldest expire early, the newest always stays. */
  resultBudgetBytes?: number;
  releaseInput?: (input: BridgeJobInput) => void;
}

/**
 * The bridge's queue on BullMQ (`serve --queue`): the same Job objects and events as the
 * in-process queue, so the HTTP routes and the SSE stream are unchanged; jobs run on workers.
 * Results come back through the store and are held in memory for their retention time, as now.
 */
export class RedisJobQueue implements JobQueue<BridgeJobInput> {
  private readonly jobs = new Map<string, Job<BridgeJobInput>>();
  /** Jobs that Redis has been given; one whose input is still being written to the store is not lost, only not there yet. */
  private readonly enqueued = new Set<string>();
  /** Cancels on their way to Redis; close() waits for them. */
  private readonly cancelling = new Set<Promise<void>>();
  private active = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private readonly display: string;
  /** Jobs holding a result in memory, oldest first, and their bytes. */
  private readonly retained: Job<BridgeJobInput>[] = [];
  private retainedBytes = 0;

  private constructor(
    private readonly options: RedisJobQueueOptions,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly client: IORedis,
  ) {
    this.display = redisOptions(options.url).display;
    events.on('active', ({ jobId }) => {
      const job = this.jobs.get(jobId);
      if (!job || job.finished) return;
      if (job.state !== 'running') {
        job.state = 'running';
        job.startedAt = Date.now();
        job.emit({ type: 'running' });
      }
    });
    events.on('progress', ({ jobId, data }) => {
      const job = this.jobs.get(jobId);
      if (!job || job.finished) return;
      const d = data as Partial<JobProgress> & { stage?: string };
      if (d.stage !== undefined && d.stage !== job.stage) {
        job.stage = d.stage;
        job.emit({ type: 'stage', stage: d.stage });
      }
      if (typeof d.done === 'number' && typeof d.total === 'number' && (d.done !== job.progress.done || d.total !== job.progress.total)) {
        job.progress = { done: d.done, total: d.total };
        job.emit({ type: 'progress', progress: job.progress });
      }
    });
    events.on('completed', ({ jobId, returnvalue }) => void this.completed(jobId, returnvalue as unknown as RasterJobResult | string));
    events.on('failed', ({ jobId, failedReason }) => {
      const job = this.jobs.get(jobId);
      if (!job || job.finished) return;
      const e = decodeError(failedReason);
      if (e.code === 'UPB_CANCELLED' || job.controller.signal.aborted) this.finish(job, 'cancelled');
      else this.fail(job, e);
    });
    // A job Redis no longer knows (restarted without persistence) is failed, never left waiting forever.
    this.later(5000, () => this.audit(), true);
  }

  static async connect(options: RedisJobQueueOptions): Promise<RedisJobQueue> {
    const display = redisOptions(options.url).display;
    const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(options, false) });
    const events = new QueueEvents(QUEUE_NAME, { connection: connectionOptions(options, true) });
    queue.on('error', () => undefined);
    events.on('error', () => undefined);
    await connected(Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), [queue, events], display);
    const client = (await queue.client) as unknown as IORedis;
    return new RedisJobQueue(options, queue, events, client);
  }

  get length(): number {
    return this.active;
  }

  /** Throws UPB_QUEUE_UNAVAILABLE (503) while Redis cannot be reached, UPB_QUEUE_FULL beyond capacity. */
  checkRoom(): void {
    if (this.closed) throw new UpbridgeError('UPB_QUEUE_FULL', 'the server is shutting down');
    if (this.client.status !== 'ready') throw unavailable(this.display);
    if (this.active >= this.options.capacity) {
      throw new UpbridgeError('UPB_QUEUE_FULL', `the queue is full (${this.options.capacity} jobs of this bridge waiting or running); retry later`, { retryAfterSeconds: 5 });
    }
  }

  submit(input: BridgeJobInput): Job<BridgeJobInput> {
    this.checkRoom();
    const job = new Job(input);
    this.jobs.set(job.id, job);
    this.active++;
    job.emit({ type: 'queued', position: this.active });
    void this.enqueue(job);
    return job;
  }

  private async enqueue(job: Job<BridgeJobInput>): Promise<void> {
    const prefix = `jobs/${job.id}/`;
    try {
      const { plan, content, raster } = job.input;
      const data: RasterJobData = {
        kind: 'raster',
        input: await writeRaster(this.options.store, `${prefix}input.raw`, raster),
        plan: { ...plan, model: plan.model?.id },
        content,
        prefix,
        modelSha256: customModelSha256(plan.model?.id),
      };
      if (job.controller.signal.aborted) return;
      await this.queue.add('raster', data, { jobId: job.id, attempts: 1, removeOnComplete: { age: 3600 }, removeOnFail: { age: 3600 } });
      if (!job.finished) this.enqueued.add(job.id);
    } catch (e) {
      if (!job.finished) this.fail(job, isUpbridgeError(e) ? e : unavailable(this.display, e));
    }
  }

  private async completed(jobId: string, value: RasterJobResult | string): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job || job.finished) return;
    try {
      const r = (typeof value === 'string' ? JSON.parse(value) : value) as RasterJobResult;
      const result = await readRaster(this.options.store, r.result);
      const map = r.map ? await readRaster(this.options.store, r.map) : undefined;
      if (job.finished) return;
      if (job.controller.signal.aborted) return this.finish(job, 'cancelled');
      job.result = result;
      job.map = map;
      job.report = { ...r.report, worker: r.worker };
      this.finish(job, 'done');
      this.retain(job);
    } catch (e) {
      this.fail(job, isUpbridgeError(e) ? e : new UpbridgeError('UPB_INTERNAL', `cannot read the result of job ${jobId} from the store: ${(e as Error).message}`));
    }
  }

  get(id: string): Job<BridgeJobInput> | undefined {
    return this.jobs.get(id);
  }

  cancel(id: string): Job<BridgeJobInput> {
    const job = this.jobs.get(id);
    if (!job) throw new UpbridgeError('UPB_JOB_NOT_FOUND', `no job ${JSON.stringify(id)}`);
    if (job.finished) return job;
    job.controller.abort();
    const sent = cancelRemote(this.client, id).catch(() => undefined);
    this.cancelling.add(sent);
    void sent.finally(() => this.cancelling.delete(sent));
    if (job.state === 'queued') {
      // Not started: taken off the queue now (a worker that took it meanwhile sees the cancel key).
      void this.queue
        .remove(id)
        .catch(() => 0)
        .then((removed) => {
          if (removed === 1 && !job.finished) this.finish(job, 'cancelled');
        });
    }
    // A running job: its worker stops before the next tile and reports it cancelled ('failed').
    return job;
  }

  private fail(job: Job<BridgeJobInput>, e: UpbridgeError): void {
    job.error = { code: e.code, message: e.message };
    this.finish(job, 'failed');
  }

  private finish(job: Job<BridgeJobInput>, state: 'done' | 'failed' | 'cancelled'): void {
    if (job.finished) return;
    job.state = state;
    job.finishedAt = Date.now();
    this.active--;
    this.enqueued.delete(job.id);
    this.options.releaseInput?.(job.input);
    job.emit(job.terminalEvent()!);
    void this.options.store.remove(`jobs/${job.id}`).catch(() => undefined);
    this.later(this.options.resultTtlMs, () => {
      this.expire(job);
      this.later(this.options.resultTtlMs * 5, () => {
        this.jobs.delete(job.id);
      });
    });
  }

  private retain(job: Job<BridgeJobInput>): void {
    this.retained.push(job);
    this.retainedBytes += bytesOf(job);
    const budget = this.options.resultBudgetBytes ?? 4 * 1024 ** 3;
    while (this.retainedBytes > budget && this.retained.length > 1) this.expire(this.retained[0]);
  }

  private expire(job: Job<BridgeJobInput>): void {
    const at = this.retained.indexOf(job);
    if (at < 0) return;
    this.retained.splice(at, 1);
    this.retainedBytes -= bytesOf(job);
    job.result = undefined;
    job.map = undefined;
    job.resultExpired = true;
  }

  private async audit(): Promise<void> {
    if (this.client.status !== 'ready') return;
    for (const job of this.jobs.values()) {
      if (job.finished || !this.enqueued.has(job.id) || Date.now() - job.createdAt < 5000) continue;
      const state = await this.queue.getJobState(job.id).catch(() => undefined);
      if (state === 'unknown' && !job.finished) this.fail(job, new UpbridgeError('UPB_QUEUE_UNAVAILABLE', `job ${job.id} is no longer in the queue at ${this.display} (Redis restarted without its data?); submit it again`));
    }
  }

  private later(ms: number, fn: () => void | Promise<void>, repeat = false): void {
    const timer = (repeat ? setInterval : setTimeout)(() => {
      if (!repeat) this.timers.delete(timer);
      void fn();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.timers.clear();
    // This bridge's clients are gone with it: its unfinished jobs are cancelled on the workers.
    for (const job of this.jobs.values()) if (!job.finished) this.cancel(job.id);
    await Promise.all(this.cancelling);
    await this.events.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
  }
}

const bytesOf = (job: Job<BridgeJobInput>) => (job.result?.data.byteLength ?? 0) + (job.map?.data.byteLength ?? 0);

const secondsSince = (t0: number) => Number(((performance.now() - t0) / 1000).toFixed(3));
