/**
 * Results kept on disk, through the bridge over real HTTP on loopback (bridge-server/result-file.ts
 * wired into the queue and the result route): a huge single-model output is written as a PNG while
 * it is made, served from the file, and removed when it expires, when the disk budget is spent and
 * when the server closes. Real ONNX Runtime and sharp; small images, with the "huge" threshold
 * lowered to one pixel so every streamable job goes to disk.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_LIMITS } from '../../bridge-server/config';
import { sweepStaleResultDirs } from '../../bridge-server/result-file';
import { planUpscale } from '../../core/modes';
import { readImage } from '../../core/node/image-io';
import { upscaleFileStreaming } from '../../core/node/upscale-stream';
import { syntheticRaster } from '../helpers';
import { expectError, FAST_MODEL, GatedEngine, jobsPath, rawBody, request, ROOT, startBridge, TestBridge, waitFor, waitForStatus } from './bridge-harness';

const runFile = promisify(execFile);
const BIN = path.join(ROOT, 'bin', 'upbridge.js');
const PNG = { 'content-type': 'image/png' };
const RAW = { 'content-type': 'application/octet-stream' };
/**
 * 16x as two 4x passes, small tiles so each pass has several: the 16x of a 1024² photo in
 * miniature. Tile and overlap both given, so no path picks its own tiling.
 */
const JOB = { model: FAST_MODEL, scale: 16, tile: 16, overlap: 8 };

const waitDone = (bridge: TestBridge, id: string) => waitForStatus(bridge, id, (s) => ['done', 'failed', 'cancelled'].includes(s.state), `job ${id} to finish`, 60000);

async function submit(bridge: TestBridge, body: Buffer, query: Record<string, string | number> = JOB, headers = PNG): Promise<string> {
  const res = await request(bridge.port, jobsPath(query), { method: 'POST', headers, body, token: bridge.token });
  expect(res.status).toBe(202);
  return res.json().id as string;
}

/** Files in the server's results folder (none when the folder is not there). */
const filesIn = async (dir: string) => (await fs.readdir(dir).catch(() => [] as string[])).sort();

async function pixels(png: Buffer | string) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

let tmp: string;
let input: Buffer;
let inputFile: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-http-result-file-'));
  const r = syntheticRaster(23, 17, 3, 8);
  input = await sharp(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength), { raw: { width: 23, height: 17, channels: 3 } }).withMetadata({ density: 144 }).png().toBuffer();
  inputFile = path.join(tmp, 'input.png');
  await fs.writeFile(inputFile, input);
});
afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

describe('huge results kept on disk, through the bridge', () => {
  let onDisk: TestBridge;
  let inMemory: TestBridge;
  beforeAll(async () => {
    onDisk = await startBridge({ resultFileMinPixels: 1 });
    inMemory = await startBridge();
  });
  afterAll(async () => {
    await onDisk?.close();
    await inMemory?.close();
  });

  test('the PNG is the one the CLI streams, byte for byte; its pixels and the raw download equal the in-memory path and the CLI', async () => {
    const id = await submit(onDisk, input);
    const done = await waitDone(onDisk, id);
    expect(done).toMatchObject({ state: 'done', scale: 16, result: { available: true, expired: false, width: 368, height: 272, map: false } });
    expect(done.report).toMatchObject({ models: { result: FAST_MODEL }, passes: 2, consistent: false });
    expect(await filesIn(onDisk.resultDir)).toEqual([expect.stringMatching(/^[0-9a-f-]{36}\.png$/)]);

    // The CLI's streaming branch (what `upbridge upscale` runs for a huge PNG), on the same file.
    const cliStreamed = path.join(tmp, 'cli-streamed.png');
    const cliReport = await upscaleFileStreaming({ input: inputFile, output: cliStreamed, ...JOB }, planUpscale(JOB), await readImage(inputFile));
    expect(done.report).toEqual(JSON.parse(JSON.stringify({ content: cliReport.content, contentDetected: cliReport.contentDetected, consistent: cliReport.consistent, models: cliReport.models, lrPsnr: cliReport.lrPsnr, tiles: cliReport.tiles, passes: cliReport.passes })));

    const png = await request(onDisk.port, `/v1/jobs/${id}/result`, { token: onDisk.token });
    expect(png.status).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(png.headers['content-length']).toBe(String(png.body.length));
    expect(png.body.equals(await fs.readFile(cliStreamed))).toBe(true);
    expect((await sharp(png.body).metadata()).density).toBe(144);

    // The usual path: the same job on a bridge that keeps results in memory (sharp encodes the
    // PNG, so the bytes differ), and the CLI binary (output below its streaming threshold).
    const memoryId = await submit(inMemory, input);
    expect((await waitDone(inMemory, memoryId)).report).toEqual(done.report);
    const memoryPng = await request(inMemory.port, `/v1/jobs/${memoryId}/result`, { token: inMemory.token });
    const cliFile = path.join(tmp, 'cli.png');
    await runFile(process.execPath, [BIN, 'upscale', inputFile, '-o', cliFile, '--model', FAST_MODEL, '--scale', '16', '--tile', '16', '--overlap', '8'], { env: process.env });
    const ours = await pixels(png.body);
    expect(ours).toMatchObject({ width: 368, height: 272, channels: 3 });
    expect((await pixels(memoryPng.body)).data.equals(ours.data)).toBe(true);
    expect((await pixels(cliFile)).data.equals(ours.data)).toBe(true);

    // Raw, decoded from the file row batch by row batch: the in-memory bridge's raw bytes.
    const raw = await request(onDisk.port, `/v1/jobs/${id}/result?format=raw`, { token: onDisk.token });
    const memoryRaw = await request(inMemory.port, `/v1/jobs/${memoryId}/result?format=raw`, { token: inMemory.token });
    expect(raw.status).toBe(200);
    expect(raw.headers).toMatchObject({ 'content-type': 'application/octet-stream', 'content-length': String(368 * 272 * 3), 'x-upbridge-width': '368', 'x-upbridge-height': '272', 'x-upbridge-channels': '3', 'x-upbridge-depth': '8' });
    expect(raw.body.equals(memoryRaw.body)).toBe(true);
    expect(raw.body.equals(ours.data)).toBe(true);

    // Other formats are encoded from the file: the same bytes the in-memory path answers.
    const tiff = await request(onDisk.port, `/v1/jobs/${id}/result?format=tiff`, { token: onDisk.token });
    const memoryTiff = await request(inMemory.port, `/v1/jobs/${memoryId}/result?format=tiff`, { token: inMemory.token });
    expect(tiff.headers['content-type']).toBe('image/tiff');
    expect(tiff.body.equals(memoryTiff.body)).toBe(true);
  });

  test('without tile and overlap: the autotuned tiling is the CLI streaming branch\'s, so is the PNG', async () => {
    // Wider than the model's default tile (256), so the tuned tiling and the default one differ.
    const r = syntheticRaster(300, 40, 3, 8);
    const wide = await sharp(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength), { raw: { width: 300, height: 40, channels: 3 } }).png().toBuffer();
    const wideFile = path.join(tmp, 'wide.png');
    await fs.writeFile(wideFile, wide);
    const plain = { model: FAST_MODEL, scale: 4 };
    const id = await submit(onDisk, wide, plain);
    expect((await waitDone(onDisk, id)).state).toBe('done');
    const cliStreamed = path.join(tmp, 'cli-streamed-tuned.png');
    await upscaleFileStreaming({ input: wideFile, output: cliStreamed, ...plain }, planUpscale(plain), await readImage(wideFile));
    const png = await request(onDisk.port, `/v1/jobs/${id}/result`, { token: onDisk.token });
    expect(png.body.equals(await fs.readFile(cliStreamed))).toBe(true);
  });

  test('raw 16-bit RGBA with wait=true: answered from the file, equal to the in-memory answer', async () => {
    const r = syntheticRaster(13, 11, 4, 16);
    const query = { ...JOB, scale: 4, width: 13, height: 11, channels: 4, depth: 16, wait: 'true' };
    const [file, memory] = await Promise.all(
      [onDisk, inMemory].map((b) => request(b.port, jobsPath(query), { method: 'POST', headers: RAW, body: rawBody(r.data), token: b.token })),
    );
    expect(file.status).toBe(200);
    expect(file.headers).toMatchObject({ 'content-length': String(52 * 44 * 4 * 2), 'x-upbridge-depth': '16', 'x-upbridge-channels': '4' });
    expect(file.body.equals(memory.body)).toBe(true);
  });

  test('plans that need the whole result (a mode, TTA) keep it in memory', async () => {
    const id = await submit(onDisk, input, { model: FAST_MODEL, scale: 4, tta: 4 });
    const before = await filesIn(onDisk.resultDir);
    expect((await waitDone(onDisk, id)).state).toBe('done');
    expect(await filesIn(onDisk.resultDir)).toEqual(before);
    expect((await request(onDisk.port, `/v1/jobs/${id}/result`, { token: onDisk.token })).status).toBe(200);
  });
});

describe('result files go away', () => {
  test('when the result expires: the file is deleted and the result route answers 410', async () => {
    const bridge = await startBridge({ resultFileMinPixels: 1, resultTtlMs: 1500 });
    try {
      const id = await submit(bridge, input, { ...JOB, scale: 4 });
      await waitDone(bridge, id);
      expect(await filesIn(bridge.resultDir)).toHaveLength(1);
      const expired = await waitForStatus(bridge, id, (s) => s.result.expired, 'the result to expire', 10000);
      expect(expired).toMatchObject({ state: 'done', result: { available: false, expired: true } });
      await waitFor(async () => (await filesIn(bridge.resultDir)).length === 0, 'the file to be deleted');
      expectError(await request(bridge.port, `/v1/jobs/${id}/result?format=raw`, { token: bridge.token }), 410, 'UPB_RESULT_EXPIRED');
    } finally {
      await bridge.close();
    }
  });

  test('when the job is cancelled (DELETE) while it writes: no file, whole or partial, is left', async () => {
    const engine = new GatedEngine();
    const bridge = await startBridge({ resultFileMinPixels: 1, engine });
    try {
      engine.close();
      const id = await submit(bridge, input);
      engine.allow(3);
      await engine.waitHeld(1);
      // The PNG is being written under a temporary name while the job runs.
      expect(await filesIn(bridge.resultDir)).toEqual([expect.stringMatching(/^\..+\.tmp$/)]);
      const del = await request(bridge.port, `/v1/jobs/${id}`, { method: 'DELETE', token: bridge.token });
      expect(del.status).toBe(200);
      engine.open();
      expect((await waitDone(bridge, id)).state).toBe('cancelled');
      await waitFor(async () => (await filesIn(bridge.resultDir)).length === 0, 'the partial file to be deleted');
    } finally {
      engine.open();
      await bridge.close();
    }
  });

  test('when the disk budget is spent: the oldest file goes, in-memory results are not touched', async () => {
    const bridge = await startBridge({ resultFileMinPixels: 1, resultFileBudgetBytes: 1 });
    try {
      const inMemoryId = await submit(bridge, input, { model: FAST_MODEL, scale: 4, tta: 4 });
      const first = await submit(bridge, input, { ...JOB, scale: 4 });
      const second = await submit(bridge, input, { ...JOB, scale: 4 });
      await waitDone(bridge, second);
      const states = await Promise.all([inMemoryId, first, second].map(async (id) => (await request(bridge.port, `/v1/jobs/${id}`, { token: bridge.token })).json().result));
      expect(states.map((r) => [r.available, r.expired])).toEqual([
        [true, false],
        [false, true],
        [true, false],
      ]);
      await waitFor(async () => (await filesIn(bridge.resultDir)).length === 1, 'one file left');
      expect((await request(bridge.port, `/v1/jobs/${second}/result`, { token: bridge.token })).status).toBe(200);
    } finally {
      await bridge.close();
    }
  });

  test('when the server closes: the results folder is removed', async () => {
    const bridge = await startBridge({ resultFileMinPixels: 1 });
    const id = await submit(bridge, input, { ...JOB, scale: 4 });
    await waitDone(bridge, id);
    expect(await filesIn(bridge.resultDir)).toHaveLength(1);
    await bridge.close();
    await expect(fs.stat(bridge.resultDir)).rejects.toThrow(/ENOENT/);
  });
});

test('serve sweeps results folders of servers that died without closing, never a live one', async () => {
  const parent = await fs.mkdtemp(path.join(tmp, 'sweep-'));
  // A process that has exited: its id names no live process (ids are not reused this soon).
  const gone = await new Promise<number>((resolve) => {
    const child = execFile(process.execPath, ['-e', '']);
    child.once('exit', () => resolve(child.pid!));
  });
  for (const name of [`upbridge-results-${gone}-0a1b2c3d`, `upbridge-results-${process.pid}-0a1b2c3d`, 'upbridge-results-x', 'other']) {
    await fs.mkdir(path.join(parent, name));
    await fs.writeFile(path.join(parent, name, 'r.png'), 'x');
  }
  expect(await sweepStaleResultDirs(parent)).toEqual([`upbridge-results-${gone}-0a1b2c3d`]);
  expect(await filesIn(parent)).toEqual(['other', `upbridge-results-${process.pid}-0a1b2c3d`, 'upbridge-results-x'].sort());
});

describe('output limit: 16x of 1024² is allowed, beyond it a 413 naming the limit', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await startBridge();
  });
  afterAll(() => bridge?.close());

  test('the default allows 16384² exactly', () => {
    expect(DEFAULT_LIMITS).toMatchObject({ maxOutputSide: 16384, maxOutputPixels: 16384 * 16384 });
  });

  // Raw descriptors are checked before the body is read: a wrong Content-Length after the size
  // check passed is a 400 about the body, so no 12-minute job has to run to show it is accepted.
  const head = (width: number, height: number) =>
    request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 16, width, height, channels: 3, depth: 8 }), { method: 'POST', headers: { ...RAW, 'content-length': 3 }, body: Buffer.alloc(3), token: bridge.token });

  test('1024×1024 at 16x passes the size check', async () => {
    const error = expectError(await head(1024, 1024), 400, 'UPB_INVALID_OPTION');
    expect(error.message).toMatch(/raw body must be .* = 3145728 bytes/);
  });

  test('1025×1024 at 16x is refused with the allowed range in the message', async () => {
    const error = expectError(await head(1025, 1024), 413, 'UPB_TOO_LARGE');
    expect(error.message).toBe('output would be 16400×16384; at most 16384 px a side and 268435456 pixels are allowed (largest scale that fits: 15.9)');
  });

  test('over the pixel count with each side allowed', async () => {
    const wide = await startBridge({ limits: { maxOutputSide: 20000 } });
    try {
      const res = await request(wide.port, jobsPath({ model: FAST_MODEL, scale: 16, width: 1025, height: 1024, channels: 3, depth: 8 }), { method: 'POST', headers: { ...RAW, 'content-length': 3 }, body: Buffer.alloc(3), token: wide.token });
      expect(expectError(res, 413, 'UPB_TOO_LARGE').message).toMatch(/^output would be 16400×16384; at most 20000 px a side and 268435456 pixels are allowed/);
    } finally {
      await wide.close();
    }
  });
});
