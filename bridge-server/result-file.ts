import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { ModeReport, resultModel, stageOptions, UpscalePlan, resolveContent } from '../core/modes';
import { decodeImage, encodeImage, ImageMetadata } from '../core/node/image-io';
import { readPngRows } from '../core/node/png-stream';
import { STREAM_MIN_OUTPUT_PIXELS, upscaleToPngFile, whyNotStreamed } from '../core/node/upscale-stream';
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

/** Where results on disk go: one folder per server process, in the system's temporary folder. */
export function defaultResultDir(): string {
  return path.join(os.tmpdir(), `upbridge-results-${process.pid}`);
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
  dir = defaultResultDir(),
): Promise<{ resultFile: ResultFile; report: ModeReport }> {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`runJobToFile: job id ${JSON.stringify(id)} is not a plain name`);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const model = resultModel(input.plan, input.content.content);
  const runner = await runnerFor(model.id);
  const file = path.join(dir, `${id}.png`);
  const result = await upscaleToPngFile(file, input.raster, runner, model.scale, { ...stageOptions(input.plan, model), signal, onProgress }, input.metadata);
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
  if (format === 'png') {
    return reply.header('content-type', 'image/png').header('content-length', file.bytes).send(createReadStream(file.path));
  }
  if (format === 'raw') {
    const bytesPerSample = file.depth / 8;
    async function* pixels(): AsyncGenerator<Buffer> {
      for await (const rows of readPngRows(file.path)) yield Buffer.from(rows.data.buffer, rows.data.byteOffset, rows.data.byteLength);
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
  const { raster } = await decodeImage(await fs.readFile(file.path), 'result', file.width * file.height);
  const { bytes } = await encodeImage(raster, format, metadata);
  return reply.header('content-type', `image/${format}`).send(bytes);
}

/** Deletes a result's file (when it expires, or the job record goes). */
export async function removeResultFile(file: ResultFile): Promise<void> {
  await fs.rm(file.path, { force: true });
}
