import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isUpbridgeError, throwIfCancelled, UpbridgeError } from '../core/errors';
import { Raster } from '../core/raster';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobProgress {
  done: number;
  total: number;
}

export type JobEvent =
  | { type: 'queued'; position: number }
  | { type: 'running' }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'stage'; stage: string }
  | { type: 'done' }
  | { type: 'failed'; error: { code: string; message: string } }
  | { type: 'cancelled' };

/** What a finished job keeps: the image, the invented-detail map when asked for, and a report. */
export interface JobOutput {
  raster: Raster;
  map?: Raster;
  report?: Record<string, unknown>;
}

/** What a job runs; the queue treats it as opaque. */
export type JobExecutor<Input> = (input: Input, signal: AbortSignal, onProgress: (p: JobProgress) => void, onStage: (stage: string) => void) => Promise<JobOutput>;

export class Job<Input = unknown> {
  readonly id = randomUUID();
  state: JobState = 'queued';
  progress: JobProgress = { done: 0, total: 0 };
  /** What the running job is doing, in words ("installing waifu2x-cunet-2x: download", "fidelity model"). */
  stage?: string;
  error?: { code: string; message: string };
  readonly createdAt = Date.now();
  startedAt?: number;
  finishedAt?: number;
  result?: Raster;
  map?: Raster;
  /** What the pipeline reported (models, LR-PSNR, map summary); kept after the pixels expire. */
  report?: Record<string, unknown>;
  /** True once a finished result was dropped after the retention time. */
  resultExpired = false;
  readonly controller = new AbortController();
  /** Emits 'event' with a JobEvent; terminal events end the stream. */
  readonly events = new EventEmitter();

  constructor(readonly input: Input) {
    this.events.setMaxListeners(100);
  }

  get finished(): boolean {
    return this.terminalEvent() !== undefined;
  }

  timings() {
    const queuedMs = (this.startedAt ?? this.finishedAt ?? Date.now()) - this.createdAt;
    const runMs = this.startedAt ? (this.finishedAt ?? Date.now()) - this.startedAt : 0;
    return { queuedMs, runMs };
  }

  emit(event: JobEvent): void {
    this.events.emit('event', event);
  }

  /** The event that ended the job; undefined while it is still queued or running. */
  terminalEvent(): JobEvent | undefined {
    if (this.state === 'done') return { type: 'done' };
    if (this.state === 'failed') return { type: 'failed', error: this.error! };
    if (this.state === 'cancelled') return { type: 'cancelled' };
    return undefined;
  }
}

export interface JobQueue<Input> {
  /** Throws UPB_QUEUE_FULL when the queue holds `capacity` waiting jobs. */
  submit(input: Input): Job<Input>;
  get(id: string): Job<Input> | undefined;
  /** Cancels a queued job at once, a running one within one tile. */
  cancel(id: string): Job<Input>;
  /** Jobs waiting plus running. */
  readonly length: number;
  close(): Promise<void>;
}

export interface QueueOptions<Input> {
  /** Waiting jobs beyond the running one. */
  capacity: number;
  /** How long a finished result stays downloadable. */
  resultTtlMs: number;
  /** Drops what a finished job no longer needs from its input. */
  releaseInput?: (input: Input) => void;
  /** Bytes of results kept at most; beyond it the oldest results expire early. */
  resultBudgetBytes?: number;
}

/**
 * The default queue: in this process, one job at a time (one inference at a time per device:
 * the GPU, or all CPU cores, is the bottleneck), bounded, FIFO.
 */
export class InProcessQueue<Input> implements JobQueue<Input> {
  private readonly jobs = new Map<string, Job<Input>>();
  private readonly waiting: Job<Input>[] = [];
  private running?: Job<Input>;
  private closed = false;
  /** Jobs holding a result, oldest first, and their bytes. */
  private readonly retained: Job<Input>[] = [];
  private retainedBytes = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly execute: JobExecutor<Input>,
    private readonly options: QueueOptions<Input>,
  ) {}

  get length(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  /** Seconds a client should wait before retrying a full queue: a rough guess from the running job. */
  retryAfterSeconds(): number {
    const r = this.running;
    if (!r || r.progress.done === 0 || !r.startedAt) return 5;
    const elapsed = (Date.now() - r.startedAt) / 1000;
    const remaining = (elapsed / r.progress.done) * (r.progress.total - r.progress.done);
    return Math.max(1, Math.ceil(remaining));
  }

  /** Throws UPB_QUEUE_FULL when a job submitted now would be refused. */
  checkRoom(): void {
    if (this.closed) throw new UpbridgeError('UPB_QUEUE_FULL', 'the server is shutting down');
    if (this.waiting.length >= this.options.capacity) {
      throw new UpbridgeError('UPB_QUEUE_FULL', `the queue is full (${this.options.capacity} jobs waiting); retry later`, {
        retryAfterSeconds: this.retryAfterSeconds(),
      });
    }
  }

  submit(input: Input): Job<Input> {
    this.checkRoom();
    const job = new Job(input);
    this.jobs.set(job.id, job);
    this.waiting.push(job);
    job.emit({ type: 'queued', position: this.waiting.length });
    queueMicrotask(() => this.pump());
    return job;
  }

  get(id: string): Job<Input> | undefined {
    return this.jobs.get(id);
  }

  cancel(id: string): Job<Input> {
    const job = this.jobs.get(id);
    if (!job) throw new UpbridgeError('UPB_JOB_NOT_FOUND', `no job ${JSON.stringify(id)}`);
    if (job.finished) return job;
    job.controller.abort();
    const at = this.waiting.indexOf(job);
    if (at >= 0) {
      this.waiting.splice(at, 1);
      this.finish(job, 'cancelled');
    }
    // A running job notices the abort before its next tile and finishes as cancelled.
    return job;
  }

  private async pump(): Promise<void> {
    if (this.running || this.closed) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.running = job;
    job.state = 'running';
    job.startedAt = Date.now();
    job.emit({ type: 'running' });
    try {
      const output = await this.execute(
        job.input,
        job.controller.signal,
        (p) => {
          job.progress = p;
          job.emit({ type: 'progress', progress: p });
        },
        (stage) => {
          if (stage === job.stage) return;
          job.stage = stage;
          job.emit({ type: 'stage', stage });
        },
      );
      throwIfCancelled(job.controller.signal);
      job.result = output.raster;
      job.map = output.map;
      job.report = output.report;
      this.finish(job, 'done');
    } catch (e) {
      if (job.controller.signal.aborted || (isUpbridgeError(e) && e.code === 'UPB_CANCELLED')) {
        this.finish(job, 'cancelled');
      } else {
        job.error = isUpbridgeError(e) ? { code: e.code, message: e.message } : { code: 'UPB_INFERENCE', message: e instanceof Error ? e.message : String(e) };
        this.finish(job, 'failed');
      }
    } finally {
      this.running = undefined;
      queueMicrotask(() => this.pump());
    }
  }

  private finish(job: Job<Input>, state: 'done' | 'failed' | 'cancelled'): void {
    job.state = state;
    job.finishedAt = Date.now();
    this.options.releaseInput?.(job.input);
    job.emit(job.terminalEvent()!);
    if (job.result) this.retain(job);
    // Keep the result for a while, then the record for a while longer, so a late poll still
    // learns what happened ("expired") instead of "not found".
    this.later(this.options.resultTtlMs, () => {
      this.expire(job);
      this.later(this.options.resultTtlMs * 5, () => this.jobs.delete(job.id));
    });
  }

  private retain(job: Job<Input>): void {
    this.retained.push(job);
    this.retainedBytes += bytesOf(job);
    const budget = this.options.resultBudgetBytes ?? Infinity;
    // The newest result always stays: its client is about to download it.
    while (this.retainedBytes > budget && this.retained.length > 1) this.expire(this.retained[0]);
  }

  private expire(job: Job<Input>): void {
    if (!job.result) return;
    this.retainedBytes -= bytesOf(job);
    this.retained.splice(this.retained.indexOf(job), 1);
    job.result = undefined;
    job.map = undefined;
    job.resultExpired = true;
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) {
      job.controller.abort();
      this.finish(job, 'cancelled');
    }
    this.running?.controller.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

function bytesOf(job: Job<unknown>): number {
  return (job.result?.data.byteLength ?? 0) + (job.map?.data.byteLength ?? 0);
}
