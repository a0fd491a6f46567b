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
  result: { available: boolean; expired: boolean; width?: number; height?: number };
}

export interface JobSettings {
  model?: string;
  scale: number;
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
}

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
  async upscaleRaster(raster: Raster, settings: JobSettings, hooks: RunHooks = {}): Promise<Raster> {
    const query = {
      ...settingsQuery(settings),
      width: String(raster.width),
      height: String(raster.height),
      channels: String(raster.channels),
      depth: String(raster.depth),
    };
    const { bytes, status } = await this.run(raster.data, 'application/octet-stream', query, 'raw', hooks);
    const width = status.result.width!;
    const height = status.result.height!;
    const expected = width * height * raster.channels * (raster.depth / 8);
    if (bytes.byteLength !== expected) {
      throw new UpbridgeError('UPB_INTERNAL', `the bridge sent ${bytes.byteLength} bytes for a ${width}×${height} result; expected ${expected}`);
    }
    const data = raster.depth === 16 ? new Uint16Array(bytes) : new Uint8Array(bytes);
    return { width, height, channels: raster.channels as ChannelCount, depth: raster.depth as BitDepth, data };
  }

  /**
   * An encoded image (PNG, JPEG, …) in, an encoded image out (PNG unless `format` says otherwise).
   * With `format` 'raw' the pixels come back as decoded by the bridge; `channels` and `depth` (from
   * the X-Upbridge-* headers) then say how to read them, since only the bridge knows what the
   * encoded input decoded to.
   */
  async upscaleEncoded(bytes: Uint8Array, contentType: string, settings: JobSettings, hooks: RunHooks = {}, format = 'png'): Promise<EncodedResult> {
    const { bytes: out, status, headers } = await this.run(bytes, contentType, settingsQuery(settings), format, hooks);
    const result: EncodedResult = { bytes: new Uint8Array(out), width: status.result.width!, height: status.result.height! };
    if (format === 'raw') {
      result.channels = Number(headers.get('x-upbridge-channels')) as ChannelCount;
      result.depth = Number(headers.get('x-upbridge-depth')) as BitDepth;
    }
    return result;
  }

  /** Submit, poll until finished, fetch the result; an abort cancels the job on the bridge too. */
  private async run(body: Body, contentType: string, query: Record<string, string>, format: string, hooks: RunHooks): Promise<{ bytes: ArrayBuffer; status: JobStatus; headers: Headers }> {
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

function settingsQuery(settings: JobSettings): Record<string, string> {
  return { ...(settings.model ? { model: settings.model } : {}), scale: String(settings.scale) };
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
