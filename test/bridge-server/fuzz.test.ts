import { crc32 } from '../../core/node/png-metadata';
import { freePort } from '../../bridge-server/free-port';
import { once } from 'node:events';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { Bridge, buildBridge } from '../../bridge-server/app';
import { BridgeOptions } from '../../bridge-server/config';
import { nodeEngine } from '../../bridge-server/engine';
import { HTTP_STATUS } from '../../bridge-server/http-status';
import { Pairing, TokenStore } from '../../bridge-server/tokens';
import { encodeImage, OutputFormat } from '../../core/node/image-io';
import { Raster } from '../../core/raster';
import { syntheticRaster } from '../helpers';

/**
 * Fuzzes the real bridge (buildBridge + nodeEngine, listening on loopback) over HTTP with
 * malformed, truncated and hostile requests, generated up front from one PRNG seed
 * (UPBRIDGE_FUZZ_SEED to replay another). Every answer must keep the HTTP contract: a documented
 * status, and errors as {error: {code, message}} with a code from core/errors.ts whose status is
 * HTTP_STATUS[code]. A 5xx is a failure, except 500 UPB_INFERENCE answering a wait=true job that
 * really ran. At the end the server must still be healthy, with no unhandled rejections, every
 * accepted job finished, and RSS growth bounded.
 *
 * Framework-level answers (Node's HTTP parser, fastify's bad-URL and long-parameter errors) use
 * that body too; the cases that once did not are tested on their own below. Incomplete requests
 * sent on purpose (a body announced and never sent, clients that hang up) may get no answer;
 * everything else must get one.
 */

const SEED = Number(process.env.UPBRIDGE_FUZZ_SEED ?? 0x5eed2024);
const MODEL = 'realesr-general-x4v3';
const CONCURRENCY = 6;
// Larger than the jobs one run accepts (~130): inference runs in a worker thread, so the server
// takes new jobs while one infers, and a small queue would fill and answer 429 to requests whose
// own errors (bad bytes, found only when the body is read) this suite checks. A full queue's 429
// is tested in http.test.ts.
const QUEUE_CAPACITY = 160;
const PAIRING_PER_MINUTE = 30;
const RSS_GROWTH_LIMIT_MB = 300;

const CODES = new Set<string>(Object.keys(HTTP_STATUS));
const DOCUMENTED = new Set<number>([200, 202, 204, ...Object.values(HTTP_STATUS).filter((s) => s < 500)]);
const TERMINAL = new Set(['done', 'failed', 'cancelled']);
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/tiff'];
const FORMAT_TYPE: Record<OutputFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', tiff: 'image/tiff' };

// The real process: jest gives each test file a copy whose listeners never see real events.
const realProcess = vm.runInThisContext('process') as NodeJS.Process;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** mulberry32 */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile image builders


const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function pngChunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A PNG whose IHDR says width × height; `idat` is the zlib stream as given. */
function pngWith(width: number, height: number, idat: Buffer, colourType = 2, bitDepth = 8, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width >>> 0, 0);
  ihdr.writeUInt32BE(height >>> 0, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), ...extra, pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A zlib stream of `total` bytes of `fill`, deflated in pieces (never the whole inflated size in memory). */
async function deflateFill(total: number, fill = 0): Promise<Buffer> {
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const ended = once(deflate, 'end');
  const block = Buffer.alloc(1 << 20, fill);
  for (let left = total; left > 0; left -= block.length) {
    if (!deflate.write(block.subarray(0, Math.min(left, block.length)))) await once(deflate, 'drain');
  }
  deflate.end();
  await ended;
  return Buffer.concat(parts);
}

/** An 8×8 PNG with an iCCP chunk holding `profile` (a zlib stream). */
function iccpBomb(idat: Buffer, profile: Buffer): Buffer {
  return pngWith(8, 8, idat, 2, 8, [pngChunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), profile]))]);
}

/** Sets SOF width/height in a baseline or progressive JPEG. */
function patchJpegSize(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let at = 2; at + 9 < out.length; ) {
    if (out[at] !== 0xff) break;
    const marker = out[at + 1];
    const length = out.readUInt16BE(at + 2);
    if (marker >= 0xc0 && marker <= 0xc3) {
      out.writeUInt16BE(height, at + 5);
      out.writeUInt16BE(width, at + 7);
      return out;
    }
    at += 2 + length;
  }
  throw new Error('no SOF marker');
}

/** Sets a WebP's size: the VP8X canvas (24-bit, minus one) or a simple lossy frame's 14-bit size. */
function patchWebpSize(webp: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(webp);
  const chunk = out.toString('latin1', 12, 16);
  if (chunk === 'VP8X') {
    out.writeUIntLE(width - 1, 24, 3);
    out.writeUIntLE(height - 1, 27, 3);
  } else if (chunk === 'VP8 ') {
    out.writeUInt16LE(width & 0x3fff, 26);
    out.writeUInt16LE(height & 0x3fff, 28);
  } else {
    throw new Error(`unexpected WebP chunk ${chunk}`);
  }
  return out;
}

/** Sets ImageWidth/ImageLength in IFD0 of a little-endian TIFF to LONG values. */
function patchTiffSize(tiff: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(tiff);
  if (out.toString('latin1', 0, 2) !== 'II') throw new Error('expected a little-endian TIFF');
  const ifd = out.readUInt32LE(4);
  const count = out.readUInt16LE(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    const tag = out.readUInt16LE(entry);
    if (tag === 256 || tag === 257) {
      out.writeUInt16LE(4, entry + 2); // LONG
      out.writeUInt32LE(1, entry + 4);
      out.writeUInt32LE(tag === 256 ? width : height, entry + 8);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// HTTP clients

interface Outcome {
  status?: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Why no (complete) answer came: timeout, reset, refused by the client library. */
  error?: string;
  ms: number;
}

interface FuzzCase {
  family: string;
  /** http: node:http client; raw: bytes written on a socket as they are. */
  via: 'http' | 'raw';
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** http: send the body in two writes without Content-Length (chunked). */
  chunked?: boolean;
  /** raw: the whole request. */
  raw?: Buffer;
  /** Statuses this case may get (on top of the general contract). */
  expect?: number[];
  /** Malformed at the HTTP level: Node's parser may answer for the app. */
  protocol?: boolean;
  /** Incomplete on purpose (announced body never sent): no answer is fine. */
  mayStall?: boolean;
  /** POST /v1/jobs whose input may decode and run. */
  jobMayRun?: boolean;
  wait?: boolean;
  /** The client goes away after this many ms. */
  abortAfterMs?: number;
  timeoutMs?: number;
  note?: string;
}

const flat = (h: http.IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v ?? '')]));

function viaHttp(port: number, c: FuzzCase): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const done = (o: Omit<Outcome, 'ms'>) => {
      if (settled) return;
      settled = true;
      timers.forEach(clearTimeout);
      resolve({ ...o, ms: performance.now() - t0 });
    };
    let req: http.ClientRequest;
    try {
      req = http.request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers: c.headers, agent: false }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => done({ status: res.statusCode, headers: flat(res.headers), body: Buffer.concat(parts) }));
        res.on('error', (e) => done({ status: res.statusCode, headers: flat(res.headers), body: Buffer.concat(parts), error: `response: ${e.message}` }));
        res.on('aborted', () => done({ status: res.statusCode, headers: flat(res.headers), body: Buffer.concat(parts), error: 'response aborted' }));
      });
    } catch (e) {
      done({ headers: {}, body: Buffer.alloc(0), error: `client refused: ${(e as Error).message}` });
      return;
    }
    // The server may answer and close before reading an upload; give the answer a moment to arrive.
    req.on('error', (e) => timers.push(setTimeout(() => done({ headers: {}, body: Buffer.alloc(0), error: `request: ${e.message}` }), 150)));
    timers.push(
      setTimeout(() => {
        req.destroy();
        done({ headers: {}, body: Buffer.alloc(0), error: 'timeout' });
      }, c.timeoutMs ?? 60_000),
    );
    if (c.abortAfterMs !== undefined) {
      timers.push(
        setTimeout(() => {
          req.destroy();
          done({ headers: {}, body: Buffer.alloc(0), error: 'aborted by the client' });
        }, c.abortAfterMs),
      );
    }
    if (c.body && c.chunked) {
      const cut = Math.floor(c.body.length / 2);
      req.write(c.body.subarray(0, cut));
      req.end(c.body.subarray(cut));
    } else {
      req.end(c.body);
    }
  });
}

function dechunk(b: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) return { body: Buffer.concat(parts), complete: false };
    const size = parseInt(b.toString('latin1', at, eol), 16);
    if (!Number.isFinite(size)) return { body: Buffer.concat(parts), complete: false };
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    if (eol + 2 + size > b.length) return { body: Buffer.concat([...parts, b.subarray(eol + 2)]), complete: false };
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

function parseResponse(b: Buffer, head: boolean): (Omit<Outcome, 'ms'> & { complete: boolean }) | undefined {
  const end = b.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = b.toString('latin1', 0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!m) return { headers: {}, body: b, error: `not an HTTP response: ${JSON.stringify(lines[0].slice(0, 60))}`, complete: true };
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const rest = b.subarray(end + 4);
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    if (status === 100) {
      // 100 Continue comes before the real answer.
      const next = parseResponse(rest, head);
      return next ?? { status, headers, body: Buffer.alloc(0), complete: false };
    }
    return { status, headers, body: Buffer.alloc(0), complete: true };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) return { status, headers, ...dechunk(rest) };
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    return { status, headers, body: rest.subarray(0, n), complete: rest.length >= n };
  }
  return { status, headers, body: rest, complete: false };
}

function viaRaw(port: number, c: FuzzCase): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let settled = false;
    const head = c.method === 'HEAD';
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (abortTimer) clearTimeout(abortTimer);
      socket.destroy();
      const parsed = parseResponse(Buffer.concat(parts), head);
      const incomplete = parsed && !parsed.complete && error ? `${error} (answer incomplete)` : undefined;
      resolve({
        status: parsed?.status,
        headers: parsed?.headers ?? {},
        body: parsed?.body ?? Buffer.alloc(0),
        error: parsed?.error ?? incomplete ?? (parsed ? undefined : error ?? 'connection closed without an answer'),
        ms: performance.now() - t0,
      });
    };
    const timer = setTimeout(() => finish('timeout'), c.timeoutMs ?? 30_000);
    const abortTimer = c.abortAfterMs !== undefined ? setTimeout(() => finish('aborted by the client'), c.abortAfterMs) : undefined;
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      const parsed = parseResponse(Buffer.concat(parts), head);
      if (parsed?.complete) finish();
    });
    socket.on('error', (e) => finish(`socket: ${e.message}`));
    socket.on('close', () => finish());
    // Never half-close: Node's server aborts requests whose client sent FIN.
    socket.write(c.raw!);
  });
}

// ---------------------------------------------------------------------------------------------
// The answer contract

interface Tally {
  requests: number;
  byStatus: Map<string, number>;
  byFamily: Map<string, number>;
  deviations: Map<string, number>;
  noAnswer: number;
  inference500: number;
  failures: string[];
  jobs: Set<string>;
  slowest: { ms: number; what: string };
}

function bump(m: Map<string, number>, k: string, by = 1): void {
  m.set(k, (m.get(k) ?? 0) + by);
}

function jsonOf(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

function explain(c: FuzzCase, o: Outcome): string {
  const what = c.via === 'raw' ? JSON.stringify(c.raw!.subarray(0, 160).toString('latin1')) : `${c.method} ${c.path.slice(0, 160)} ${JSON.stringify(c.headers).slice(0, 200)} body ${c.body?.length ?? 0} B`;
  return `[${c.family}${c.note ? `: ${c.note}` : ''}] ${what} -> ${o.status ?? o.error} ${o.body.toString('utf8', 0, 200)}`;
}

/** Every answer uses the app's error body now; kept as the one place to allow an exception. */
function knownDeviation(_c: FuzzCase, _status: number, _body: Buffer): string | undefined {
  return undefined;
}

async function checkImageAnswer(o: Outcome): Promise<string | undefined> {
  const type = (o.headers['content-type'] ?? '').split(';')[0].trim();
  if (type === 'application/octet-stream') {
    const [w, h, ch, d] = ['width', 'height', 'channels', 'depth'].map((k) => Number(o.headers[`x-upbridge-${k}`]));
    if (![w, h, ch, d].every((v) => Number.isInteger(v) && v > 0)) return `raw result without its X-Upbridge-* headers: ${JSON.stringify(o.headers)}`;
    if (o.body.length !== (w * h * ch * d) / 8) return `raw result is ${o.body.length} bytes, headers say ${w}×${h}×${ch}×${d / 8}`;
    return undefined;
  }
  if (!IMAGE_TYPES.includes(type)) return `result has content-type ${JSON.stringify(type)}`;
  try {
    const meta = await sharp(o.body).metadata();
    if (`image/${meta.format}` !== type) return `result says ${type} but is ${meta.format}`;
    if (!meta.width || !meta.height) return 'result image has no size';
  } catch (e) {
    return `result does not decode: ${(e as Error).message}`;
  }
  return undefined;
}

/** Returns why the answer breaks the contract, or undefined. */
async function verdict(c: FuzzCase, o: Outcome, t: Tally): Promise<string | undefined> {
  if (o.status === undefined) {
    if (c.mayStall || c.abortAfterMs !== undefined) {
      t.noAnswer++;
      return undefined;
    }
    return `no answer: ${o.error}`;
  }
  const s = o.status;
  if (o.error && c.abortAfterMs === undefined && !c.mayStall) return `answer broken off: ${o.error}`;
  const j = jsonOf(o.body) as { error?: { code?: unknown; message?: unknown }; id?: unknown } | undefined;

  if (s >= 500) {
    if (s === 500 && c.jobMayRun && c.wait && j?.error?.code === 'UPB_INFERENCE') {
      t.inference500++;
      return undefined;
    }
    return `server error ${s}`;
  }
  if (c.expect && !c.expect.includes(s)) return `status ${s}, expected one of ${c.expect.join(', ')}`;

  if (s >= 400) {
    if (c.method === 'HEAD') {
      // No body to look at: the status alone (414 is fastify's maxParamLength answer, see below).
      if (DOCUMENTED.has(s)) return undefined;
      if (s === 414) {
        bump(t.deviations, 'fastify FST_ERR_MAX_PARAM_LENGTH (414, HEAD)');
        return undefined;
      }
      return `undocumented status ${s}`;
    }
    const e = j?.error;
    if (e && typeof e.code === 'string' && typeof e.message === 'string' && e.message.length > 0) {
      if (!CODES.has(e.code)) return `unknown error code ${e.code}`;
      if (HTTP_STATUS[e.code as keyof typeof HTTP_STATUS] !== s) return `code ${e.code} came with ${s}, HTTP_STATUS says ${HTTP_STATUS[e.code as keyof typeof HTTP_STATUS]}`;
      if (e.code === 'UPB_QUEUE_FULL' && !(Number(o.headers['retry-after']) >= 1)) return `429 without a usable Retry-After (${o.headers['retry-after']})`;
      return undefined;
    }
    const known = knownDeviation(c, s, o.body);
    if (known) {
      bump(t.deviations, known);
      return undefined;
    }
    return `error body is not {error:{code,message}}`;
  }
  if (!DOCUMENTED.has(s)) return `undocumented status ${s}`;
  if (s === 204) return c.method === 'OPTIONS' ? undefined : '204 outside a preflight';
  if (s === 202) {
    if (!(c.method === 'POST' && c.path.startsWith('/v1/jobs'))) return '202 outside POST /v1/jobs';
    if (typeof j?.id !== 'string' || !/^[0-9a-f-]{36}$/.test(j.id)) return `202 without a job id`;
    t.jobs.add(j.id);
    return undefined;
  }
  if (c.method === 'POST' && c.path.startsWith('/v1/jobs')) {
    if (!c.wait) return '200 for POST /v1/jobs without wait';
    return checkImageAnswer(o);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Case generation

interface Corpus {
  /** name → encoded image; name starts with its format. */
  images: { name: string; format: OutputFormat; bytes: Buffer }[];
  smallPng: Buffer;
  /** Precomputed zlib streams for the decompression bombs. */
  zlib: { rows8000: Buffer; zeros32M: Buffer; zeros16M: Buffer; text16M: Buffer; rows8: Buffer };
}

async function buildCorpus(): Promise<Corpus> {
  const rasters: [string, Raster][] = [
    ['rgb8-8x8', syntheticRaster(8, 8, 3, 8, 1)],
    ['rgba8-16x16', syntheticRaster(16, 16, 4, 8, 2)],
    ['grey8-24x16', syntheticRaster(24, 16, 1, 8, 3)],
    ['greya8-16x12', syntheticRaster(16, 12, 2, 8, 4)],
    ['rgb16-16x16', syntheticRaster(16, 16, 3, 16, 5)],
    ['rgba16-12x20', syntheticRaster(12, 20, 4, 16, 6)],
    ['rgb8-32x32', syntheticRaster(32, 32, 3, 8, 7)],
  ];
  const images: Corpus['images'] = [];
  for (const [name, raster] of rasters) {
    for (const format of ['png', 'jpeg', 'webp', 'tiff'] as const) {
      images.push({ name: `${format}-${name}`, format, bytes: (await encodeImage(raster, format)).bytes });
    }
  }
  // With metadata: Display P3 profile, EXIF (orientation 6), 300 dpi.
  const withMeta = syntheticRaster(20, 14, 3, 8, 8);
  const source = () => sharp(Buffer.from(withMeta.data.buffer), { raw: { width: 20, height: 14, channels: 3 } }).withIccProfile('p3').withExif({ IFD0: { Copyright: 'fuzz', Orientation: '6' } }).withMetadata({ density: 300 });
  images.push({ name: 'jpeg-meta', format: 'jpeg', bytes: await source().jpeg().toBuffer() });
  images.push({ name: 'png-meta', format: 'png', bytes: await source().png().toBuffer() });
  images.push({ name: 'webp-meta', format: 'webp', bytes: await source().webp().toBuffer() });
  images.push({ name: 'tiff-meta', format: 'tiff', bytes: await source().tiff().toBuffer() });
  return {
    images,
    smallPng: (await encodeImage(syntheticRaster(8, 8, 3, 8, 10), 'png')).bytes,
    zlib: {
      // 8000 rows of 8000 RGB pixels (filter byte + 24000 zero bytes each): 192 MB from ~190 KB.
      rows8000: await deflateFill((1 + 8000 * 3) * 8000),
      zeros32M: await deflateFill(32 << 20),
      zeros16M: await deflateFill(16 << 20),
      text16M: await deflateFill(16 << 20, 0x41),
      rows8: await deflateFill((1 + 8 * 3) * 8),
    },
  };
}

/** Mirrors core/validate: numbers from query strings. */
function asNumber(v: string | undefined): number {
  return v !== undefined && v.trim() !== '' ? Number(v) : NaN;
}
const isInt = (v: string | undefined, lo: number, hi: number) => Number.isInteger(asNumber(v)) && asNumber(v) >= lo && asNumber(v) <= hi;

const NUMBER_JUNK = ['0', '-1', '-0', '1.5', '1e1', '1e309', '-1e309', 'NaN', 'Infinity', '-Infinity', '', ' ', '0x8', '0b11', '08', ' 8', '8 ', '+8', '8abc', '\u0661\u0666', '16384', '16385', '4294967297', '9007199254740993', '\u0000', 'null', '[]', '{}', '\u00e9', '1,5', '%'];
const SCALES = ['-1', '0', '0.5', '0.999', '1', '2', '2.5', '4', '16', '16.0001', '17', '1e309', 'NaN', '', 'Infinity', '0x2', '2e0', '\u0662', '4 ', ' 4', '1e-400'];
const TILES = ['0', '15', '16', '17', '64', '256', '4096', '4097', '1.5', '-16', 'abc', '1e2', ''];
const OVERLAPS = ['-1', '0', '8', '32', '256', '257', '1.5', 'x', ''];
const ALPHAS = ['model', 'lanczos', 'blur', 'MODEL', '', 'lanczos\u0000'];
const MODELS = [MODEL, MODEL, MODEL, '../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'realesrgan', MODEL.toUpperCase(), `${MODEL} `, '__proto__', 'constructor', 'toString', 'hasOwnProperty', '\u4e2d\u6587', '\ud83d\ude00', '', '\u0000', 'a'.repeat(3000)];
const FORMATS = ['png', 'raw', 'jpeg', 'webp', 'tiff', 'gif', 'RAW', '', 'bmp', 'png\u0000'];
const WAITS = ['true', '1', 'false', 'yes', '', 'TRUE'];

function query(params: [string, string][]): string {
  return params.length === 0 ? '' : `?${params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
}

interface Ctx {
  port: number;
  token: string;
  corpus: Corpus;
}

function auth(ctx: Ctx): Record<string, string> {
  return { authorization: `Bearer ${ctx.token}` };
}

function rawRequest(ctx: Ctx, lines: string[], body: Buffer = Buffer.alloc(0), host = `127.0.0.1:${ctx.port}`): Buffer {
  const head = [lines[0], `Host: ${host}`, 'Connection: close', ...lines.slice(1)].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]);
}

function generate(rng: Rng, ctx: Ctx): FuzzCase[] {
  const cases: FuzzCase[] = [];
  const { corpus } = ctx;
  const jobPost = (family: string, body: Buffer, type: string, params: [string, string][], extra: Partial<FuzzCase> = {}): FuzzCase => ({
    family,
    via: 'http',
    method: 'POST',
    path: `/v1/jobs${query(params)}`,
    headers: { ...auth(ctx), 'content-type': type },
    body,
    ...extra,
  });
  const smallScale = (): [string, string][] => [['model', MODEL], ['scale', rng.pick(['1', '2', '4'])]];

  // Valid controls: must be accepted (or back-pressured).
  for (let i = 0; i < 16; i++) {
    const img = rng.pick(corpus.images);
    const wait = rng.chance(0.3);
    const params = smallScale();
    if (wait) params.push(['wait', 'true'], ['format', rng.pick(['png', 'raw', 'jpeg', 'webp', 'tiff'])]);
    cases.push(jobPost('valid', img.bytes, FORMAT_TYPE[img.format], params, { expect: wait ? [200, 429] : [202, 429], jobMayRun: true, wait, note: img.name }));
  }

  // Truncated images at random offsets.
  for (let i = 0; i < 160; i++) {
    const img = rng.pick(corpus.images);
    const cut = rng.int(0, img.bytes.length - 1);
    const type = rng.chance(0.8) ? FORMAT_TYPE[img.format] : rng.pick(IMAGE_TYPES);
    const wait = rng.chance(0.1);
    const params = smallScale();
    if (wait) params.push(['wait', 'true']);
    cases.push(jobPost('truncated', img.bytes.subarray(0, cut), type, params, { jobMayRun: true, wait, note: `${img.name} cut at ${cut}/${img.bytes.length}` }));
  }

  // Bit-flipped and byte-smashed images.
  for (let i = 0; i < 200; i++) {
    const img = rng.pick(corpus.images);
    const bytes = Buffer.from(img.bytes);
    const flips = rng.int(1, 8);
    const smash = rng.chance(0.3);
    for (let k = 0; k < flips; k++) {
      const at = rng.int(0, bytes.length - 1);
      if (smash) bytes[at] = rng.int(0, 255);
      else bytes[at] ^= 1 << rng.int(0, 7);
    }
    const wait = rng.chance(0.15);
    const params = smallScale();
    if (wait) params.push(['wait', 'true'], ['format', rng.pick(['png', 'raw', 'jpeg', 'webp', 'tiff'])]);
    cases.push(jobPost('bitflip', bytes, FORMAT_TYPE[img.format], params, { jobMayRun: true, wait, note: `${img.name} ${smash ? 'smashed' : 'flipped'} ${flips}` }));
  }

  // Decompression bombs and lying headers.
  const jpeg8 = corpus.images.find((x) => x.name === 'jpeg-rgb8-8x8')!.bytes;
  const webp8 = corpus.images.find((x) => x.name === 'webp-rgb8-8x8')!.bytes;
  const tiff8 = corpus.images.find((x) => x.name === 'tiff-rgb8-8x8')!.bytes;
  const tinyIdat = zlib.deflateSync(Buffer.alloc(64));
  const bombs: [string, Buffer, string, number[], string?][] = [
    ['png IHDR 100000x100000', pngWith(100000, 100000, tinyIdat), 'image/png', [413]],
    ['png IHDR 65535x65535 rgba16', pngWith(65535, 65535, tinyIdat, 6, 16), 'image/png', [413]],
    ['png IHDR 2^31-1 x 1', pngWith(0x7fffffff, 1, tinyIdat), 'image/png', [413, 415]],
    ['png IHDR 2^32-1 square', pngWith(0xffffffff, 0xffffffff, tinyIdat), 'image/png', [413, 415]],
    ['png IHDR 0x0', pngWith(0, 0, tinyIdat), 'image/png', [415]],
    ['png IHDR bad bit depth', pngWith(8, 8, tinyIdat, 2, 7), 'image/png', [415]],
    // Inflates to 8000×8000×3 = 192 MB of pixels from ~190 KB; 4x of it is over the output limit.
    ['png 8000x8000 zeros, scale 4', pngWith(8000, 8000, corpus.zlib.rows8000), 'image/png', [413]],
    ['png 8000x8000 truncated IDAT, scale 4', pngWith(8000, 8000, zlib.deflateSync(Buffer.alloc(1000))), 'image/png', [413, 415]],
    ['png 16x16 with 32 MB of extra IDAT', pngWith(16, 16, corpus.zlib.zeros32M), 'image/png', [202, 415, 429], '1'],
    // 16 MB, not more: an accepted job keeps its ICC profile (see the known bug below), and the
    // RSS bound here is about leaks, not that.
    ['png iCCP inflating to 16 MB', iccpBomb(corpus.zlib.rows8, corpus.zlib.zeros16M), 'image/png', [202, 413, 415, 429], '1'],
    ['png zTXt inflating to 16 MB', pngWith(8, 8, corpus.zlib.rows8, 2, 8, [pngChunk('zTXt', Buffer.concat([Buffer.from('Comment\0\0', 'latin1'), corpus.zlib.text16M]))]), 'image/png', [202, 415, 429], '1'],
    ['jpeg SOF 65500x65500', patchJpegSize(jpeg8, 65500, 65500), 'image/jpeg', [413, 415]],
    ['jpeg SOF 0x0', patchJpegSize(jpeg8, 0, 0), 'image/jpeg', [415]],
    ['webp 16383x16383', patchWebpSize(webp8, 16383, 16383), 'image/webp', [413, 415]],
    ['tiff IFD 100000x100000', patchTiffSize(tiff8, 100000, 100000), 'image/tiff', [413, 415]],
    ['tiff IFD 4000000000x1', patchTiffSize(tiff8, 4000000000, 1), 'image/tiff', [413, 415]],
  ];
  for (const [note, bytes, type, expect, scale] of bombs) {
    cases.push(jobPost('bomb', bytes, type, [['model', MODEL], ['scale', scale ?? '4']], { expect, jobMayRun: expect.includes(202), note }));
  }
  // Raw descriptors over the limits, refused before any body is read.
  cases.push(jobPost('bomb', Buffer.alloc(0), 'application/octet-stream', [['width', '16384'], ['height', '16384']], { expect: [413], note: 'raw 16384² declared' }));
  cases.push(jobPost('bomb', Buffer.alloc(0), 'application/octet-stream', [['width', '16384'], ['height', '1'], ['scale', '4']], { expect: [413], note: 'raw output over the side limit' }));
  // A raw upload announcing 512 MiB (exactly what the descriptor needs) that never sends it.
  cases.push({
    family: 'bomb',
    via: 'raw',
    method: 'POST',
    path: '/v1/jobs',
    headers: {},
    raw: rawRequest(ctx, [`POST /v1/jobs?width=8192&height=8192&channels=4&depth=16&scale=1 HTTP/1.1`, `Authorization: Bearer ${ctx.token}`, 'Content-Type: application/octet-stream', `Content-Length: ${8192 * 8192 * 8}`]),
    mayStall: true,
    timeoutMs: 400,
    note: 'raw 512 MiB announced, nothing sent',
  });

  // Random bytes with image content types, some behind a real magic number.
  const magics = [PNG_SIGNATURE, Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'), Buffer.from('II*\0\x08\0\0\0', 'latin1'), Buffer.from('MM\0*\0\0\0\x08', 'latin1'), Buffer.alloc(0)];
  for (let i = 0; i < 110; i++) {
    const body = Buffer.concat([rng.pick(magics), rng.bytes(rng.chance(0.1) ? 0 : rng.int(1, 4096))]);
    const type = rng.chance(0.85) ? rng.pick(IMAGE_TYPES) : 'application/octet-stream';
    cases.push(jobPost('random-bytes', body, type, smallScale(), { expect: [400, 413, 415], note: `${body.length} B as ${type}` }));
  }

  // Raw pixels with good and bad descriptors, bodies and Content-Lengths.
  for (let i = 0; i < 220; i++) {
    const val = (good: string[]) => (rng.chance(0.6) ? rng.pick(good) : rng.pick(NUMBER_JUNK));
    const d = { width: val(['1', '2', '8', '16']), height: val(['1', '3', '8', '16']), channels: val(['1', '2', '3', '4']), depth: rng.chance(0.8) ? rng.pick(['8', '16']) : rng.pick(['0', '4', '12', '32', '8.0', ' 8', '', 'x']) };
    const params: [string, string][] = [['model', MODEL], ['scale', rng.chance(0.85) ? rng.pick(['1', '2', '4']) : rng.pick(SCALES)]];
    for (const k of ['width', 'height', 'channels', 'depth'] as const) {
      if (rng.chance(0.07)) continue; // missing
      params.push([k, d[k]]);
      if (rng.chance(0.03)) params.push([k, d[k]]); // duplicate
    }
    // Expected size under the server's rules (depth and channels have defaults).
    const w = asNumber(d.width);
    const h = asNumber(d.height);
    const ch = params.some(([k]) => k === 'channels') ? asNumber(d.channels) : 4;
    const depth = params.some(([k]) => k === 'depth') ? d.depth : '8';
    const dims = params.filter(([k]) => k === 'width').length === 1 && params.filter(([k]) => k === 'height').length === 1;
    const descriptorOk = dims && isInt(d.width, 1, 16384) && isInt(d.height, 1, 16384) && Number.isInteger(ch) && ch >= 1 && ch <= 4 && (depth === '8' || depth === '16');
    const expected = descriptorOk ? w * h * ch * (Number(depth) / 8) : rng.int(0, 64);
    // Keep accepted jobs tiny: a large descriptor gets a wrong body.
    const small = descriptorOk && w * h <= 256;
    const lengthChoice = rng.next();
    const bodyLength = !small ? Math.min(expected, 4096) + (expected <= 4096 ? 1 : 0) : lengthChoice < 0.6 ? expected : lengthChoice < 0.8 ? Math.max(0, expected + rng.pick([-1, 1, -expected, 7])) : rng.int(0, 512);
    const body = rng.bytes(Math.max(0, bodyLength));
    const path = `/v1/jobs${query(params)}`;
    const how = rng.next();
    if (how < 0.6) {
      cases.push({ family: 'raw', via: 'http', method: 'POST', path, headers: { ...auth(ctx), 'content-type': 'application/octet-stream' }, body, jobMayRun: small, note: `${JSON.stringify(d)} ${body.length} B` });
    } else if (how < 0.8) {
      cases.push({ family: 'raw', via: 'http', method: 'POST', path, headers: { ...auth(ctx), 'content-type': 'application/octet-stream' }, body, chunked: true, jobMayRun: small, note: `chunked ${JSON.stringify(d)} ${body.length} B` });
    } else {
      const cl = rng.pick([String(body.length + 1), String(Math.max(0, body.length - 1)), '-1', 'abc', '1e3', '99999999999999999999', ` ${body.length}`, `0x${body.length.toString(16)}`, `${body.length}, ${body.length}`, String(expected)]);
      const stall = /^\d+$/.test(cl.trim()) && Number(cl) > body.length;
      cases.push({
        family: 'raw-content-length',
        via: 'raw',
        method: 'POST',
        path,
        headers: {},
        raw: rawRequest(ctx, [`POST ${path} HTTP/1.1`, `Authorization: Bearer ${ctx.token}`, 'Content-Type: application/octet-stream', `Content-Length: ${cl}`], body),
        protocol: true,
        mayStall: stall,
        timeoutMs: stall ? 400 : 30_000,
        jobMayRun: small,
        note: `Content-Length ${JSON.stringify(cl)} for ${body.length} B, ${JSON.stringify(d)}`,
      });
    }
  }

  // Junk query values on a valid 8×8 PNG; a local oracle says which must be accepted.
  for (let i = 0; i < 160; i++) {
    const q: Record<string, string> = { model: rng.chance(0.7) ? MODEL : rng.pick(MODELS) };
    const junk = ['scale', 'tile', 'overlap', 'alpha', 'format', 'wait'].filter(() => rng.chance(0.35));
    for (const k of junk) q[k] = rng.pick({ scale: SCALES, tile: TILES, overlap: OVERLAPS, alpha: ALPHAS, format: FORMATS, wait: WAITS }[k as 'scale']);
    if (q.scale === undefined) q.scale = rng.pick(['1', '2', '4']);
    const s = asNumber(q.scale);
    const ok =
      q.model === MODEL &&
      Number.isFinite(s) && s >= 1 && s <= 16 &&
      (q.tile === undefined || isInt(q.tile, 16, 4096)) &&
      (q.overlap === undefined || isInt(q.overlap, 0, 256)) &&
      (q.alpha === undefined || ['model', 'lanczos'].includes(q.alpha)) &&
      (q.format === undefined || ['raw', 'png', 'jpeg', 'webp', 'tiff'].includes(q.format));
    const wait = q.wait === 'true' || q.wait === '1';
    const dup = rng.chance(0.05);
    const params = Object.entries(q);
    if (dup) params.push(['scale', '2']);
    cases.push(jobPost('query', corpus.smallPng, 'image/png', params, { expect: ok && !dup ? (wait ? [200, 429] : [202, 429]) : [400], jobMayRun: ok, wait, note: JSON.stringify(q) }));
  }

  // Headers: auth, Host, Origin, content types, sizes.
  const png = corpus.smallPng;
  const hostile: [string, Record<string, string | string[]>, number[], string?][] = [
    ['no auth', {}, [401]],
    ['Bearer only', { authorization: 'Bearer' }, [401]],
    ['Bearer space', { authorization: 'Bearer ' }, [401]],
    ['lower-case scheme', { authorization: `bearer ${ctx.token}` }, [202, 429]],
    ['token + junk', { authorization: `Bearer ${ctx.token} x` }, [401]],
    ['Basic', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, [401]],
    ['token typo', { authorization: `Bearer ${ctx.token.slice(0, -1)}${ctx.token.endsWith('A') ? 'B' : 'A'}` }, [401]],
    ['8 KB token', { authorization: `Bearer ${'x'.repeat(8000)}` }, [401]],
    ['evil Host', { ...auth(ctx), host: 'evil.example' }, [421]],
    ['Host without port', { ...auth(ctx), host: '127.0.0.1' }, [421]],
    ['Host other port', { ...auth(ctx), host: '127.0.0.1:1' }, [421]],
    ['Host LOCALHOST', { ...auth(ctx), host: `LOCALHOST:${ctx.port}` }, [202, 429]],
    ['Host [::1]', { ...auth(ctx), host: `[::1]:${ctx.port}` }, [202, 429]],
    ['Host trailing dot', { ...auth(ctx), host: `localhost.:${ctx.port}` }, [421]],
    ['Origin evil', { ...auth(ctx), origin: 'http://evil.example' }, [403]],
    ['Origin null', { ...auth(ctx), origin: 'null' }, [202, 429]],
    ['Origin self', { ...auth(ctx), origin: `http://127.0.0.1:${ctx.port}` }, [202, 429]],
    ['Origin self slash', { ...auth(ctx), origin: `http://127.0.0.1:${ctx.port}/` }, [403]],
    ['Origin upper', { ...auth(ctx), origin: `HTTP://127.0.0.1:${ctx.port}` }, [403]],
    ['300 headers', { ...auth(ctx), ...Object.fromEntries(Array.from({ length: 300 }, (_, k) => [`x-h${k}`, 'v'.repeat(20)])) }, [202, 429]],
    ['duplicate x-headers', { ...auth(ctx), 'x-dup': ['a', 'b', 'c'] }, [202, 429]],
    ['Expect 100-continue', { ...auth(ctx), expect: '100-continue' }, [202, 429]],
    ['Content-Encoding gzip', { ...auth(ctx), 'content-encoding': 'gzip' }, [202, 415, 429]],
  ];
  for (const [note, headers, expect] of hostile) {
    const isGzip = note === 'Content-Encoding gzip';
    cases.push({ family: 'headers', via: 'http', method: 'POST', path: `/v1/jobs${query([['model', MODEL], ['scale', '1']])}`, headers: { 'content-type': 'image/png', ...headers }, body: isGzip ? zlib.gzipSync(png) : png, expect, jobMayRun: true, note });
  }
  const contentTypes: [string, number[]][] = [
    ['image/png; charset=utf-8', [202, 429]],
    ['IMAGE/PNG', [202, 415, 429]],
    ['image/png, image/jpeg', [202, 415, 429]],
    ['image/jpeg', [202, 415, 429]],
    ['image/gif', [415]],
    ['image/*', [415]],
    ['*/*', [415]],
    ['multipart/form-data; boundary=x', [415]],
    ['application/x-www-form-urlencoded', [400, 415]],
    ['text/plain', [415]],
    ['application/json', [400, 415]],
    ['', [415]],
    ['application/octet-stream; width=8', [400]],
    ['image/png\u00e9', [400, 415]],
  ];
  for (const [type, expect] of contentTypes) {
    if (/[^\x20-\x7e]/.test(type)) {
      cases.push({ family: 'headers', via: 'raw', method: 'POST', path: '/v1/jobs', headers: {}, raw: rawRequest(ctx, ['POST /v1/jobs HTTP/1.1', `Authorization: Bearer ${ctx.token}`, `Content-Type: ${type}`, `Content-Length: ${png.length}`], png), expect, protocol: true, jobMayRun: true, note: `content-type ${JSON.stringify(type)}` });
    } else {
      cases.push({ family: 'headers', via: 'http', method: 'POST', path: `/v1/jobs${query([['model', MODEL], ['scale', '1']])}`, headers: { ...auth(ctx), 'content-type': type }, body: png, expect, jobMayRun: true, note: `content-type ${JSON.stringify(type)}` });
    }
  }
  // Framing and header abuse on raw sockets.
  const A = `Authorization: Bearer ${ctx.token}`;
  const framing: [string, Buffer, number[] | undefined][] = [
    ['20 KB header', rawRequest(ctx, ['GET /v1/health HTTP/1.1', `X-Big: ${'b'.repeat(20_000)}`]), [431]],
    ['2500 headers', rawRequest(ctx, ['GET /v1/health HTTP/1.1', ...Array.from({ length: 2500 }, (_, k) => `X-${k}: 1`)]), [200, 431]],
    ['duplicate Host', rawRequest(ctx, ['GET /v1/models HTTP/1.1', A, 'Host: evil.example']), [200, 400, 421]],
    ['evil Host first', Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1:${ctx.port}\r\n${A}\r\nConnection: close\r\n\r\n`, 'latin1'), [400, 421]],
    ['duplicate Authorization, bad first', rawRequest(ctx, ['GET /v1/models HTTP/1.1', 'Authorization: Bearer nope', A]), [401]],
    ['duplicate Content-Type', rawRequest(ctx, ['POST /v1/jobs?scale=1 HTTP/1.1', A, 'Content-Type: text/plain', 'Content-Type: image/png', `Content-Length: ${png.length}`], png), [202, 415, 429]],
    ['two Content-Lengths', rawRequest(ctx, ['POST /v1/jobs?scale=1 HTTP/1.1', A, 'Content-Type: image/png', `Content-Length: ${png.length}`, 'Content-Length: 3'], png), [400]],
    ['Content-Length + chunked', rawRequest(ctx, ['POST /v1/jobs?scale=1 HTTP/1.1', A, 'Content-Type: image/png', `Content-Length: ${png.length}`, 'Transfer-Encoding: chunked'], png), [400]],
    ['bad chunk size', rawRequest(ctx, ['POST /v1/jobs?scale=1 HTTP/1.1', A, 'Content-Type: image/png', 'Transfer-Encoding: chunked'], Buffer.from('zz\r\nabc\r\n0\r\n\r\n')), [400]],
    ['chunk size overflow', rawRequest(ctx, ['POST /v1/jobs?scale=1 HTTP/1.1', A, 'Content-Type: image/png', 'Transfer-Encoding: chunked'], Buffer.from('ffffffffffffffffff\r\nabc\r\n')), [400]],
    ['Transfer-Encoding gzip', rawRequest(ctx, ['POST /v1/jobs?scale=1 HTTP/1.1', A, 'Content-Type: image/png', 'Transfer-Encoding: gzip'], png), [400, 415]],
    ['negative Content-Length', rawRequest(ctx, ['POST /v1/pair HTTP/1.1', 'Content-Type: application/json', 'Content-Length: -1'], Buffer.from('{}')), [400]],
    ['NUL in header value', rawRequest(ctx, ['GET /v1/models HTTP/1.1', `Authorization: Bearer ${ctx.token}\u0000`]), [400, 401]],
    ['UTF-8 in header value', Buffer.from(rawRequest(ctx, ['GET /v1/models HTTP/1.1', A, 'X-Name: caf\u00e9 \u4e2d']).toString('latin1'), 'latin1'), [200, 400]],
    ['UTF-8 header bytes', Buffer.concat([Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\n${A}\r\nConnection: close\r\nX-U: `, 'latin1'), Buffer.from('\u4e2d\u6587', 'utf8'), Buffer.from('\r\n\r\n')]), [200, 400]],
    ['space before colon', rawRequest(ctx, ['GET /v1/models HTTP/1.1', A, 'X-Bad : 1']), [200, 400]],
    ['obs-fold', Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\n${A}\r\nX-Fold: a\r\n b\r\nConnection: close\r\n\r\n`, 'latin1'), [200, 400]],
    ['bare LF', Buffer.from(`GET /v1/health HTTP/1.1\nHost: 127.0.0.1:${ctx.port}\nConnection: close\n\n`, 'latin1'), [200, 400]],
    ['HTTP/1.0 without Host', Buffer.from('GET /v1/health HTTP/1.0\r\n\r\n', 'latin1'), [421]],
    ['HTTP/0.9', Buffer.from('GET /v1/health\r\n\r\n', 'latin1'), [400, 421]],
    ['HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), [400]],
    ['HTTP/9.9', rawRequest(ctx, ['GET /v1/health HTTP/9.9']), [400, 505, 200]],
    ['garbage', Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 'latin1'), [400]],
    ['TLS ClientHello', Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]), Buffer.alloc(64, 1)]), [400]],
    ['absolute URI, evil authority', rawRequest(ctx, ['GET http://evil.example/v1/health HTTP/1.1']), [200, 400, 421]],
    ['OPTIONS *', rawRequest(ctx, ['OPTIONS * HTTP/1.1']), [204, 400, 404]],
    ['CONNECT', rawRequest(ctx, [`CONNECT 127.0.0.1:${ctx.port} HTTP/1.1`]), undefined],
    ['Upgrade websocket', rawRequest(ctx, ['GET /v1/health HTTP/1.1', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']), [200, 400, 426]],
    ['invalid method token', rawRequest(ctx, ['G@T /v1/health HTTP/1.1']), [400]],
    ['lower-case method', rawRequest(ctx, ['get /v1/health HTTP/1.1']), [400]],
    ['unencoded unicode path', Buffer.from(`GET /v1/jobs/\u00e9\u4e2d HTTP/1.1\r\nHost: 127.0.0.1:${ctx.port}\r\n${A}\r\nConnection: close\r\n\r\n`, 'utf8'), [400, 404]],
    ['NUL in path', rawRequest(ctx, ['GET /v1/jobs/\u0000 HTTP/1.1', A]), [400, 404]],
    ['space in path', rawRequest(ctx, ['GET /v1/jobs/a b HTTP/1.1', A]), [400, 404]],
    ['fragment in request line', rawRequest(ctx, ['GET /v1/health#x HTTP/1.1']), [200, 400, 404]],
  ];
  for (const [note, raw, expect] of framing) {
    const method = raw.toString('latin1', 0, raw.indexOf(' ')) || '?';
    // CONNECT: Node's server has no 'connect' listener and just closes the socket.
    cases.push({ family: 'framing', via: 'raw', method, path: '', headers: {}, raw, expect, protocol: true, mayStall: method === 'CONNECT', note, timeoutMs: method === 'CONNECT' ? 2000 : 30_000 });
  }

  // Methods × paths.
  const paths = ['/', '/openapi.json', '/v1/health', '/v1/models', '/v1/pair', '/v1/jobs', '/v1/jobs/', '/v1', '/v1/', '/V1/HEALTH', '/v1/health/', '//v1//health', '/v1/./health', '/v1/jobs/../health', '/%2e%2e/etc/passwd', '/v1/health%00', '/v1/jobs/x', '/v1/jobs/x/result', '/v1/jobs/x/events', '/v1/jobs/x/y/z', '/favicon.ico', '/.env', '/v1/health?x=%ff', '/v1/health?' + 'a=1&'.repeat(500)];
  const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'LINK', 'MKCOL', 'PURGE'];
  for (let i = 0; i < 110; i++) {
    const method = rng.pick(methods);
    const p = rng.pick(paths);
    const headers: Record<string, string> = rng.chance(0.7) ? auth(ctx) : {};
    if (method === 'OPTIONS' && rng.chance(0.5)) Object.assign(headers, { origin: rng.pick(['null', 'http://evil.example', `http://127.0.0.1:${ctx.port}`]), 'access-control-request-method': rng.pick(['POST', 'GET', 'PUT', 'FOO']) });
    const body = ['POST', 'PUT', 'PATCH'].includes(method) && rng.chance(0.5) ? rng.bytes(rng.int(0, 256)) : undefined;
    if (body) headers['content-type'] = rng.pick(['application/json', 'image/png', 'text/plain', 'application/octet-stream']);
    cases.push({ family: 'methods', via: 'http', method, path: p, headers, body, note: `${method} ${p.slice(0, 40)}` });
  }

  // Pairing with bad bodies (rate limited to PAIRING_PER_MINUTE).
  const pairBodies = ['', '{', 'null', '[]', '"code"', '{"code":1}', '{"code":null}', '{"code":"AAAAAA"}', '{"code":"aaaaaa","name":"x"}', `{"code":"${'A'.repeat(33)}"}`, `{"code":"ABCDEF","name":"${'n'.repeat(65)}"}`, '{"__proto__":{"admin":true},"code":"AAAAAA"}', '{"constructor":{"prototype":{"x":1}},"code":"AAAAAA"}', '['.repeat(5000), `{"code":"${'\\u0000'.repeat(6)}"}`, '{"code":"\ud83d\ude00\ud83d\ude00\ud83d\ude00"}', `{"code":"AAAAAA","pad":"${'x'.repeat(70_000)}"}`, '{"code":"AAAAAA"}{"code":"BBBBBB"}', '\ufeff{"code":"AAAAAA"}', `${'['.repeat(30_000)}${']'.repeat(30_000)}`, `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`];
  for (let i = 0; i < 60; i++) {
    const body = Buffer.from(rng.pick(pairBodies), 'utf8');
    const type = rng.pick(['application/json', 'application/json', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', '']);
    const headers: Record<string, string> = type ? { 'content-type': type } : {};
    cases.push({ family: 'pair', via: 'http', method: 'POST', path: '/v1/pair', headers, body, expect: [400, 403, 413, 415, 429], note: `${type} ${body.toString('utf8', 0, 40)}` });
  }

  // Bad job ids on every job route.
  // As they go in the path: some percent-encoded, some deliberately broken encodings.
  const ids = ['x', '00000000-0000-0000-0000-000000000000', '..', '%2e%2e', '%2F', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '%00', '%E4%B8%AD', '%F0%9F%98%80', 'a'.repeat(100), 'a'.repeat(101), '%', '%zz', '%E0%A4%A', encodeURIComponent("'; DROP TABLE jobs;--"), encodeURIComponent('<script>'), 'null', 'undefined', '-1', '1e309'];
  for (let i = 0; i < 90; i++) {
    const id = rng.pick(ids);
    const [method, suffix] = rng.pick([['GET', ''], ['DELETE', ''], ['GET', '/result'], ['GET', '/result?format=gif'], ['GET', '/result?format=raw'], ['GET', '/events'], ['HEAD', '/result']] as const);
    cases.push({ family: 'job-ids', via: 'http', method, path: `/v1/jobs/${id}${suffix}`, headers: auth(ctx), expect: [400, 404, 414], note: id.slice(0, 20) });
  }

  // Long URLs.
  for (const n of [1000, 4000, 8000, 12000, 15000, 17000, 40000]) {
    cases.push({ family: 'long-url', via: 'http', method: 'GET', path: `/v1/health?pad=${'p'.repeat(n)}`, headers: {}, expect: [200, 431], protocol: true, note: `query ${n}` });
    cases.push({ family: 'long-url', via: 'http', method: 'GET', path: `/${'d'.repeat(n)}`, headers: auth(ctx), expect: [404, 431], protocol: true, note: `path ${n}` });
  }
  cases.push({ family: 'long-url', via: 'http', method: 'POST', path: `/v1/jobs?${'scale=2&'.repeat(1000)}`, headers: { ...auth(ctx), 'content-type': 'image/png' }, body: png, expect: [400], note: '1000 scale params' });
  cases.push({ family: 'long-url', via: 'http', method: 'GET', path: `/v1/models?${Array.from({ length: 1500 }, (_, k) => `k${k}=${k}`).join('&')}`, headers: auth(ctx), expect: [200], note: '1500 params' });

  // Clients that go away: mid-upload, and while waiting for a wait=true job.
  for (let i = 0; i < 30; i++) {
    const img = rng.pick(corpus.images);
    if (rng.chance(0.5)) {
      cases.push(jobPost('client-abort', img.bytes, FORMAT_TYPE[img.format], [['model', MODEL], ['scale', '4'], ['wait', 'true']], { abortAfterMs: rng.int(0, 120), jobMayRun: true, wait: true, note: `${img.name} wait, abort` }));
    } else {
      const announced = img.bytes.length + rng.int(1, 100_000);
      cases.push({
        family: 'client-abort',
        via: 'raw',
        method: 'POST',
        path: '/v1/jobs',
        headers: {},
        raw: rawRequest(ctx, ['POST /v1/jobs?scale=2 HTTP/1.1', A, `Content-Type: ${FORMAT_TYPE[img.format]}`, `Content-Length: ${announced}`], img.bytes.subarray(0, rng.int(0, img.bytes.length))),
        abortAfterMs: rng.int(5, 150),
        mayStall: true,
        note: `partial upload of ${announced} B`,
      });
    }
  }
  return rng.shuffle(cases);
}

// ---------------------------------------------------------------------------------------------
// Running

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}


interface Server {
  bridge: Bridge;
  ctx: Ctx;
  close(): Promise<void>;
}

/** The real bridge on loopback: buildBridge + nodeEngine, tokens in a temporary folder. */
async function startServer(options: Omit<BridgeOptions, 'port'>, corpus: Corpus): Promise<Server> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-fuzz-'));
  const tokens = new TokenStore(dir);
  const port = await freePort();
  const bridge = await buildBridge({ port, ...options }, { engine: nodeEngine(), tokens, pairing: new Pairing(tokens) });
  await bridge.app.listen({ port, host: '127.0.0.1' });
  const { token } = await tokens.create('fuzz');
  return {
    bridge,
    ctx: { port, token, corpus },
    async close() {
      await bridge.app.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

let server: Server;
let bridge: Bridge;
let ctx: Ctx;
const rejections: unknown[] = [];
const uncaught: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
const onUncaught = (error: unknown) => uncaught.push(error);

beforeAll(async () => {
  realProcess.on('unhandledRejection', onRejection);
  realProcess.on('uncaughtExceptionMonitor', onUncaught);
  server = await startServer({ queueCapacity: QUEUE_CAPACITY, pairingRateLimitPerMinute: PAIRING_PER_MINUTE }, await buildCorpus());
  ({ bridge, ctx } = server);
});

afterAll(async () => {
  await server?.close();
  realProcess.off('unhandledRejection', onRejection);
  realProcess.off('uncaughtExceptionMonitor', onUncaught);
});

const run = (c: FuzzCase) => (c.via === 'raw' ? viaRaw(ctx.port, c) : viaHttp(ctx.port, c));

interface SseEvent {
  event: string;
  data: unknown;
}

function parseSse(text: string): SseEvent[] | string {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (event === undefined || data === undefined) return `malformed event block ${JSON.stringify(block.slice(0, 80))}`;
    let parsed: { type?: string };
    try {
      parsed = JSON.parse(data) as { type?: string };
    } catch {
      return `event data is not JSON: ${data.slice(0, 80)}`;
    }
    if (parsed.type !== event) return `event ${event} carries type ${parsed.type}`;
    events.push({ event, data: parsed });
  }
  return events;
}

test(
  `fuzz: ≥1000 hostile requests keep the HTTP contract (seed ${SEED})`,
  async () => {
    const started = performance.now();
    const t: Tally = { requests: 0, byStatus: new Map(), byFamily: new Map(), deviations: new Map(), noAnswer: 0, inference500: 0, failures: [], jobs: new Set(), slowest: { ms: 0, what: '' } };
    const record = async (c: FuzzCase, o: Outcome) => {
      t.requests++;
      bump(t.byStatus, o.status === undefined ? 'none' : String(o.status));
      bump(t.byFamily, c.family);
      if (o.ms > t.slowest.ms) t.slowest = { ms: Math.round(o.ms), what: `[${c.family}] ${c.note ?? c.path.slice(0, 60)} -> ${o.status ?? o.error}` };
      const why = await verdict(c, o, t);
      if (why) t.failures.push(`${why}: ${explain(c, o)}`);
    };

    // Warm up, so RSS growth measures what the fuzzing leaves behind, not first-time costs: the
    // model session, and one pass of the refused decompression bombs (the 192 MB transient decode
    // sets the allocator's high-water mark, which glibc keeps whenever it comes).
    const warm = await viaHttp(ctx.port, { family: 'warm-up', via: 'http', method: 'POST', path: `/v1/jobs${query([['model', MODEL], ['scale', '2'], ['wait', 'true']])}`, headers: { ...auth(ctx), 'content-type': 'image/png' }, body: ctx.corpus.smallPng });
    expect(warm.status).toBe(200);
    const cases = generate(new Rng(SEED), ctx);
    for (const c of cases.filter((x) => x.family === 'bomb' && !x.mayStall && !x.expect?.includes(202))) await record({ ...c, family: 'bomb-warm-up' }, await run(c));
    const rssStart = process.memoryUsage().rss;
    let rssPeak = rssStart;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 250);

    await pool(cases, CONCURRENCY, async (c) => record(c, await run(c)));
    const mainDone = performance.now();

    // Follow-ups on the accepted jobs: status, events, results in every format, some cancels.
    const rng = new Rng(SEED ^ 0xabcdef);
    const jobIds = [...t.jobs];
    const follow: FuzzCase[] = [];
    for (const id of jobIds) {
      follow.push({ family: 'follow-status', via: 'http', method: 'GET', path: `/v1/jobs/${id}`, headers: auth(ctx), expect: [200] });
      if (rng.chance(0.25)) follow.push({ family: 'follow-cancel', via: 'http', method: 'DELETE', path: `/v1/jobs/${id}`, headers: auth(ctx), expect: [200] });
      if (rng.chance(0.4)) follow.push({ family: 'follow-events', via: 'http', method: 'GET', path: `/v1/jobs/${id}/events`, headers: auth(ctx), expect: [200], timeoutMs: 30_000, note: id });
      if (rng.chance(0.4)) {
        const format = rng.pick(['png', 'raw', 'jpeg', 'webp', 'tiff', 'gif', '']);
        follow.push({ family: 'follow-result', via: 'http', method: 'GET', path: `/v1/jobs/${id}/result${format === '' ? '' : `?format=${format}`}`, headers: auth(ctx), expect: format === 'gif' ? [400] : [200, 409], note: format });
      }
    }
    await pool(rng.shuffle(follow), 8, async (c) => {
      const o = await run(c);
      await record(c, o);
      if (o.status === 200 && c.family === 'follow-events') {
        const events = parseSse(o.body.toString('utf8'));
        if (typeof events === 'string') t.failures.push(`SSE: ${events}: ${explain(c, o)}`);
        else if (events.length === 0 || !TERMINAL.has(events[events.length - 1].event)) t.failures.push(`SSE stream ended without a terminal event: ${explain(c, o)}`);
      }
      if (o.status === 200 && c.family === 'follow-result') {
        const why = await checkImageAnswer(o);
        if (why) t.failures.push(`${why}: ${explain(c, o)}`);
      }
    });

    // Every accepted job reaches a terminal state; a job still running after 45 s is cancelled
    // (and must then end as cancelled).
    const states = new Map<string, string>();
    const failedCodes = new Map<string, number>();
    const deadline = performance.now() + 45_000;
    let cancelledLate = 0;
    for (const id of jobIds) {
      for (;;) {
        const o = await viaHttp(ctx.port, { family: 'poll', via: 'http', method: 'GET', path: `/v1/jobs/${id}`, headers: auth(ctx) });
        t.requests++;
        if (o.status !== 200) {
          t.failures.push(`poll ${id}: ${o.status ?? o.error} ${o.body.toString('utf8', 0, 200)}`);
          break;
        }
        const s = JSON.parse(o.body.toString('utf8')) as { state: string; error?: { code: string; message: string }; result: { available: boolean; width?: number } };
        if (TERMINAL.has(s.state)) {
          states.set(id, s.state);
          if (s.state === 'failed') {
            bump(failedCodes, s.error?.code ?? '(none)');
            if (!s.error || !CODES.has(s.error.code)) t.failures.push(`job ${id} failed without a known code: ${JSON.stringify(s.error)}`);
          }
          if (s.state === 'done' && !(s.result.available && s.result.width)) t.failures.push(`job ${id} done without a result: ${JSON.stringify(s.result)}`);
          break;
        }
        if (performance.now() > deadline) {
          cancelledLate++;
          await viaHttp(ctx.port, { family: 'poll', via: 'http', method: 'DELETE', path: `/v1/jobs/${id}`, headers: auth(ctx) });
          t.requests++;
        }
        if (performance.now() > deadline + 15_000) {
          t.failures.push(`job ${id} never reached a terminal state (last ${s.state})`);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // Jobs whose id the fuzzer never saw (wait=true, clients that left) are done too.
    for (let i = 0; i < 600 && bridge.queue.length > 0; i++) await new Promise((r) => setTimeout(r, 100));

    const health = await viaHttp(ctx.port, { family: 'health', via: 'http', method: 'GET', path: '/v1/health', headers: {} });
    clearInterval(sampler);
    const rssEnd = process.memoryUsage().rss;
    const growthMb = (rssEnd - rssStart) / 2 ** 20;
    const count = (m: Map<string, number>) => JSON.stringify(Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b))));
    const stateCount = new Map<string, number>();
    for (const s of states.values()) bump(stateCount, s);
    console.log(
      `fuzz seed=0x${SEED.toString(16)} requests=${t.requests} (main ${cases.length}, follow-up ${follow.length}) in ${((performance.now() - started) / 1000).toFixed(1)} s ` +
        `(main phase ${((mainDone - started) / 1000).toFixed(1)} s) statuses=${count(t.byStatus)} families=${count(t.byFamily)} ` +
        `known-deviations=${count(t.deviations)} no-answer(by design)=${t.noAnswer} 500-UPB_INFERENCE=${t.inference500} ` +
        `jobs=${jobIds.length} ${count(stateCount)} failed-codes=${count(failedCodes)} cancelled-late=${cancelledLate} ` +
        `slowest=${t.slowest.ms} ms ${t.slowest.what} rss ${Math.round(rssStart / 2 ** 20)}→${Math.round(rssEnd / 2 ** 20)} MiB (${growthMb >= 0 ? '+' : ''}${growthMb.toFixed(0)}, peak ${Math.round(rssPeak / 2 ** 20)}) ` +
        `unhandled-rejections=${rejections.length} failures=${t.failures.length}`,
    );

    expect(t.failures.slice(0, 25)).toEqual([]);
    expect(t.requests).toBeGreaterThanOrEqual(1000);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body.toString('utf8'))).toMatchObject({ ok: true, queue: { length: 0 } });
    expect(states.size).toBe(jobIds.length);
    expect(bridge.queue.length).toBe(0);
    expect(rejections.map(String)).toEqual([]);
    expect(uncaught.map(String)).toEqual([]);
    expect(growthMb).toBeLessThan(RSS_GROWTH_LIMIT_MB);
  },
  150_000,
);

// ---------------------------------------------------------------------------------------------
// Bugs this fuzz run found (framework error bodies, limits checked from the header, metadata
// bombs), each kept as a test of its own.

const strictErrorBody = (o: Outcome) => {
  expect(o.status).toBeDefined();
  const j = jsonOf(o.body) as { error?: { code?: string; message?: string } } | undefined;
  expect(j?.error?.code && CODES.has(j.error.code)).toBe(true);
  expect(typeof j?.error?.message).toBe('string');
  expect(HTTP_STATUS[j!.error!.code as keyof typeof HTTP_STATUS]).toBe(o.status);
};

describe('bugs the fuzz run found, now fixed', () => {
  // A server of its own: the fuzz run above spends the other one's pairing rate limit and queue.
  let own: Server;
  beforeAll(async () => {
    own = await startServer({}, ctx.corpus);
  });
  afterAll(async () => {
    await own?.close();
  });
  const send = (c: FuzzCase) => (c.via === 'raw' ? viaRaw(own.ctx.port, c) : viaHttp(own.ctx.port, c));
  const get = (p: string, headers: Record<string, string> = {}): FuzzCase => ({ family: 'bug', via: 'http', method: 'GET', path: p, headers });

  const frameworkCases: [string, () => FuzzCase][] = [
    ['malformed request line (Node parser, fastify default clientErrorHandler)', () => ({ family: 'bug', via: 'raw', method: 'X', path: '', headers: {}, raw: Buffer.from('HELLO\r\n\r\n'), protocol: true })],
    ['20 KB header (431 from the parser)', () => ({ family: 'bug', via: 'raw', method: 'GET', path: '', headers: {}, raw: rawRequest(own.ctx, ['GET /v1/health HTTP/1.1', `X-Big: ${'b'.repeat(20_000)}`]), protocol: true })],
    ['bad percent-encoding in the path (FST_ERR_BAD_URL)', () => get('/v1/jobs/%E0%A4%A', auth(own.ctx))],
    ['job id longer than maxParamLength (414 FST_ERR_MAX_PARAM_LENGTH)', () => get(`/v1/jobs/${'a'.repeat(101)}`, auth(own.ctx))],
    ['OPTIONS without Access-Control-Request-Method (@fastify/cors text body)', () => ({ family: 'bug', via: 'http', method: 'OPTIONS', path: '/v1/jobs', headers: {} })],
  ];
  test.each(frameworkCases)('framework-level error uses {error:{code,message}}: %s', async (_name, make) => {
    const o = await send(make());
    // A preflight without a method is answered with plain CORS headers (204), not an error.
    if (o.status === 204) return;
    strictErrorBody(o);
  });

  test('an image whose output would be over the limits is refused from its header, before decoding', async () => {
    // 8000×8000 is under maxInputPixels; 4x is over maxOutputSide. The IDAT is truncated, so a
    // header check says 413 while decoding first says 415 (and a complete one costs a 192 MB decode).
    const o = await send({
      family: 'bug',
      via: 'http',
      method: 'POST',
      path: `/v1/jobs?model=${MODEL}&scale=4`,
      headers: { ...auth(own.ctx), 'content-type': 'image/png' },
      body: pngWith(8000, 8000, zlib.deflateSync(Buffer.alloc(1000))),
    });
    expect(o.status).toBe(413);
  });

  test('a 32 KB PNG whose ICC profile inflates to 32 MB is refused, or its job does not keep the 32 MB', async () => {
    // Once accepted, and the job record kept input.metadata.icc (32 MB) for resultTtlMs × 6 (one
    // hour by default): a dozen such uploads grew RSS by ~1 GB in a probe.
    const body = iccpBomb(ctx.corpus.zlib.rows8, ctx.corpus.zlib.zeros32M);
    expect(body.length).toBeLessThan(40_000);
    const o = await send({ family: 'bug', via: 'http', method: 'POST', path: `/v1/jobs?model=${MODEL}&scale=1`, headers: { ...auth(own.ctx), 'content-type': 'image/png' }, body });
    // Refused from the header: the profile is over METADATA_LIMITS.icc (4 MiB).
    expect(o.status).toBe(413);
    expect((JSON.parse(o.body.toString('utf8')) as { error: { code: string } }).error.code).toBe('UPB_TOO_LARGE');
  });
});
