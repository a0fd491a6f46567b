import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, promises as fs, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { findModel } from '../core/catalogue';
import { outputSize } from '../core/upscale';
import { benchImage, sharedDir } from './bench';
import { freePort } from './free-port';

/**
 * Peak memory of a huge output through the bridge (issue 8): 16x of a 1024² photo submitted to a
 * real `upbridge serve` process over loopback, its result downloaded as PNG (streamed from the
 * result file) and as raw pixels (decoded from it row batch by row batch), against the bound
 * "peak RSS under 1.5× the output's 8-bit size plus a constant". The server runs in its own
 * process, so its peak RSS (VmHWM in /proc/<pid>/status, Linux) is the server's alone: the client
 * here writes the PNG to disk and counts the raw bytes without keeping them.
 *
 * The constant is the server's RSS after a warm-up job (the model's session made, a full window
 * inferred): what the server holds whatever the output's size, as scripts/huge-output.ts measures
 * it for the CLI.
 */

const MiB = 2 ** 20;

export interface HugeBridgeOptions {
  size: number;
  scale: number;
  model: string;
  /** The photo, resized (Lanczos) to cover size×size and centre-cropped. */
  source: string;
}

/** The photo scripts/huge-output.ts measures the CLI with, where the checkout has it. */
export function hugeSource(): string {
  const barbara = path.join(sharedDir(), 'images', 'hr', 'CSet14_barbara.png');
  return existsSync(barbara) ? barbara : benchImage();
}

/** kB figures from /proc/<pid>/status, in MiB. */
function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status (Linux only)`);
  return Number(match[1]) / 1024;
}

interface Server {
  child: ChildProcess;
  port: number;
  token: string;
  stop(): Promise<void>;
}

/** `upbridge serve` in a child process, with its own config folder; paired with the code it prints. */
async function startServer(configDir: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [process.argv[1], 'serve', '--port', String(port)], {
    env: { ...process.env, UPBRIDGE_CONFIG_DIR: configDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const code = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => {
      out += text;
      const m = /pair with the code: (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (status) => reject(new Error(`upbridge serve exited (${status}) before listening: ${out}`)));
  });
  const paired = await call(port, 'POST', '/v1/pair', undefined, { body: Buffer.from(JSON.stringify({ code, name: 'bench' })), type: 'application/json' });
  if (paired.status !== 200) throw new Error(`pairing failed: ${paired.status} ${paired.text}`);
  return {
    child,
    port,
    token: JSON.parse(paired.text).token,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Body bytes received (the body itself is kept only when small, or written to `saveTo`). */
  bytes: number;
}

/** One request; bodies over 1 MiB are not kept (written to `saveTo` when given, else counted). */
function call(port: number, method: string, url: string, token?: string, options: { body?: Buffer; type?: string; saveTo?: string } = {}): Promise<Answer> {
  const headers: Record<string, string | number> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body) {
    headers['content-type'] = options.type ?? 'application/octet-stream';
    headers['content-length'] = options.body.length;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers, agent: false }, (res) => {
      const small: Buffer[] = [];
      let bytes = 0;
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(small).toString('utf8'), bytes });
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (bytes <= MiB) small.push(c);
      });
      if (options.saveTo && res.statusCode === 200) {
        small.length = 0;
        pipeline(res, createWriteStream(options.saveTo)).then(done, reject);
      } else {
        res.on('end', done);
        res.on('error', reject);
      }
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Polls the job until it ends; reports progress and the server's memory every 15 s. */
async function untilDone(server: Server, id: string, log: (line: string) => void): Promise<Record<string, any>> {
  const started = performance.now();
  let lastLog = 0;
  for (;;) {
    const answer = await call(server.port, 'GET', `/v1/jobs/${id}`, server.token);
    const status = JSON.parse(answer.text);
    if (['done', 'failed', 'cancelled'].includes(status.state)) return status;
    const now = performance.now();
    if (now - lastLog > 15000) {
      lastLog = now;
      const pid = server.child.pid!;
      log(`${status.progress.done}/${status.progress.total} tiles, ${((now - started) / 1000).toFixed(0)} s, server RSS ${procStatus(pid, 'VmRSS').toFixed(0)} MiB, peak ${procStatus(pid, 'VmHWM').toFixed(0)} MiB`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function submit(server: Server, png: Buffer, query: string): Promise<string> {
  const posted = await call(server.port, 'POST', `/v1/jobs?${query}`, server.token, { body: png, type: 'image/png' });
  if (posted.status !== 202) throw new Error(`submit failed: ${posted.status} ${posted.text}`);
  return JSON.parse(posted.text).id;
}

export async function runHugeBridgeBenchmark(options: HugeBridgeOptions, log: (line: string) => void = (line) => process.stderr.write(`bench-bridge-huge: ${line}\n`)) {
  const model = findModel(options.model);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-bench-huge-'));
  const server = await startServer(path.join(dir, 'config'));
  const pid = server.child.pid!;
  try {
    const photo = await sharp(options.source).resize(options.size, options.size, { fit: 'cover', kernel: 'lanczos3' }).removeAlpha().png().toBuffer();
    const listening = procStatus(pid, 'VmRSS');

    // Warm-up: the session made and a full window (tile + overlap) inferred; a result in memory.
    const warmSide = model.tile + 2 * model.overlap;
    const warmPng = await sharp(photo).resize(warmSide, warmSide, { fit: 'cover' }).png().toBuffer();
    const warm = await untilDone(server, await submit(server, warmPng, `model=${model.id}&scale=${model.scale}`), log);
    if (warm.state !== 'done') throw new Error(`warm-up job ${warm.state}: ${JSON.stringify(warm.error)}`);
    const constant = procStatus(pid, 'VmRSS');

    const started = performance.now();
    const id = await submit(server, photo, `model=${model.id}&scale=${options.scale}`);
    const status = await untilDone(server, id, log);
    if (status.state !== 'done') throw new Error(`job ${status.state}: ${JSON.stringify(status.error)}`);
    const seconds = (performance.now() - started) / 1000;
    const peakAfterJob = procStatus(pid, 'VmHWM');
    const out = outputSize(options.size, options.size, options.scale);
    const outputBytes = out.width * out.height * 3; // 8-bit RGB

    // The PNG, streamed from the result file, written to disk here; then the raw pixels, counted.
    const pngFile = path.join(dir, 'result.png');
    const pngStarted = performance.now();
    const png = await call(server.port, 'GET', `/v1/jobs/${id}/result?format=png`, server.token, { saveTo: pngFile });
    const pngSeconds = (performance.now() - pngStarted) / 1000;
    const header = await sharp(pngFile, { limitInputPixels: false }).metadata();
    if (png.status !== 200 || header.width !== out.width || header.height !== out.height || Number(png.headers['content-length']) !== png.bytes) {
      throw new Error(`PNG download: ${png.status}, ${header.width}×${header.height}, ${png.bytes} of ${png.headers['content-length']} bytes`);
    }
    const peakAfterPng = procStatus(pid, 'VmHWM');
    const rawStarted = performance.now();
    const raw = await call(server.port, 'GET', `/v1/jobs/${id}/result?format=raw`, server.token);
    const rawSeconds = (performance.now() - rawStarted) / 1000;
    if (raw.status !== 200 || raw.bytes !== outputBytes) throw new Error(`raw download: ${raw.status}, ${raw.bytes} of ${outputBytes} bytes`);
    const peak = procStatus(pid, 'VmHWM');
    await fs.rm(pngFile, { force: true });

    return {
      path: 'bridge: upbridge serve in its own process, PNG upload, result file, PNG then raw download',
      model: model.id,
      input: { width: options.size, height: options.size, source: path.basename(options.source) },
      output: { width: out.width, height: out.height, channels: 3, bytes8bit: outputBytes, MiB: round(outputBytes / MiB, 1), pngMiB: round(png.bytes / MiB, 1) },
      tiles: status.report?.tiles,
      passes: status.report?.passes,
      seconds: round(seconds, 1),
      downloadSeconds: { png: round(pngSeconds, 1), raw: round(rawSeconds, 1) },
      serverRss: {
        // Node, fastify, sharp, ORT loaded; no session yet.
        listeningMiB: Math.round(listening),
        // After the warm-up job: the "constant" of 1.5 × output + a constant.
        constantMiB: Math.round(constant),
        peakAfterJobMiB: Math.round(peakAfterJob),
        peakAfterPngMiB: Math.round(peakAfterPng),
        peakMiB: Math.round(peak),
        peakOverOutput: round((peak * MiB) / outputBytes, 3),
        peakAboveConstantOverOutput: round(((peak - constant) * MiB) / outputBytes, 3),
        limitMiB: Math.round((1.5 * outputBytes) / MiB + constant),
        withinLimit: peak * MiB < 1.5 * outputBytes + constant * MiB,
      },
      node: process.version,
      cpus: os.cpus().length,
    };
  } finally {
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Defaults: the case, on the fast model (16x of 1024² = two 4x passes, minutes on a CPU). */
export const HUGE_DEFAULTS = { size: 1024, scale: 16, model: 'realesr-general-x4v3' } as const;

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}
