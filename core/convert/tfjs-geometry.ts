import { UpbridgeError } from '../errors';
import { layerHandler } from './tfjs-layers';
import { TfjsModel } from './tfjs-model';

/**
 * How a converted model's output size follows its input size, found from the layers' size rules
 * rather than by running it: the tiler needs output = scale · input exactly, for every tile size
 * it may cut. For each axis the rules are applied to every input length 1..PROBE_LIMIT.
 *
 * Every rule here (same/valid convolution with strides, upsampling, pixel shuffle) is a floor or
 * ceiling of an affine function, so the output length is affine on each residue class modulo the
 * product of the strides. The smallest `sizeMultiple` m ≤ MAX_MULTIPLE for which every multiple
 * of m from `minInputSize` up to PROBE_LIMIT maps to scale · n (with minInputSize in the lower
 * half of the range, so the run is long enough to rule out a coincidence) therefore holds for
 * every larger multiple as well.
 */
export interface TfjsGeometry {
  /** Output length ÷ input length, a whole number ≥ 1. */
  scale: number;
  /** Smallest input height/width the model accepts. */
  minInputSize: number;
  /** Input height/width must be a multiple of this (1 for stride-1 models). */
  sizeMultiple: number;
}

const PROBE_LIMIT = 256;
const MAX_MULTIPLE = 16;
const AXES = ['height', 'width'] as const;

/** Output length for each input length n (index n), undefined where some layer cannot take it. */
function outputLengths(model: TfjsModel, axis: 0 | 1): (number | undefined)[] {
  const out: (number | undefined)[] = [undefined];
  for (let n = 1; n <= PROBE_LIMIT; n++) {
    const sizes = new Map<string, number | undefined>([[model.inputLayer, n]]);
    for (const layer of model.layers) {
      if (layer.name === model.inputLayer) continue;
      const inputs = layer.inputs.map((name) => sizes.get(name));
      const valid = inputs.every((v): v is number => v !== undefined && v >= 1);
      sizes.set(layer.name, valid ? layerHandler(layer.className)!.size(layer, axis, inputs as number[]) : undefined);
    }
    const result = sizes.get(model.outputLayer);
    out.push(result !== undefined && result >= 1 ? result : undefined);
  }
  return out;
}

function axisGeometry(lengths: (number | undefined)[]): TfjsGeometry | undefined {
  for (let m = 1; m <= MAX_MULTIPLE; m++) {
    const last = PROBE_LIMIT - (PROBE_LIMIT % m);
    const scale = (lengths[last] ?? 0) / last;
    if (!Number.isInteger(scale) || scale < 1) continue;
    let min = last;
    while (min - m >= 1 && lengths[min - m] === scale * (min - m)) min -= m;
    if (min <= PROBE_LIMIT / 2) return { scale, minInputSize: min, sizeMultiple: m };
  }
  return undefined;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

export function tfjsGeometry(model: TfjsModel, modelName: string): TfjsGeometry {
  const perAxis = AXES.map((axisName, axis) => {
    const lengths = outputLengths(model, axis as 0 | 1);
    const found = axisGeometry(lengths);
    if (!found) {
      const samples = [16, 17, 64].map((n) => `${n} → ${lengths[n] ?? 'invalid'}`).join(', ');
      throw new UpbridgeError(
        'UPB_TFJS_UNSUPPORTED_MODEL',
        `TF.js model ${modelName}: the output ${axisName} is not a whole multiple of the input ${axisName} (${samples}); the tiler needs output = scale × input`,
      );
    }
    return found;
  });
  const [h, w] = perAxis;
  if (h.scale !== w.scale) {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: scales ${h.scale} (height) and ${w.scale} (width) differ; only uniform upscalers are supported`);
  }
  const sizeMultiple = (h.sizeMultiple * w.sizeMultiple) / gcd(h.sizeMultiple, w.sizeMultiple);
  const minInputSize = Math.ceil(Math.max(h.minInputSize, w.minInputSize) / sizeMultiple) * sizeMultiple;
  return { scale: h.scale, minInputSize, sizeMultiple };
}
