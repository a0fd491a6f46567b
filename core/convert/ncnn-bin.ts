import { UpbridgeError } from '../errors';

/**
 * Sequential reader for ncnn's `.bin` weights (ncnn/src/modelbin.cpp, ModelBinFromDataReader::load).
 * Layers read their weights in `.param` order. A `load(n, 0)` starts with a 4-byte tag:
 *   0x01306B47  n float16 values, padded to 4 bytes
 *   0x000D4B38  n int8 values, padded to 4 bytes (quantised int8 models: not supported here)
 *   0x0002C056  n float32 values ("raw data with extra scaling")
 *   0x00000000  n float32 values
 *   otherwise   a 256-entry float32 table, then n uint8 indices padded to 4 bytes
 * A `load(n, 1)` is n raw float32 values with no tag (biases, PReLU slopes).
 */
const TAG_FP16 = 0x01306b47;
const TAG_INT8 = 0x000d4b38;
const TAG_FP32_SCALED = 0x0002c056;

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

export class NcnnWeightReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  private need(byteCount: number, what: string): void {
    if (this.offset + byteCount > this.bytes.byteLength) {
      throw new UpbridgeError(
        'UPB_NCNN_FORMAT',
        `ncnn .bin: file ends at byte ${this.bytes.byteLength} while reading ${what} (needs ${byteCount} bytes at ${this.offset}); the .bin does not match the .param`,
      );
    }
  }

  private float32s(count: number, what: string): Float32Array {
    this.need(count * 4, what);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.view.getFloat32(this.offset + i * 4, true);
    this.offset += count * 4;
    return out;
  }

  /** ncnn `load(n, 1)`: raw float32, no tag. */
  readRaw(count: number, what: string): Float32Array {
    return this.float32s(count, what);
  }

  /** ncnn `load(n, 0)`: tagged weights, returned as float32. */
  readTagged(count: number, what: string): Float32Array {
    this.need(4, `${what} tag`);
    const tag = this.view.getUint32(this.offset, true);
    this.offset += 4;
    if (tag === TAG_FP16) {
      const padded = align4(count * 2);
      this.need(padded, what);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(this.view.getUint16(this.offset + i * 2, true));
      this.offset += padded;
      return out;
    }
    if (tag === TAG_INT8) {
      throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn .bin: ${what} is int8-quantised; only fp32/fp16 models are supported`);
    }
    if (tag === TAG_FP32_SCALED || tag === 0) return this.float32s(count, what);
    // Any other tag: the 4 tag bytes are not all zero, so ncnn reads a quantisation table.
    const table = this.float32s(256, `${what} quantisation table`);
    const padded = align4(count);
    this.need(padded, what);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = table[this.bytes[this.offset + i]];
    this.offset += padded;
    return out;
  }
}
