/**
 * The plugins' one way to the bridge: plain fetch over HTTP to loopback, JSON errors turned back
 * into the same typed errors (stable `code`s) the CLI and server use. Runs in UXP, in Figma's UI
 * iframe, in browsers and in Node 20 (tests): no Node builtins, no Buffer.
 *
 * Jobs are submitted asynchronously and polled, not awaited with `wait=true` or watched over SSE:
 * UXP's fetch timeout is undocumented and it has no TextDecoder/EventSource
 * (plugins/photoshop/RESEARCH.md §1.8), and a poll every few hundred ms costs nothing next to a
 * tile's inference.
 */
import { ErrorCode, UpbridgeError, cancelledError, throwIfCancelled } from '../../core/errors';
import { BitDepth, ChannelCount, Raster } from '../../core/raster';

export const DEFAULT_BRIDGE_URL = 'http://127.0.0.1:7419';
export const START_HINT = 'start it with `npm start` in the upbridge folder (or `upbridge serve`), then try again';

export interface BridgeLimitsInfo {
  maxBodyBytes: number;
  maxInputPixels: number;
  maxOutputSide: number;
  maxOutputPixels: number;
}

export interface BridgeHealth {
  ok: boolean;
  version: string;
  providers: string[];
  modelsReady: string[];
  queue: { length: number };
  limits: BridgeLimitsInfo;
}

export interface ModelInfo {
  id: string;
  name: string;
  description: string;
  scale: number;
  licence: string;
  ready: boolean;
  default: boolean;
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobStatus {
  id: string;
  state: JobState;
  model: string;
  scale: number;
  progress: { done: number; total: number };
  timings: { queuedMs: number; runMs: number };
  error?: { code: string; message: string };
  result: { available: boolean; expired: boolean; width?: number; height?: number; map?: boolean };
  /** Once done: what ran and how close the result stays to the input. */
  report?: JobReport;
}

/** The bridge's modes (core/modes.ts says what each runs); no mode: the model alone. */
export const MODES = ['fidelity', 'balanced', 'creative'] as const;
export type Mode = (typeof MODES)[number];
export type Content = 'auto' | 'photo' | 'illustration';

/** A finished job's report, as `GET /v1/jobs/:id` gives it. */
export interface JobReport {
  mode?: Mode;
  /** The content the models were picked for (`contentDetected`: detected from the pixels). */
  content: 'photo' | 'illustration';
  contentDetected: boolean;
  /** Given, or implied by the mode (fidelity 0, creative 1); absent: one model, no blend. */
  creativity?: number;
  consistent: boolean;
  tta?: number;
  /** The model that ran in each role: `result` (one model) or the `fidelity` and `creative` ends. */
  models: { result?: string; fidelity?: string; creative?: string };
  /** PSNR of the result downscaled back to the input's size against the input, dB; 100 = identical. */
  lrPsnr: number;
  /** With `map=true`: the invented-detail map's mean, share of pixels over 0.5 and largest regions. */
  map?: { mean: number; shareOver: number; regions: Array<{ x: number; y: number; width: number; height: number; pixels: number }> };
  tiles: number;
  passes: number;
}

export interface JobSettings {
  model?: string;
  scale: number;
  /** With a mode, `model` may be left out: the mode picks one from the catalogue by content. */
  mode?: Mode;
  /** 0 (the fidelity result) … 1 (the creative result); only with a mode. Absent: the mode's own default. */
  creativity?: number;
  /** Which models a mode picks; default auto (detected by the bridge). */
  content?: Content;
}

export interface RunHooks {
  signal?: AbortSignal;
  /** Tiles done of total for the running job (0/0 while queued). */
  onProgress?: (progress: { done: number; total: number; state: JobState; runMs: number }) => void;
  /** Called with the job id once the bridge accepted it. */
  onSubmitted?: (id: string) => void;
}

export interface BridgeClientOptions {
  baseUrl?: string;
  token?: string;
  /** The runtime's fetch; UXP, browsers and Node 20 all have a global one. */
  fetch?: typeof fetch;
  pollMs?: number;
}

type Body = Uint8Array | Uint16Array;

export interface EncodedResult {
  bytes: Uint8Array;
  width: number;
  height: number;
  /** Only for format 'raw': how the pixels in `bytes` are laid out (16-bit samples little-endian). */
  channels?: ChannelCount;
  depth?: BitDepth;
  /** What ran and the result's LR-PSNR (absent from a bridge older than modes). */
  report?: JobReport;
}

/** The upscaled pixels, with the job's report beside them (a Raster still, for callers that want only pixels). */
export type UpscaledRaster = Raster & { report?: JobReport };

export class BridgeClient {
  readonly baseUrl: string;
  token: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly pollMs: number;

  constructor(options: BridgeClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_BRIDGE_URL).replace(/\/+$/, '');
    this.token = options.token;
    // Bound: UXP and browsers throw "Illegal invocation" when fetch is called on another object.
    const f = options.fetch ?? globalThis.fetch;
    this.fetchImpl = ((input: RequestInfo | URL, init?: RequestInit) => f(input, init)) as typeof fetch;
    this.pollMs = options.pollMs ?? 300;
  }

  /** Public: is anything listening, and what can it do. */
  health(signal?: AbortSignal): Promise<BridgeHealth> {
    return this.json<BridgeHealth>('GET', '/v1/health', { signal, auth: false });
  }

  /** Exchanges the code the bridge shows for a token, which this client then uses. */
  async pair(code: string, name: string, signal?: AbortSignal): Promise<string> {
    const trimmed = code.trim().toUpperCase();
    if (!/^[A-Z0-9]{4,12}$/.test(trimmed)) {
      throw new UpbridgeError('UPB_PAIRING_FAILED', 'the pairing code is the 6 letters and digits the bridge prints when it starts (or `upbridge serve` shows again)');
    }
    const { token } = await this.json<{ token: string }>('POST', '/v1/pair', { signal, auth: false, body: JSON.stringify({ code: trimmed, name }), contentType: 'application/json' });
    this.token = token;
    return token;
  }

  models(signal?: AbortSignal): Promise<{ defaultModel: string; models: ModelInfo[] }> {
    return this.json('GET', '/v1/models', { signal });
  }

  status(id: string, signal?: AbortSignal): Promise<JobStatus> {
    return this.json('GET', `/v1/jobs/${encodeURIComponent(id)}`, { signal });
  }

  cancel(id: string): Promise<JobStatus> {
    return this.json('DELETE', `/v1/jobs/${encodeURIComponent(id)}`, {});
  }

  /** Raw pixels in, raw pixels out: no PNG or base64 round trip (8 or 16 bits, 1–4 channels). */
  async upscaleRaster(raster: Raster, settings: JobSettings, hooks: RunHooks = {}): Promise<UpscaledRaster> {
    const query = {
      ...settingsQuery(settings),
      width: String(raster.width),
      height: String(raster.height),
      channels: String(raster.channels),
      depth: String(raster.depth),
    };
    const { bytes, status } = await this.run(raster.data, 'application/octet-stream', query, 'raw', hooks, settings);
    const width = status.result.width!;
    const height = status.result.height!;
    const expected = width * height * raster.channels * (raster.depth / 8);
    if (bytes.byteLength !== expected) {
      throw new UpbridgeError('UPB_INTERNAL', `the bridge sent ${bytes.byteLength} bytes for a ${width}×${height} result; expected ${expected}`);
    }
    const data = raster.depth === 16 ? new Uint16Array(bytes) : new Uint8Array(bytes);
    return { width, height, channels: raster.channels as ChannelCount, depth: raster.depth as BitDepth, data, ...(status.report ? { report: status.report } : {}) };
  }

  /**
   * An encoded image (PNG, JPEG, …) in, an encoded image out (PNG unless `format` says otherwise).
   * With `format` 'raw' the pixels come back as decoded by the bridge; `channels` and `depth` (from
   * the X-Upbridge-* headers) then say how to read them, since only the bridge knows what the
   * encoded input decoded to.
   */
  async upscaleEncoded(bytes: Uint8Array, contentType: string, settings: JobSettings, hooks: RunHooks = {}, format = 'png'): Promise<EncodedResult> {
    const { bytes: out, status, headers } = await this.run(bytes, contentType, settingsQuery(settings), format, hooks, settings);
    const result: EncodedResult = { bytes: new Uint8Array(out), width: status.result.width!, height: status.result.height!, ...(status.report ? { report: status.report } : {}) };
    if (format === 'raw') {
      result.channels = Number(headers.get('x-upbridge-channels')) as ChannelCount;
      result.depth = Number(headers.get('x-upbridge-depth')) as BitDepth;
    }
    return result;
  }

  /** Submit, poll until finished, fetch the result; an abort cancels the job on the bridge too. */
  private async run(body: Body, contentType: string, query: Record<string, string>, format: string, hooks: RunHooks, settings: JobSettings): Promise<{ bytes: ArrayBuffer; status: JobStatus; headers: Headers }> {
    const { signal } = hooks;
    throwIfCancelled(signal);
    const search = new URLSearchParams(query).toString();
    // Submitted without the signal: a cancel during the upload must still learn the job's id,
    // or the job would run on unseen. The cancel takes effect right after the answer.
    const { id } = await this.json<{ id: string }>('POST', `/v1/jobs?${search}`, {
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
      contentType,
    });
    hooks.onSubmitted?.(id);
    const cancelOnBridge = () => void this.cancel(id).catch(() => undefined);
    if (signal?.aborted) {
      cancelOnBridge();
      throw cancelledError();
    }
    signal?.addEventListener('abort', cancelOnBridge, { once: true });
    try {
      let status = await this.status(id, signal);
      while (status.state === 'queued' || status.state === 'running') {
        hooks.onProgress?.({ ...status.progress, state: status.state, runMs: status.timings?.runMs ?? 0 });
        await sleep(this.pollMs, signal);
        status = await this.status(id, signal);
      }
      if (status.state === 'cancelled') throw cancelledError();
      if (status.state === 'failed') throw new UpbridgeError((status.error?.code ?? 'UPB_INTERNAL') as ErrorCode, status.error?.message ?? 'the job failed');
      hooks.onProgress?.({ ...status.progress, state: status.state, runMs: status.timings?.runMs ?? 0 });
      checkModeRan(settings, status, this.baseUrl);
      const response = await this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/result?format=${encodeURIComponent(format)}`, { signal });
      return { bytes: await readBody(response, (r) => r.arrayBuffer(), signal), status, headers: response.headers };
    } finally {
      signal?.removeEventListener('abort', cancelOnBridge);
    }
  }

  private async json<T>(method: string, path: string, init: RequestOptions): Promise<T> {
    const response = await this.request(method, path, init);
    return readBody(response, (r) => r.json() as Promise<T>, init.signal);
  }

  private async request(method: string, path: string, init: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = {};
    if (init.auth !== false) {
      if (!this.token) throw new UpbridgeError('UPB_UNAUTHORIZED', 'not paired with the bridge yet: enter the pairing code the bridge shows');
      headers.authorization = `Bearer ${this.token}`;
    }
    if (init.contentType) headers['content-type'] = init.contentType;
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + path, { method, headers, body: init.body as BodyInit | undefined, signal: init.signal });
    } catch (error) {
      if (init.signal?.aborted) throw cancelledError();
      throw new UpbridgeError('UPB_BRIDGE_UNREACHABLE', `the upbridge bridge is not running at ${this.baseUrl}: ${START_HINT}`, { cause: String(error) });
    }
    if (response.ok) return response;
    throw await errorFrom(response);
  }
}

interface RequestOptions {
  signal?: AbortSignal;
  auth?: boolean;
  body?: Uint8Array | string;
  contentType?: string;
}

/** The job's query: only what was chosen, so the bridge's own defaults apply to the rest. */
function settingsQuery(settings: JobSettings): Record<string, string> {
  const query: Record<string, string> = {};
  if (settings.model) query.model = settings.model;
  query.scale = String(settings.scale);
  if (settings.mode) query.mode = settings.mode;
  if (settings.creativity !== undefined) query.creativity = String(settings.creativity);
  if (settings.content) query.content = settings.content;
  return query;
}

/**
 * A bridge older than modes ignores the `mode` option and runs its default model: that result is
 * refused here, not passed off as the chosen mode's.
 */
function checkModeRan(settings: JobSettings, status: JobStatus, baseUrl: string): void {
  if (!settings.mode || status.report?.mode === settings.mode) return;
  throw new UpbridgeError(
    'UPB_INTERNAL',
    `the bridge at ${baseUrl} ran the job without the ${settings.mode} mode (it reported ${status.report?.mode ? `mode ${status.report.mode}` : 'no mode'}); it is probably older than modes: update upbridge and restart the bridge`,
  );
}

/** The bridge's {error: {code, message}} body as the typed error; anything else keeps its status. */
async function errorFrom(response: Response): Promise<UpbridgeError> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code && body.error.message) return new UpbridgeError(body.error.code as ErrorCode, body.error.message, { status: response.status });
  } catch {
    // not JSON: something else answers on this port
  }
  return new UpbridgeError('UPB_INTERNAL', `unexpected answer from ${response.url || 'the bridge'}: HTTP ${response.status} ${text.slice(0, 200)}`, { status: response.status });
}

/** Reading a body can be cut by an abort (a DOMException) or by the bridge going away. */
async function readBody<T>(response: Response, read: (r: Response) => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await read(response);
  } catch (error) {
    if (signal?.aborted) throw cancelledError();
    throw new UpbridgeError('UPB_BRIDGE_UNREACHABLE', `the connection to the bridge broke while reading its answer: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelledError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
