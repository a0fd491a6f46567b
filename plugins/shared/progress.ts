/**
 * "Tiles done and time left" for a progress bar. The rate is measured from the first tile that
 * finished, not from submission, so model loading and queueing do not skew the estimate.
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
  private start?: { time: number; done: number };

  constructor(
    /** Several jobs in a row (layer by layer): the bar spans all of them. */
    private readonly steps = 1,
    private readonly now: () => number = () => Date.now(),
  ) {}

  private step = 0;

  /** Starts the next job's share of the bar. */
  nextStep(): void {
    this.step = Math.min(this.step + 1, this.steps - 1);
    this.start = undefined;
  }

  update(done: number, total: number): ProgressView {
    const fractionOfStep = total > 0 ? done / total : 0;
    const fraction = Math.min(1, (this.step + fractionOfStep) / this.steps);
    const view: ProgressView = { done, total, fraction };
    if (done > 0 && !this.start) this.start = { time: this.now(), done };
    if (this.start && done > this.start.done) {
      const perTile = (this.now() - this.start.time) / 1000 / (done - this.start.done);
      // Later steps are assumed to take as long as this one per unit of progress.
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
