/**
 * "Tiles done and time left" for a progress bar. The rate is measured from when the job started
 * running (not from submission, so queueing does not skew it), and from the second tile on, from
 * the first finished tile (so loading the model does not either).
 */
export interface ProgressView {
  done: number;
  total: number;
  /** 0..1 over all steps. */
  fraction: number;
  /** Undefined until two samples give a rate. */
  secondsLeft?: number;
}

export class ProgressTracker {
  /** When the job first reported its tile count (it is running), and the first tile finished. */
  private running?: { time: number; done: number };
  private firstDone?: { time: number; done: number };
  private step = 0;

  constructor(
    /** Several jobs in a row (layer by layer): the bar spans all of them. */
    private readonly steps = 1,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Starts the next job's share of the bar. */
  nextStep(): void {
    this.step = Math.min(this.step + 1, this.steps - 1);
    this.running = undefined;
    this.firstDone = undefined;
  }

  /** `runMs`: how long the bridge has been running the job, when it says (its own clock). */
  update(done: number, total: number, runMs?: number): ProgressView {
    const fractionOfStep = total > 0 ? done / total : 0;
    const fraction = Math.min(1, (this.step + fractionOfStep) / this.steps);
    const view: ProgressView = { done, total, fraction };
    if (total > 0 && !this.running) this.running = { time: this.now(), done };
    if (done > 0 && !this.firstDone) this.firstDone = { time: this.now(), done };
    // From the second tile on, the rate excludes the first tile, which also loads the model.
    const base = this.firstDone && done > this.firstDone.done ? this.firstDone : this.running && done > this.running.done ? this.running : undefined;
    // Before a second tile, the bridge's running time is the only measure (it includes loading).
    const perTile = base ? (this.now() - base.time) / 1000 / (done - base.done) : runMs !== undefined && runMs > 0 && done > 0 ? runMs / 1000 / done : undefined;
    if (perTile !== undefined) {
      // Later steps are assumed to take as long as this one.
      const stepsAfter = this.steps - 1 - this.step;
      view.secondsLeft = perTile * (total - done) + stepsAfter * perTile * total;
    }
    return view;
  }
}

export function formatSecondsLeft(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return 'estimating time left…';
  if (seconds < 1) return 'almost done';
  if (seconds < 60) return `about ${Math.ceil(seconds)} s left`;
  const minutes = Math.floor(seconds / 60);
  return `about ${minutes} min ${Math.round(seconds - minutes * 60)} s left`;
}
