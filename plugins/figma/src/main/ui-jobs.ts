/**
 * The main thread's side of a job: it has the document but no network, so it hands image bytes to
 * the UI iframe and waits for the upscaled bytes to come back as a message.
 */
import { cancelledError, UpbridgeError, ErrorCode } from '../../../../core/errors';
import { Engine, ImagePiece, MainToUi, UiToMain, UpscaleJob } from '../common/messages';

export interface JobResult {
  width: number;
  height: number;
  pieces: ImagePiece[];
}

interface Waiting {
  resolve: (result: JobResult) => void;
  reject: (error: UpbridgeError) => void;
}

export class UiJobs {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private cancelled = false;
  private engine: Engine = 'bridge';

  constructor(private readonly post: (message: MainToUi) => void) {}

  /** A new run: a cancel from the last one no longer applies; every job of it runs on `engine`. */
  begin(engine: Engine = 'bridge'): void {
    this.cancelled = false;
    this.engine = engine;
  }

  run(job: Omit<UpscaleJob, 'id' | 'engine'>): Promise<JobResult> {
    // A cancel that came while the run was still reading images stops it at its first job.
    if (this.cancelled) return Promise.reject(cancelledError());
    const id = this.nextId++;
    return new Promise<JobResult>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.post({ type: 'job', job: { ...job, id, engine: this.engine } });
    });
  }

  /** A job-done or job-failed message from the UI; answers for jobs no longer awaited are dropped. */
  settle(message: Extract<UiToMain, { type: 'job-done' | 'job-failed' }>): void {
    const waiting = this.waiting.get(message.id);
    if (!waiting) return;
    this.waiting.delete(message.id);
    if (message.type === 'job-done') waiting.resolve({ width: message.width, height: message.height, pieces: message.pieces });
    else waiting.reject(new UpbridgeError(message.error.code as ErrorCode, message.error.message));
  }

  /** The designer pressed Cancel: every awaited job fails at once, so the run stops before changing anything. */
  cancelAll(): void {
    this.cancelled = true;
    for (const [id, waiting] of this.waiting) {
      this.waiting.delete(id);
      waiting.reject(cancelledError());
    }
  }
}

/**
 * A result must be exactly the size the plan asked for and its pieces must tile it: anything else
 * would place a wrong image, so it is refused before the document is touched.
 */
export function checkResult(result: JobResult, expected: { width: number; height: number }, maxSide: number, what: string): void {
  const fail = (why: string) => {
    throw new UpbridgeError('UPB_INTERNAL', `the result for ${what} ${why}`);
  };
  if (result.width !== expected.width || result.height !== expected.height) fail(`is ${result.width}×${result.height} px; expected ${expected.width}×${expected.height}`);
  let area = 0;
  for (const p of result.pieces) {
    if (p.x < 0 || p.y < 0 || p.x + p.width > result.width || p.y + p.height > result.height) fail(`has a piece outside the image at (${p.x}, ${p.y})`);
    if (p.width > maxSide || p.height > maxSide) fail(`has a ${p.width}×${p.height} px piece; Figma takes at most ${maxSide} px a side`);
    area += p.width * p.height;
  }
  if (area !== result.width * result.height) fail(`has pieces that do not cover it exactly`);
}
