/**
 * The UI iframe's logic, without the DOM: the connection to the bridge (health, pairing, the
 * token), the jobs the main thread hands over, their progress and the outcome of a run. ui.ts
 * renders its state and forwards clicks; the tests drive it directly against a real bridge.
 *
 * The iframe has the network and the main thread has the document, so every upscale runs here:
 * bytes in from the main thread, to the bridge, bytes back. The token lives in figma.clientStorage
 * (through the main thread), since the iframe's origin is null and it has no storage of its own.
 */
import { ErrorCode, isUpbridgeError, UpbridgeError } from '../../../../core/errors';
import { BridgeClient, BridgeLimitsInfo, JobReport, JobState, ModelInfo } from '../../../shared/bridge-client';
import { formatSecondsLeft, ProgressTracker } from '../../../shared/progress';
import { describeRun } from '../../../shared/modes';
import { Action, BROWSER_ENGINE, ErrorInfo, FIGMA_MAX_IMAGE_SIDE, MainToUi, ModelChoice, modelChoice, SelectionSummary, UiToMain, UpscaleJob } from '../common/messages';
import type { ModelCache } from '../../../../core/web/web-model';
import { encodePng, RawPixels } from './png-encode';
import { cutIntoPngTiles } from './tiles';

/** How the plugin names itself when pairing; `upbridge tokens list` shows it. */
export const CLIENT_NAME = 'Figma plugin';

export type Connection =
  | { state: 'connecting' }
  | { state: 'bridge-down'; message: string }
  | { state: 'pairing'; message?: string }
  | { state: 'ready'; version: string; models: ModelInfo[]; defaultModel: string };

export interface ProgressView {
  label: string;
  index: number;
  count: number;
  /** 0..1 over the whole run. */
  fraction: number;
  text: string;
}

export interface Outcome {
  kind: 'done' | 'error' | 'cancelled';
  text: string;
  notes: string[];
  /** After a finished run: what ran and the LR-PSNR ("Creative (realesrgan-x4plus) · LR-PSNR 31.2 dB"). */
  ran?: string;
}

export interface ViewState {
  connection: Connection;
  selection: SelectionSummary;
  /** A run is under way (buttons off, Cancel on). */
  busy: boolean;
  /** What the main thread is doing before the first job (reading images, exporting). */
  status?: string;
  progress?: ProgressView;
  outcome?: Outcome;
}

export interface RunOptions extends ModelChoice {
  scale: number;
  includeChildren: boolean;
}

/**
 * The upscale that runs in this window (ui/browser-engine.ts: core/web on onnxruntime-web), for
 * when the bridge is not running or not paired. The tests of the main thread hand in their own.
 */
export interface LocalEngine {
  upscale(
    job: { bytes: Uint8Array; contentType: string; scale: number; mirrors?: string[]; cache: ModelCache },
    hooks: { signal: AbortSignal; onProgress(done: number, total: number): void; onStep(text: string): void },
  ): Promise<{ pixels: RawPixels; model: string; provider: string; threads: number; /** False when no worker could start and inference held the window's thread. */ inWorker: boolean }>;
}

export interface UiControllerOptions {
  post(message: UiToMain): void;
  /** The in-window engine; without one, "Upscale here" is not offered. */
  localEngine?: LocalEngine;
  render(state: ViewState): void;
  fetch?: typeof fetch;
  pollMs?: number;
  now?: () => number;
}

export class UiController {
  state: ViewState = { connection: { state: 'connecting' }, selection: { layers: 0, imageFills: 0 }, busy: false };
  private client?: BridgeClient;
  private limits?: BridgeLimitsInfo;
  private abort?: AbortController;
  private tracker?: ProgressTracker;
  /** The bridge's reports for this run's jobs, in order. */
  private reports: JobReport[] = [];
  /** What ran in this window in this run ("realesr-general-x4v3 · in this browser (wasm, 1 thread)"). */
  private localRan?: string;
  private modelMirrors?: string[];
  private readonly storedWaiting = new Map<number, (bytes: Uint8Array | undefined) => void>();
  private nextStoredId = 1;

  /** Verified model files, kept by the main thread in figma.clientStorage (this iframe has no storage). */
  readonly modelCache: ModelCache = {
    get: (key) =>
      new Promise((resolve) => {
        const requestId = this.nextStoredId++;
        this.storedWaiting.set(requestId, resolve);
        this.options.post({ type: 'stored-get', requestId, key });
      }),
    set: async (key, bytes) => this.options.post({ type: 'stored-set', key, bytes }),
  };

  constructor(private readonly options: UiControllerOptions) {}

  /** Tells the main thread the UI is listening; it answers with `init`. */
  start(): void {
    this.options.post({ type: 'ready' });
  }

  receive(message: MainToUi): void {
    switch (message.type) {
      case 'init':
        this.client = new BridgeClient({ baseUrl: message.bridgeUrl, token: message.token ?? undefined, fetch: this.options.fetch, pollMs: this.options.pollMs });
        this.modelMirrors = message.modelMirrors;
        this.update({ selection: message.selection });
        void this.connect();
        return;
      case 'selection':
        this.update({ selection: message.selection });
        return;
      case 'status':
        this.update({ status: message.text });
        return;
      case 'job':
        void this.runJob(message.job);
        return;
      case 'stored': {
        const resolve = this.storedWaiting.get(message.requestId);
        this.storedWaiting.delete(message.requestId);
        resolve?.(message.bytes ?? undefined);
        return;
      }
      case 'finished': {
        const ran = this.localRan ?? describeRun(this.reports);
        this.endRun({ kind: 'done', text: message.outcome.summary, notes: message.outcome.notes, ...(ran ? { ran } : {}) });
        return;
      }
      case 'failed':
        this.endRun({ kind: message.error.code === 'UPB_CANCELLED' ? 'cancelled' : 'error', text: message.error.message, notes: [] });
        return;
    }
  }

  /** Health first (is anything there?), then the models with the token (is it still good?). */
  async connect(): Promise<void> {
    const client = this.requireClient();
    this.update({ connection: { state: 'connecting' } });
    let health;
    try {
      health = await client.health();
    } catch (error) {
      this.bridgeDown(error);
      return;
    }
    this.limits = health.limits;
    if (!client.token) {
      this.needPairing('Not paired with the bridge yet: enter the pairing code it shows', true);
      return;
    }
    try {
      const { models, defaultModel } = await client.models();
      this.update({ connection: { state: 'ready', version: health.version, models: models.filter((m) => m.ready), defaultModel } });
    } catch (error) {
      if (code(error) === 'UPB_UNAUTHORIZED') this.forgetToken('The bridge no longer accepts this plugin (its token was revoked or the bridge was reset): pair again with the code it shows');
      else this.bridgeDown(error);
    }
  }

  async pair(pairingCode: string): Promise<void> {
    const client = this.requireClient();
    try {
      const token = await client.pair(pairingCode, CLIENT_NAME);
      this.options.post({ type: 'save-token', token });
    } catch (error) {
      if (code(error) === 'UPB_BRIDGE_UNREACHABLE') this.bridgeDown(error);
      else this.needPairing(message(error), false);
      return;
    }
    await this.connect();
  }

  run(action: Action, options: RunOptions): void {
    if (this.state.busy || this.state.connection.state !== 'ready' || !this.limits) return;
    const { maxOutputSide, maxOutputPixels, maxInputPixels } = this.limits;
    this.tracker = undefined;
    this.reports = [];
    this.localRan = undefined;
    this.update({ busy: true, outcome: undefined, progress: undefined, status: 'Starting…' });
    this.options.post({ type: 'run', request: { action, ...options, limits: { maxOutputSide, maxOutputPixels, maxInputPixels } } });
  }

  /** Whether "Upscale here" is offered: an engine in this window, and no bridge to use. */
  get canRunHere(): boolean {
    const state = this.state.connection.state;
    return !!this.options.localEngine && (state === 'bridge-down' || state === 'pairing');
  }

  /**
   * "Upscale here (slower, fast model)": the same actions, planned by the main thread exactly as
   * for the bridge (same nodes, same paints, one undo step), with the in-window engine's limits:
   * 4x of at most 1024 px a side, so the result always fits Figma's 4096 px.
   */
  runHere(action: Action, includeChildren: boolean): void {
    if (this.state.busy || !this.canRunHere) return;
    const side = BROWSER_ENGINE.maxInputSide;
    this.tracker = undefined;
    this.reports = [];
    this.localRan = undefined;
    this.update({ busy: true, outcome: undefined, progress: undefined, status: 'Starting…' });
    this.options.post({
      type: 'run',
      request: {
        action,
        engine: 'browser',
        scale: BROWSER_ENGINE.scale,
        includeChildren,
        limits: { maxOutputSide: Math.min(FIGMA_MAX_IMAGE_SIDE, side * BROWSER_ENGINE.scale), maxOutputPixels: (side * BROWSER_ENGINE.scale) ** 2, maxInputPixels: side * side },
      },
    });
  }

  /** Stops the job on the bridge and tells the main thread, which then changes nothing. */
  cancel(): void {
    if (!this.state.busy) return;
    this.abort?.abort();
    this.options.post({ type: 'cancel' });
    if (this.state.progress) this.update({ progress: { ...this.state.progress, text: 'Cancelling…' } });
  }

  private async runJob(job: UpscaleJob): Promise<void> {
    if (job.engine === 'browser') return this.runJobHere(job);
    const client = this.requireClient();
    if (job.index === 1 || !this.tracker) this.tracker = new ProgressTracker(job.count, this.options.now);
    else this.tracker.nextStep();
    const abort = new AbortController();
    this.abort = abort;
    this.update({ status: undefined, progress: { label: job.label, index: job.index, count: job.count, fraction: (job.index - 1) / job.count, text: 'Sending to the bridge…' } });
    try {
      const settings = { ...modelChoice(job), scale: job.scale };
      const hooks = { signal: abort.signal, onProgress: (p: { done: number; total: number; state: JobState }) => this.showProgress(job, p) };
      if (job.output.kind === 'image') {
        const out = await client.upscaleEncoded(job.bytes, job.contentType, settings, hooks, job.output.format);
        if (out.report) this.reports.push(out.report);
        this.options.post({ type: 'job-done', id: job.id, width: out.width, height: out.height, pieces: [{ bytes: out.bytes, x: 0, y: 0, width: out.width, height: out.height }] });
      } else {
        const out = await client.upscaleEncoded(job.bytes, job.contentType, settings, hooks, 'raw');
        if (out.report) this.reports.push(out.report);
        this.setProgressText(`Cutting ${out.width}×${out.height} px into tiles…`);
        const pieces = cutIntoPngTiles({ width: out.width, height: out.height, channels: out.channels!, depth: out.depth!, data: out.bytes }, job.output.maxSide);
        this.options.post({ type: 'job-done', id: job.id, width: out.width, height: out.height, pieces });
      }
    } catch (error) {
      this.options.post({ type: 'job-failed', id: job.id, error: errorInfo(error) });
      // The main thread reports the failed run (notify included); here only the connection changes.
      if (code(error) === 'UPB_UNAUTHORIZED') this.forgetToken(message(error), false);
      if (code(error) === 'UPB_BRIDGE_UNREACHABLE') this.bridgeDown(error, false);
    } finally {
      if (this.abort === abort) this.abort = undefined;
    }
  }

  /** A job on the in-window engine: decode, the shared pipeline on onnxruntime-web, PNG back. */
  private async runJobHere(job: UpscaleJob): Promise<void> {
    const engine = this.options.localEngine;
    if (job.index === 1 || !this.tracker) this.tracker = new ProgressTracker(job.count, this.options.now);
    else this.tracker.nextStep();
    const abort = new AbortController();
    this.abort = abort;
    this.update({ status: undefined, progress: { label: job.label, index: job.index, count: job.count, fraction: (job.index - 1) / job.count, text: 'Preparing the model in this window…' } });
    try {
      if (!engine) throw new UpbridgeError('UPB_INTERNAL', 'this window has no in-browser engine');
      const hooks = {
        signal: abort.signal,
        onProgress: (done: number, total: number) => this.showProgress(job, { done, total, state: 'running' }),
        onStep: (text: string) => this.setProgressText(text),
      };
      const out = await engine.upscale({ bytes: job.bytes, contentType: job.contentType, scale: job.scale, mirrors: this.modelMirrors, cache: this.modelCache }, hooks);
      this.localRan = `${out.model} · in this browser (${out.provider}${out.provider === 'wasm' ? `, ${out.threads} thread${out.threads === 1 ? '' : 's'}` : ''}${out.inWorker ? '' : ', on the window thread'})`;
      const { width, height } = out.pixels;
      this.setProgressText('Encoding the result…');
      const pieces = job.output.kind === 'image' ? [{ bytes: encodePng(out.pixels), x: 0, y: 0, width, height }] : cutIntoPngTiles(out.pixels, job.output.maxSide);
      this.options.post({ type: 'job-done', id: job.id, width, height, pieces });
    } catch (error) {
      this.options.post({ type: 'job-failed', id: job.id, error: errorInfo(error) });
    } finally {
      if (this.abort === abort) this.abort = undefined;
    }
  }

  private showProgress(job: UpscaleJob, p: { done: number; total: number; state: JobState }): void {
    const view = this.tracker!.update(p.done, p.total);
    let text: string;
    if (p.state === 'queued') text = "Waiting in the bridge's queue…";
    else if (p.total === 0) text = 'Starting…';
    else if (p.done >= p.total) text = `${p.done} of ${p.total} tiles · finishing…`;
    else text = `${p.done} of ${p.total} tiles · ${formatSecondsLeft(view.secondsLeft)}`;
    this.update({ progress: { label: job.label, index: job.index, count: job.count, fraction: view.fraction, text } });
  }

  private setProgressText(text: string): void {
    if (this.state.progress) this.update({ progress: { ...this.state.progress, text } });
  }

  private endRun(outcome: Outcome): void {
    this.abort = undefined;
    this.update({ busy: false, status: undefined, progress: undefined, outcome });
  }

  private bridgeDown(error: unknown, notify = true): void {
    const text = message(error);
    this.update({ connection: { state: 'bridge-down', message: text } });
    if (notify) this.options.post({ type: 'notify', message: text, error: true });
  }

  private needPairing(text: string, notify: boolean): void {
    this.update({ connection: { state: 'pairing', message: text } });
    if (notify) this.options.post({ type: 'notify', message: text, error: true });
  }

  private forgetToken(text: string, notify = true): void {
    if (this.client) this.client.token = undefined;
    this.options.post({ type: 'save-token', token: null });
    this.needPairing(text, notify);
  }

  private requireClient(): BridgeClient {
    if (!this.client) throw new Error('the main thread has not sent init yet');
    return this.client;
  }

  private update(patch: Partial<ViewState>): void {
    this.state = { ...this.state, ...patch };
    this.options.render(this.state);
  }
}

function code(error: unknown): ErrorCode | undefined {
  return isUpbridgeError(error) ? error.code : undefined;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorInfo(error: unknown): ErrorInfo {
  return { code: code(error) ?? 'UPB_INTERNAL', message: message(error) };
}
