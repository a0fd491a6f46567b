import { once } from 'node:events';
import { createWriteStream, promises as fs } from 'node:fs';
import { pipeline as pipelineCallback, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { UpbridgeError } from '../errors';
import { pngChunk } from '../png-chunk';
import { BitDepth, ChannelCount, Raster } from '../raster';
import { addPngMetadata, PngMetadata } from './png-metadata';
import { tempFileBeside } from './temp-files';

/**
 * A PNG encoder that takes rows as they come and writes them to disk, for outputs too large to
 * hold (16x of a 1024² photo: 805 MB of 8-bit RGB).
 *
 * Why not sharp: sharp accepts a readable stream as input, but collects every chunk and
 * concatenates them before libvips sees a pixel (lib/input.js `_write`, `_flattenBufferIn`).
 * Measured: piping 48 MiB of raw RGB rows into `sharp({raw}).png().toFile()` raised peak RSS by
 * 99 MiB, twice the image. So PNG's own structure is written here (signature, IHDR, the input's
 * metadata chunks, IDATs, IEND), with node:zlib's deflate stream (zlib itself, run off the main
 * thread) doing the compression and core/png-chunk.ts the framing. The file is written under a
 * temporary name in the destination's folder and renamed into place by finish(), as
 * writeFileAtomic does: nobody ever sees half a PNG.
 */

export interface PngShape {
  width: number;
  height: number;
  channels: ChannelCount;
  depth: BitDepth;
}

export interface PngStreamOptions {
  /** ICC profile, EXIF and density, written as png-metadata.ts writes them; XMP as an iTXt chunk. */
  metadata?: PngMetadata & { xmp?: string };
  /** zlib level 0–9; 6 as sharp's PNG default. */
  compressionLevel?: number;
}

const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
/** PNG colour types by channel count: grey, grey+alpha, RGB, RGBA. */
const COLOUR_TYPE: Record<ChannelCount, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };
/** Deflate output per IDAT chunk (libpng writes 8 KiB; larger chunks cost less framing). */
const IDAT_BYTES = 256 << 10;

function ihdr(shape: PngShape): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, shape.width, false);
  view.setUint32(4, shape.height, false);
  data[8] = shape.depth;
  data[9] = COLOUR_TYPE[shape.channels];
  // compression 0 (deflate), filter method 0 (adaptive, five filter types), interlace 0 (none)
  return pngChunk('IHDR', data);
}

/** XMP as libvips and Adobe write it into PNG: iTXt, keyword "XML:com.adobe.xmp", uncompressed. */
function xmpChunk(xmp: string): Uint8Array {
  const keyword = new TextEncoder().encode('XML:com.adobe.xmp');
  const text = new TextEncoder().encode(xmp);
  // keyword, NUL, compression flag 0, method 0, empty language tag + NUL, empty translated keyword + NUL
  const data = new Uint8Array(keyword.length + 5 + text.length);
  data.set(keyword);
  data.set(text, keyword.length + 5);
  return pngChunk('iTXt', data);
}

/**
 * Everything before the first IDAT. The metadata chunks come from png-metadata.ts itself: it is
 * given a PNG of just IHDR, an empty IDAT and IEND, inserts its chunks before the IDAT, and the
 * last two chunks (12 bytes each, no data) are cut off again.
 */
export function pngHeader(shape: PngShape, metadata: PngStreamOptions['metadata'] = {}): Uint8Array {
  const empty = new Uint8Array(0);
  const parts = [PNG_SIGNATURE, ihdr(shape), ...(metadata.xmp ? [xmpChunk(metadata.xmp)] : []), pngChunk('IDAT', empty), pngChunk('IEND', empty)];
  const bare = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    bare.set(part, offset);
    offset += part.length;
  }
  const withMetadata = addPngMetadata(bare, metadata);
  return withMetadata.subarray(0, withMetadata.length - 24);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Filters one scanline into `out` (filter byte first), choosing per row the filter with the least
 * sum of absolute signed residuals: libpng's heuristic, which sharp enables with adaptiveFiltering.
 */
function filterRow(cur: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): void {
  const n = cur.length;
  let sNone = 0;
  let sSub = 0;
  let sUp = 0;
  let sAvg = 0;
  let sPaeth = 0;
  const cost = (v: number) => (v < 128 ? v : 256 - v);
  for (let i = 0; i < n; i++) {
    const x = cur[i];
    const a = i >= bpp ? cur[i - bpp] : 0;
    const b = prev[i];
    const c = i >= bpp ? prev[i - bpp] : 0;
    sNone += cost(x);
    sSub += cost((x - a) & 255);
    sUp += cost((x - b) & 255);
    sAvg += cost((x - ((a + b) >> 1)) & 255);
    sPaeth += cost((x - paeth(a, b, c)) & 255);
  }
  const sums = [sNone, sSub, sUp, sAvg, sPaeth];
  let type = 0;
  for (let t = 1; t < 5; t++) if (sums[t] < sums[type]) type = t;
  out[0] = type;
  for (let i = 0; i < n; i++) {
    const x = cur[i];
    const a = i >= bpp ? cur[i - bpp] : 0;
    const b = prev[i];
    const predicted = type === 0 ? 0 : type === 1 ? a : type === 2 ? b : type === 3 ? (a + b) >> 1 : paeth(a, b, i >= bpp ? prev[i - bpp] : 0);
    out[1 + i] = (x - predicted) & 255;
  }
}

export class PngRowWriter {
  private readonly deflate: zlib.Deflate;
  private readonly done: Promise<void>;
  private failure: unknown;
  private rowsWritten = 0;
  private closed = false;
  private readonly rowBytes: number;
  private readonly bpp: number;
  private previous: Uint8Array;
  private current: Uint8Array;

  private constructor(
    readonly destination: string,
    readonly temp: string,
    readonly shape: PngShape,
    file: NodeJS.WritableStream,
    header: Uint8Array,
    level: number,
    private readonly forget: () => void,
  ) {
    this.bpp = shape.channels * (shape.depth / 8);
    this.rowBytes = shape.width * this.bpp;
    this.previous = new Uint8Array(this.rowBytes);
    this.current = new Uint8Array(this.rowBytes);
    this.deflate = zlib.createDeflate({ level, chunkSize: IDAT_BYTES });
    const framer = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => callback(null, pngChunk('IDAT', chunk)),
      flush: (callback) => callback(null, pngChunk('IEND', new Uint8Array(0))),
    });
    framer.push(header);
    this.done = pipeline(this.deflate, framer, file);
    // Remembered here, rethrown by write() and finish(): a failed disk must not be an unhandled rejection.
    this.done.catch((e: unknown) => {
      this.failure = e;
    });
  }

  /** Creates the temporary file beside `destination`; rows go to write(), then finish() or abort(). */
  static async open(destination: string, shape: PngShape, options: PngStreamOptions = {}): Promise<PngRowWriter> {
    if (!(shape.width >= 1 && shape.height >= 1 && shape.width < 2 ** 31 && shape.height < 2 ** 31)) {
      throw new UpbridgeError('UPB_INTERNAL', `a PNG cannot be ${shape.width}×${shape.height}`);
    }
    const header = pngHeader(shape, options.metadata);
    const { temp, forget } = tempFileBeside(destination);
    const file = createWriteStream(temp, { flags: 'wx' });
    try {
      await once(file, 'open');
    } catch (e) {
      forget();
      throw e;
    }
    return new PngRowWriter(destination, temp, shape, file, header, options.compressionLevel ?? 6, forget);
  }

  /** The next rows, in order: a raster of the PNG's width, channels and depth. */
  async write(rows: Raster): Promise<void> {
    if (this.failure) throw this.failure;
    const { width, channels, depth } = this.shape;
    if (this.closed) throw new UpbridgeError('UPB_INTERNAL', 'PngRowWriter: write after finish or abort');
    if (rows.width !== width || rows.channels !== channels || rows.depth !== depth) {
      throw new UpbridgeError('UPB_INTERNAL', `PngRowWriter: rows ${rows.width}×${rows.channels}ch×${rows.depth}-bit for a ${width}×${channels}ch×${depth}-bit PNG`);
    }
    if (this.rowsWritten + rows.height > this.shape.height) throw new UpbridgeError('UPB_INTERNAL', `PngRowWriter: more than ${this.shape.height} rows`);
    const samples = width * channels;
    const filtered = Buffer.allocUnsafe(rows.height * (1 + this.rowBytes));
    for (let y = 0; y < rows.height; y++) {
      const row = rows.data.subarray(y * samples, (y + 1) * samples);
      if (depth === 8) this.current.set(row);
      else for (let i = 0; i < samples; i++) {
        // PNG stores 16-bit samples big-endian.
        this.current[2 * i] = row[i] >> 8;
        this.current[2 * i + 1] = row[i] & 255;
      }
      filterRow(this.current, this.previous, this.bpp, filtered.subarray(y * (1 + this.rowBytes), (y + 1) * (1 + this.rowBytes)));
      [this.previous, this.current] = [this.current, this.previous];
    }
    this.rowsWritten += rows.height;
    if (!this.deflate.write(filtered)) await Promise.race([once(this.deflate, 'drain'), this.done]);
    if (this.failure) throw this.failure;
  }

  /** Ends the PNG, waits for the disk, and renames it into place. */
  async finish(): Promise<void> {
    if (this.rowsWritten !== this.shape.height) {
      await this.abort();
      throw new UpbridgeError('UPB_INTERNAL', `PngRowWriter: finished after ${this.rowsWritten} of ${this.shape.height} rows`);
    }
    this.closed = true;
    this.deflate.end();
    try {
      await this.done;
      await fs.rename(this.temp, this.destination);
    } catch (e) {
      await fs.rm(this.temp, { force: true });
      throw e;
    } finally {
      this.forget();
    }
  }

  /** Stops and deletes the temporary file; the destination is left as it was. */
  async abort(): Promise<void> {
    this.closed = true;
    this.deflate.destroy(new Error('aborted'));
    await this.done.catch(() => undefined);
    await fs.rm(this.temp, { force: true });
    this.forget();
  }
}

const COLOUR_TYPE_CHANNELS: Record<number, ChannelCount> = { 0: 1, 4: 2, 2: 3, 6: 4 };
/** Compressed bytes read from the file at a time. */
const READ_BYTES = 1 << 20;

/** The shape in a PNG file's IHDR. */
export async function readPngShape(file: string): Promise<PngShape> {
  const fh = await fs.open(file, 'r');
  try {
    return (await readHeader(fh)).shape;
  } finally {
    await fh.close();
  }
}

async function readHeader(fh: fs.FileHandle): Promise<{ shape: PngShape; next: number }> {
  const head = Buffer.alloc(8 + 8 + 13);
  await fh.read(head, 0, head.length, 0);
  if (!PNG_SIGNATURE.every((v, i) => head[i] === v) || head.toString('latin1', 12, 16) !== 'IHDR') throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', 'not a PNG');
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  const depth = head[24];
  const channels = COLOUR_TYPE_CHANNELS[head[25]];
  if ((depth !== 8 && depth !== 16) || !channels || head[28] !== 0) {
    throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `PNG rows are read here only at 8 or 16 bits, grey/RGB with or without alpha, not interlaced (got depth ${depth}, colour type ${head[25]}, interlace ${head[28]})`);
  }
  return { shape: { width, height, channels, depth }, next: 8 + 12 + 13 };
}

/** The IDAT data of a PNG, in pieces, read as it is consumed. */
async function* idatData(fh: fs.FileHandle, from: number): AsyncGenerator<Buffer> {
  const head = Buffer.alloc(8);
  for (let at = from; ; ) {
    const { bytesRead } = await fh.read(head, 0, 8, at);
    if (bytesRead < 8) throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', 'PNG ends before IEND');
    const length = head.readUInt32BE(0);
    const type = head.toString('latin1', 4, 8);
    if (type === 'IEND') return;
    if (type === 'IDAT') {
      for (let done = 0; done < length; ) {
        const piece = Buffer.alloc(Math.min(READ_BYTES, length - done));
        const got = (await fh.read(piece, 0, piece.length, at + 8 + done)).bytesRead;
        if (got === 0) throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', 'PNG ends inside an IDAT chunk');
        done += got;
        yield piece.subarray(0, got);
      }
    }
    at += 12 + length;
  }
}

function unfilterRow(type: number, cur: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = cur.length;
  switch (type) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) cur[i] = (cur[i] + cur[i - bpp]) & 255;
      return;
    case 2:
      for (let i = 0; i < n; i++) cur[i] = (cur[i] + prev[i]) & 255;
      return;
    case 3:
      for (let i = 0; i < n; i++) cur[i] = (cur[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1)) & 255;
      return;
    case 4:
      for (let i = 0; i < n; i++) cur[i] = (cur[i] + paeth(i >= bpp ? cur[i - bpp] : 0, prev[i], i >= bpp ? prev[i - bpp] : 0)) & 255;
      return;
    default:
      throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `PNG row filter ${type} does not exist`);
  }
}

/**
 * The rows of a PNG (as PngRowWriter writes them: 8/16-bit, not interlaced), in batches of about
 * `batchBytes`, as rasters (16-bit samples in the platform's order, as Raster holds them). Memory:
 * one batch and zlib's window, whatever the image's size; this is how a result kept on disk is
 * sent as raw pixels (sharp's raw output is one buffer of the whole image).
 */
export async function* readPngRows(file: string | fs.FileHandle, batchBytes = 8 << 20): AsyncGenerator<Raster> {
  // A handle given stays the caller's to close: one kept open while the file may be deleted.
  const fh = typeof file === 'string' ? await fs.open(file, 'r') : file;
  try {
    const { shape, next } = await readHeader(fh);
    const { width, height, channels, depth } = shape;
    const bpp = channels * (depth / 8);
    const rowBytes = width * bpp;
    const batchRows = Math.max(1, Math.min(height, Math.floor(batchBytes / rowBytes)));
    const inflated = pipelineCallback(Readable.from(idatData(fh, next)), zlib.createInflate(), () => undefined);
    let prev = new Uint8Array(rowBytes);
    let cur = new Uint8Array(rowBytes);
    let filled = -1; // bytes of the current scanline so far; -1: its filter byte is next
    let filter = 0;
    let y = 0;
    let batch = new Uint8Array(batchRows * rowBytes);
    let inBatch = 0;
    const emit = (rows: number): Raster => {
      const bytes = batch.subarray(0, rows * rowBytes);
      let data: Uint8Array | Uint16Array = bytes;
      if (depth === 16) {
        const samples = new Uint16Array(bytes.length / 2);
        for (let i = 0; i < samples.length; i++) samples[i] = (bytes[2 * i] << 8) | bytes[2 * i + 1];
        data = samples;
      }
      return { width, height: rows, channels, depth, data };
    };
    for await (const chunk of inflated as AsyncIterable<Buffer>) {
      for (let at = 0; at < chunk.length; ) {
        if (y >= height) throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', 'PNG holds more data than its rows');
        if (filled < 0) {
          filter = chunk[at++];
          filled = 0;
          continue;
        }
        const take = Math.min(rowBytes - filled, chunk.length - at);
        cur.set(chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled < rowBytes) continue;
        unfilterRow(filter, cur, prev, bpp);
        batch.set(cur, inBatch * rowBytes);
        [prev, cur] = [cur, prev];
        filled = -1;
        y++;
        if (++inBatch === batchRows) {
          yield emit(inBatch);
          batch = new Uint8Array(batchRows * rowBytes);
          inBatch = 0;
        }
      }
    }
    if (y !== height || filled !== -1) throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `PNG ends after ${y} of ${height} rows`);
    if (inBatch > 0) yield emit(inBatch);
  } finally {
    if (typeof file === 'string') await fh.close();
  }
}
