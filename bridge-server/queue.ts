import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isUpbridgeError, throwIfCancelled, UpbridgeError } from '../core/errors';
import { Raster } from '../core/raster';
import { removeResultFile, ResultFile } from './result-file';

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

/**
 * What a finished job keeps: the image (in memory, or for a huge one a PNG on disk that the job
 * wrote as it ran: result-file.ts), the invented-detail map when asked for, and a report.
 */
export interface JobOutput {
  raster?: Raster;
  resultFile?: ResultFile;
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
  /** The result when it is kept on disk instead of `result`; deleted when the result expires. */
  resultFile?: ResultFile;
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
  /** Throws UPB_QUEUE_FULL when a job submitted now would be refused (UPB_QUEUE_UNAVAILABLE: a shared queue is unreachable). */
  checkRoom(): void;
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
  /** Bytes of results kept in memory at most; beyond it the oldest results expire early. */
  resultBudgetBytes?: number;
  /** Bytes of results kept on disk at most (result files); beyond it the oldest files expire early. */
  resultFileBudgetBytes?: number;
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
  /** Jobs holding a result, oldest first, and their bytes in memory and on disk. */
  private readonly retained: Job<Input>[] = [];
  private retainedBytes = 0;
  private retainedFileBytes = 0;
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
      if (this.closed || job.controller.signal.aborted) await dropFile(output.resultFile);
      throwIfCancelled(job.controller.signal);
      job.result = output.raster;
      job.resultFile = output.resultFile;
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
    if (job.result || job.resultFile) this.retain(job);
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
    this.retainedFileBytes += job.resultFile?.bytes ?? 0;
    // Two budgets: memory (in-memory results) and disk (result files), each spent oldest first. A
    // result on disk costs no memory, so a huge one does not push smaller results out of memory.
    // The newest result always stays: its client is about to download it.
    const budget = this.options.resultBudgetBytes ?? Infinity;
    const fileBudget = this.options.resultFileBudgetBytes ?? Infinity;
    this.spend(() => this.retainedBytes > budget, (j) => bytesOf(j) > 0);
    this.spend(() => this.retainedFileBytes > fileBudget, (j) => j.resultFile !== undefined);
  }

  /** Expires the oldest results that `holds` (never the newest) while `over()`. */
  private spend(over: () => boolean, holds: (job: Job<Input>) => boolean): void {
    while (over()) {
      const oldest = this.retained.slice(0, -1).find(holds);
      if (!oldest) return;
      this.expire(oldest);
    }
  }

  private expire(job: Job<Input>): void {
    if (!job.result && !job.resultFile) return;
    this.retainedBytes -= bytesOf(job);
    this.retainedFileBytes -= job.resultFile?.bytes ?? 0;
    this.retained.splice(this.retained.indexOf(job), 1);
    void dropFile(job.resultFile);
    job.result = undefined;
    job.resultFile = undefined;
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
    // Results on disk go with the server; the records stay (a closed queue answers nothing more).
    await Promise.all(this.retained.map((job) => dropFile(job.resultFile)));
  }
}

/**
 * Deletes a result file, never throwing: an expiry runs from a timer, and a file that cannot go
 * now (Windows refuses while a download still reads it) goes with the results folder on close.
 */
async function dropFile(file: ResultFile | undefined): Promise<void> {
  if (file) await removeResultFile(file).catch(() => undefined);
}

function bytesOf(job: Job<unknown>): number {
  return (job.result?.data.byteLength ?? 0) + (job.map?.data.byteLength ?? 0);
}
