import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { throwIfCancelled, UpbridgeError } from '../core/errors';
import { ModeReport, resultModel, tunedStageOptions, UpscalePlan, resolveContent } from '../core/modes';
import { decodeImage, encodeImage, ImageMetadata } from '../core/node/image-io';
import { readPngRows } from '../core/node/png-stream';
import { STREAM_MIN_OUTPUT_PIXELS, streamingTileBudget, upscaleToPngFile, whyNotStreamed } from '../core/node/upscale-stream';
import { BitDepth, ChannelCount, Raster } from '../core/raster';
import { InferenceRunner } from '../core/session';
import { outputSize } from '../core/upscale';
import { RAW_CONTENT_TYPE, TransferFormat } from './job-input';

/**
 * Results too large to hold (16x of a 1024² photo: 805 MB of pixels), kept on disk instead.
 *
 * The job's last model pass writes its rows straight into a PNG in the results folder
 * (core/node/upscale-stream.ts), renamed into place only when complete; the result route then
 * serves that file: PNG as it is (streamed from disk), raw pixels decoded row batch by row batch
 * (readPngRows), so neither the job nor the download holds the image. JPEG, WebP and TIFF are made
 * from the file on request the usual way (decoded whole, then encodeImage), so their bytes equal
 * what the CLI writes; that conversion holds the image while it runs.
 *
 * The PNG is the one the CLI writes for the same request (same writer, same metadata), byte for
 * byte. Which jobs: those upscale-stream would stream (no mode, map, consistency or TTA) with an
 * output from STREAM_MIN_OUTPUT_PIXELS on; the rest keep their result in memory as before.
 */

export interface ResultFile {
  path: string;
  width: number;
  height: number;
  channels: ChannelCount;
  depth: BitDepth;
  /** The file's size on disk. */
  bytes: number;
}

const DIR_PREFIX = 'upbridge-results-';

/**
 * A new folder name for one server's results on disk, in the system's temporary folder: the
 * process id (so a later server can tell a crashed one's folder: sweepStaleResultDirs) and a
 * random part (so two servers in one process never share one). Created on first use.
 */
export function newResultDir(): string {
  return path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Removes the results folders of servers that are gone (killed, crashed: no close removed them),
 * so huge PNGs do not pile up in the temporary folder. Folders of live processes are left alone.
 */
export async function sweepStaleResultDirs(tmp = os.tmpdir()): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
    const pid = Number(/^upbridge-results-(\d+)(-[0-9a-f]+)?$/.exec(name)?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    await fs.rm(path.join(tmp, name), { recursive: true, force: true }).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user; only ESRCH says it is gone.
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether a job's result should go to disk rather than memory. */
export function resultGoesToFile(plan: UpscalePlan, input: { width: number; height: number }, minOutputPixels = STREAM_MIN_OUTPUT_PIXELS): boolean {
  const out = outputSize(input.width, input.height, plan.scale);
  return out.width * out.height >= minOutputPixels && whyNotStreamed(plan, 'png') === undefined;
}

export interface FileJobInput {
  plan: UpscalePlan;
  content: ReturnType<typeof resolveContent>;
  raster: Raster;
  metadata: ImageMetadata;
}

/**
 * Runs a job whose result goes to disk: the plan's one model, rows streamed into `<dir>/<id>.png`.
 * The report is the one runUpscalePlan gives for the same plan (LR-PSNR computed from the rows).
 */
export async function runJobToFile(
  id: string,
  input: FileJobInput,
  runnerFor: (modelId: string) => Promise<InferenceRunner>,
  signal: AbortSignal,
  onProgress: (p: { done: number; total: number }) => void,
  dir = newResultDir(),
): Promise<{ resultFile: ResultFile; report: ModeReport }> {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`runJobToFile: job id ${JSON.stringify(id)} is not a plain name`);
  // A job cancelled before it starts (the server closing) must not create the folder again.
  throwIfCancelled(signal);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const model = resultModel(input.plan, input.content.content);
  const runner = await runnerFor(model.id);
  const file = path.join(dir, `${id}.png`);
  // The tiling the CLI's streaming branch picks for the same request (upscaleFileStreaming): the
  // same autotuned tile and overlap within the same budget, so the PNG is the CLI's byte for byte.
  const out = outputSize(input.raster.width, input.raster.height, input.plan.scale);
  const tiling = await tunedStageOptions(input.plan, model, runner, input.raster, signal, streamingTileBudget(out.width * out.height * input.raster.channels));
  const result = await upscaleToPngFile(file, input.raster, runner, model.scale, { ...tiling, signal, onProgress }, input.metadata);
  const { size } = await fs.stat(file);
  return {
    resultFile: { path: file, width: result.width, height: result.height, channels: result.channels, depth: result.depth, bytes: size },
    report: {
      content: input.content.content,
      contentDetected: input.content.detected,
      consistent: input.plan.consistent,
      models: { result: model.id },
      lrPsnr: result.lrPsnr,
      tiles: result.tiles,
      passes: result.passes,
    },
  };
}

/** Answers a result request from the file: PNG and raw streamed from disk, other formats encoded. */
export async function sendResultFile(reply: FastifyReply, file: ResultFile, format: TransferFormat, metadata: Partial<ImageMetadata>): Promise<FastifyReply> {
  // Opened before answering: a file that expired a moment ago is a 410, not a broken download;
  // once open, its deletion does not cut the download short (POSIX keeps the data until closed).
  const handle = await fs.open(file.path, 'r').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') throw new UpbridgeError('UPB_RESULT_EXPIRED', 'the result was dropped after the retention time; submit it again');
    throw e;
  });
  if (format === 'png') {
    return reply.header('content-type', 'image/png').header('content-length', file.bytes).send(handle.createReadStream());
  }
  if (format === 'raw') {
    const bytesPerSample = file.depth / 8;
    // From the handle opened above, not the path: the result may expire while it streams. Closed
    // when the rows end, or when the client goes before the first one (a generator never started
    // skips its finally).
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= handle.close().catch(() => undefined));
    reply.raw.once('close', close);
    async function* pixels(): AsyncGenerator<Buffer> {
      try {
        for await (const rows of readPngRows(handle)) yield Buffer.from(rows.data.buffer, rows.data.byteOffset, rows.data.byteLength);
      } finally {
        await close();
      }
    }
    return reply
      .header('content-type', RAW_CONTENT_TYPE)
      .header('content-length', file.width * file.height * file.channels * bytesPerSample)
      .header('x-upbridge-width', file.width)
      .header('x-upbridge-height', file.height)
      .header('x-upbridge-channels', file.channels)
      .header('x-upbridge-depth', file.depth)
      .send(Readable.from(pixels()));
  }
  // Our own file, as large as the job made it: its own pixel count is the limit.
  const png = await handle.readFile().finally(() => handle.close());
  const { raster } = await decodeImage(png, 'result', file.width * file.height);
  const { bytes } = await encodeImage(raster, format, metadata);
  return reply.header('content-type', `image/${format}`).send(bytes);
}

/** Deletes a result's file (when it expires, or the job record goes). */
export async function removeResultFile(file: ResultFile): Promise<void> {
  await fs.rm(file.path, { force: true });
}
