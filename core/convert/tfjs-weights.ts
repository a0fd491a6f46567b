import { UpbridgeError } from '../errors';
import { halfToFloat } from './ncnn-bin';
import { TfjsWeightSpec } from './tfjs-model';

/**
 * Decodes TF.js weight data (the shards concatenated in manifest order) into float32 arrays,
 * the way tfjs-core's `io.decodeWeights` does: weights are packed back to back with no padding,
 * each taking prod(shape) elements of its stored type. Quantised weights are stored as uint8 /
 * uint16 (value = q·scale + min, computed in double precision and then rounded to float32, as
 * tfjs does) or as IEEE half floats. Little-endian throughout, as the converter writes them.
 */
export interface TfjsWeight {
  shape: number[];
  values: Float32Array;
}

const STORED_BYTES: Record<string, number> = { float32: 4, uint8: 1, uint16: 2, float16: 2 };

function formatError(modelName: string, what: string): UpbridgeError {
  return new UpbridgeError('UPB_TFJS_FORMAT', `TF.js model ${modelName}: ${what}`);
}

export function decodeTfjsWeights(specs: TfjsWeightSpec[], data: Uint8Array, modelName: string): Map<string, TfjsWeight> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Map<string, TfjsWeight>();
  let offset = 0;
  for (const spec of specs) {
    // Layers models keep every trainable weight in float32; int32/bool/string weights belong to
    // graph models and have no place in a convolution.
    if (spec.dtype !== 'float32') throw formatError(modelName, `weight "${spec.name}" has dtype ${spec.dtype}; only float32 weights are supported`);
    if (out.has(spec.name)) throw formatError(modelName, `weight "${spec.name}" appears twice in the manifest`);
    const stored = spec.quantization?.dtype ?? 'float32';
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = count * STORED_BYTES[stored];
    if (offset + bytes > data.byteLength) {
      throw formatError(modelName, `weight data ends at byte ${data.byteLength} while reading "${spec.name}" (${bytes} bytes at ${offset}); the shards do not match the manifest`);
    }
    const values = new Float32Array(count);
    const q = spec.quantization;
    if (stored === 'float32') {
      for (let i = 0; i < count; i++) values[i] = view.getFloat32(offset + 4 * i, true);
    } else if (stored === 'float16') {
      for (let i = 0; i < count; i++) values[i] = halfToFloat(view.getUint16(offset + 2 * i, true));
    } else {
      // parseTfjsModel only lets uint8/uint16 through with numeric scale and min.
      const { scale, min } = q as { scale: number; min: number };
      if (stored === 'uint8') for (let i = 0; i < count; i++) values[i] = data[offset + i] * scale + min;
      else for (let i = 0; i < count; i++) values[i] = view.getUint16(offset + 2 * i, true) * scale + min;
    }
    out.set(spec.name, { shape: spec.shape, values });
    offset += bytes;
  }
  if (offset !== data.byteLength) {
    throw formatError(modelName, `the manifest describes ${offset} bytes of weights, the shards hold ${data.byteLength}; the shards do not match the manifest`);
  }
  return out;
}
