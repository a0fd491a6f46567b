/**
 * A real bridge on loopback for the HTTP tests: buildBridge with real ONNX Runtime sessions
 * (nodeEngine), a token store in a temporary folder, and small HTTP clients on node:http (fetch
 * cannot set Host, and streaming uploads need control over what is sent when).
 */
import { crc32 } from '../../core/node/png-metadata';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Bridge, buildBridge } from '../../bridge-server/app';
import { BridgeOptions, Engine } from '../../bridge-server/config';
import { nodeEngine } from '../../bridge-server/engine';
import { BridgeJobInput } from '../../bridge-server/routes/jobs';
import { Job } from '../../bridge-server/queue';
import { Pairing, TokenStore } from '../../bridge-server/tokens';
import { InferenceRunner, TileTensor } from '../../core/session';

export const FAST_MODEL = 'realesr-general-x4v3';
export const ROOT = path.join(__dirname, '..', '..');
export const INPUT_A = path.join(ROOT, 'test', 'fixtures', 'ncnn-reference', 'input-a.png');

import { freePort } from '../../bridge-server/free-port';

export { freePort };

/** Resolves when `check` returns a truthy value; fails after `timeoutMs` (generous: a bound, not a timing). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 20000, everyMs = 10): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Wraps the real engine: every tile goes through the real ORT runner, but only when the gate
 * lets it. `calls` counts tiles that reached the runner (including ones now held at the gate).
 * Open by default; `close()` holds every later tile until `allow(n)` or `open()`.
 */
export class GatedEngine implements Engine {
  calls = 0;
  /** Tiles that finished inference. */
  completed = 0;
  private permits = Infinity;
  private readonly waiting: Array<() => void> = [];
  private readonly changes = new EventEmitter();

  constructor(private readonly inner: Engine = nodeEngine()) {
    this.changes.setMaxListeners(100);
  }

  close(): void {
    this.permits = 0;
  }

  open(): void {
    this.permits = Infinity;
    this.drain();
  }

  /** Lets `n` more tiles through. */
  allow(n: number): void {
    if (this.permits !== Infinity) this.permits += n;
    this.drain();
  }

  /** Tiles currently held at the gate. */
  get held(): number {
    return this.waiting.length;
  }

  private drain(): void {
    while (this.permits > 0 && this.waiting.length > 0) {
      this.permits--;
      this.waiting.shift()!();
    }
  }

  private async pass(): Promise<void> {
    if (this.permits > 0 && this.waiting.length === 0) {
      this.permits--;
      return;
    }
    await new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.changes.emit('change');
    });
  }

  async runner(modelId: string, onInstallStep?: (step: string) => void): Promise<InferenceRunner> {
    const real = await this.inner.runner(modelId, onInstallStep);
    return {
      provider: real.provider,
      run: async (input: TileTensor) => {
        this.calls++;
        this.changes.emit('change');
        await this.pass();
        const out = await real.run(input);
        this.completed++;
        this.changes.emit('change');
        return out;
      },
    };
  }

  readyModels(): Promise<string[]> {
    return this.inner.readyModels();
  }

  providers(): Promise<string[]> {
    return this.inner.providers();
  }

  /** Waits until `n` tiles are held at the gate. */
  waitHeld(n: number, timeoutMs = 30000): Promise<void> {
    return this.until(() => this.held >= n, `${n} tile(s) held at the gate (held ${this.held})`, timeoutMs);
  }

  private until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.changes.off('change', onChange);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const onChange = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.changes.off('change', onChange);
        resolve();
      };
      this.changes.on('change', onChange);
    });
  }
}

export interface TestBridge extends Bridge {
  port: number;
  origin: string;
  /** A valid bearer token. */
  token: string;
  tokens: TokenStore;
  pairing: Pairing;
  /** Every pairing code shown so far, latest last. */
  codes: string[];
  dir: string;
  engine: Engine;
  /** Jobs as the queue accepted them, in order (so a synchronous request's job can be found). */
  submitted: Job<BridgeJobInput>[];
  close(): Promise<void>;
}

export type TestBridgeOptions = Omit<BridgeOptions, 'port'> & { engine?: Engine };

export async function startBridge(options: TestBridgeOptions = {}): Promise<TestBridge> {
  const { engine = nodeEngine(), ...bridgeOptions } = options;
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-http-'));
  const tokens = new TokenStore(dir);
  const codes: string[] = [];
  const pairing = new Pairing(tokens, (code) => codes.push(code));
  const port = await freePort();
  const bridge = await buildBridge({ port, pairingRateLimitPerMinute: 1000, ...bridgeOptions }, { engine, tokens, pairing });
  const submitted: Job<BridgeJobInput>[] = [];
  const submit = bridge.queue.submit.bind(bridge.queue);
  bridge.queue.submit = (input: BridgeJobInput) => {
    const job = submit(input);
    submitted.push(job);
    return job;
  };
  await bridge.app.listen({ port, host: '127.0.0.1' });
  const { token } = await tokens.create('test');
  let closed = false;
  return {
    ...bridge,
    port,
    origin: `http://127.0.0.1:${port}`,
    token,
    tokens,
    pairing,
    codes,
    dir,
    engine,
    submitted,
    async close() {
      if (closed) return;
      closed = true;
      await bridge.app.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json(): any;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | Uint8Array | string;
  /** Adds Authorization: Bearer <token>. */
  token?: string;
  /** Aborts the request (destroys the socket) when the signal fires. */
  signal?: AbortSignal;
}

function toResponse(res: http.IncomingMessage, body: Buffer): HttpResponse {
  const text = body.toString('utf8');
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body,
    text,
    json: () => JSON.parse(text),
  };
}

/** One request on a fresh connection (no keep-alive pool to outlive the server). */
export function request(port: number, urlPath: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const headers: Record<string, string | number> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
  if (body && headers['content-length'] === undefined) headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: options.method ?? 'GET', headers, agent: false, signal: options.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(toResponse(res, Buffer.concat(chunks))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface UploadResult {
  response?: HttpResponse;
  /** Body bytes written before the response arrived (or the connection ended). */
  bytesSent: number;
  /** Whether the whole declared body was written. */
  finishedSending: boolean;
  error?: Error;
}

/**
 * Streams `total` bytes of `fill` in chunks, waiting for each write to drain, and stops as soon as
 * the response arrives: a server that answers before reading the body answers long before the end.
 * `chunked` leaves Content-Length out (Transfer-Encoding: chunked).
 */
export function streamUpload(
  port: number,
  urlPath: string,
  opts: { headers: Record<string, string | number>; total: number; chunkSize?: number; chunked?: boolean; token?: string; fill?: number },
): Promise<UploadResult> {
  const chunkSize = opts.chunkSize ?? 64 * 1024;
  const headers: Record<string, string | number> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (!opts.chunked) headers['content-length'] = opts.total;
  const chunk = Buffer.alloc(chunkSize, opts.fill ?? 0x41);
  return new Promise((resolve) => {
    const result: UploadResult = { bytesSent: 0, finishedSending: false };
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      req.destroy();
      resolve(result);
    };
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        result.response = toResponse(res, Buffer.concat(chunks));
        settle();
      });
      res.on('error', (e) => {
        result.error = e;
        settle();
      });
    });
    req.on('error', (e) => {
      // The server may close the connection after answering; the answer may still be on its way.
      result.error = e;
      setTimeout(settle, 500);
    });
    const pump = () => {
      while (!settled && result.bytesSent < opts.total) {
        const n = Math.min(chunkSize, opts.total - result.bytesSent);
        result.bytesSent += n;
        if (!req.write(n === chunkSize ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      if (!settled && result.bytesSent >= opts.total) {
        result.finishedSending = true;
        req.end();
      }
    };
    req.once('socket', (socket) => (socket.connecting ? socket.once('connect', pump) : pump()));
  });
}

export interface SseEvent {
  type: string;
  data: any;
}

export interface SseStream {
  status: Promise<number>;
  headers: Promise<http.IncomingHttpHeaders>;
  events: SseEvent[];
  /** Resolves with every event once the server ends the stream. */
  ended: Promise<SseEvent[]>;
  /** Resolves once at least `n` events arrived. */
  received(n: number, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

/** Subscribes to /v1/jobs/:id/events and parses the stream as it arrives. */
export function subscribe(port: number, jobId: string, token: string, headers: Record<string, string> = {}): SseStream {
  const events: SseEvent[] = [];
  const changes = new EventEmitter();
  let resolveStatus!: (s: number) => void;
  let resolveHeaders!: (h: http.IncomingHttpHeaders) => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const headersP = new Promise<http.IncomingHttpHeaders>((r) => (resolveHeaders = r));
  let req!: http.ClientRequest;
  const ended = new Promise<SseEvent[]>((resolve, reject) => {
    req = http.request(
      { host: '127.0.0.1', port, path: `/v1/jobs/${jobId}/events`, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers }, agent: false },
      (res) => {
        resolveStatus(res.statusCode ?? 0);
        resolveHeaders(res.headers);
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (text: string) => {
          buffer += text;
          let at: number;
          while ((at = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            let type = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trim());
            }
            events.push({ type, data: data.length ? JSON.parse(data.join('\n')) : undefined });
          }
          changes.emit('change');
        });
        res.on('end', () => resolve(events));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
  ended.catch(() => {});
  return {
    status,
    headers: headersP,
    events,
    ended,
    received(n, timeoutMs = 30000) {
      if (events.length >= n) return Promise.resolve(events);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} SSE events (got ${JSON.stringify(events)})`)), timeoutMs);
        const onChange = () => {
          if (events.length < n) return;
          clearTimeout(timer);
          changes.off('change', onChange);
          resolve(events);
        };
        changes.on('change', onChange);
        ended.then(() => {
          if (events.length < n) {
            clearTimeout(timer);
            changes.off('change', onChange);
            reject(new Error(`the stream ended after ${events.length} events, before ${n}: ${JSON.stringify(events)}`));
          }
        }, () => {});
      });
    },
    close: () => req.destroy(),
  };
}

/** Every error answer: the status, a JSON body {error: {code, message}} and nothing else. */
export function expectError(res: HttpResponse, status: number, code: string): { code: string; message: string } {
  let body: unknown;
  try {
    body = res.json();
  } catch {
    throw new Error(`expected a JSON error body with ${status} ${code}, got ${res.status} ${JSON.stringify(res.text.slice(0, 300))}`);
  }
  expect({ status: res.status, code: (body as { error?: { code?: string } }).error?.code }).toEqual({ status, code });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(body).toEqual({ error: { code, message: expect.any(String) } });
  const error = (body as { error: { code: string; message: string } }).error;
  expect(error.message.length).toBeGreaterThan(0);
  return error;
}

/** A synthetic RGBA (or other) raster as a little-endian body. */
export function rawBody(data: Uint8Array | Uint16Array): Buffer {
  // The host is little-endian (x86/arm); the wire format is little-endian.
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function jobsPath(query: Record<string, string | number | boolean>): string {
  const q = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  return `/v1/jobs?${q.toString()}`;
}

/** Polls GET /v1/jobs/:id until `check` accepts the status. */
export async function waitForStatus(
  bridge: { port: number; token: string },
  id: string,
  check: (status: any) => boolean,
  what: string,
  timeoutMs = 30000,
): Promise<any> {
  return waitFor(
    async () => {
      const res = await request(bridge.port, `/v1/jobs/${id}`, { token: bridge.token });
      if (res.status !== 200) throw new Error(`GET /v1/jobs/${id}: ${res.status} ${res.text}`);
      const status = res.json();
      return check(status) ? status : null;
    },
    what,
    timeoutMs,
    20,
  );
}

/** A PNG whose IHDR claims width × height, followed by a tiny IDAT and IEND (a decompression bomb's header). */
export function pngHeaderOnly(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = 0;
  // zlib stream of a few zero bytes: far less data than the header promises.
  const idat = Buffer.from([0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

