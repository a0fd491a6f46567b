import { UpbridgeError } from '../errors';
import { OnnxGraphBuilder } from './onnx-builder';

/**
 * The pre- and post-processing that Real-CUGAN and waifu2x's reference programs wrap around
 * their ncnn networks (manifest/RESEARCH.md §2), folded into the ONNX graph so the converted
 * model maps any [1,3,h,w] input (h, w ≥ `minimumInputSide`) to exactly [1,3,s·h,s·w], like every
 * other model the pipeline runs:
 *
 * 1. Pad the input by `prepad` on every side with `border` ('reflect' = ncnn BORDER_REFLECT, the
 *    edge pixel not repeated; 'edge' = BORDER_REPLICATE), plus, on the right and bottom, what
 *    rounds h and w up to multiples of `align` (realcugan.cpp / waifu2x.cpp prepadding_bottom).
 *    The rounding is computed from the input's Shape in the graph, so any size works.
 * 2. The network. It shrinks by 2·prepad (valid convolutions) and enlarges by its scale s.
 * 3. Keep the top-left s·h × s·w of its output: the alignment padding's share is dropped on the
 *    right and bottom (realcugan.cpp keeps out_tile rows from 0). s is read in the graph as
 *    output side ÷ aligned input side, so the caller need not state it.
 * 4. `residual: 'nearest'` (Real-CUGAN 4x only, realcugan.cpp:1108-1113) adds the input enlarged
 *    s× by nearest neighbour, which the reference adds outside its network.
 */
export interface NcnnConventions {
  prepad: number;
  align: number;
  border: 'reflect' | 'edge';
  residual?: 'nearest';
}

/**
 * The smallest input side the padding allows. ONNX reflect padding (like ncnn's, which reads out
 * of bounds otherwise) needs each pad to be under the side, and the right/bottom pad can reach
 * prepad + align − 1. The network may need more: see each model's tested minimum.
 */
export function minimumInputSide(conventions: NcnnConventions): number {
  return conventions.border === 'reflect' ? conventions.prepad + conventions.align : 1;
}

export function checkConventions(conventions: NcnnConventions, modelName: string): void {
  const bad = (what: string) => new UpbridgeError('UPB_INVALID_OPTION', `ncnn model ${modelName}: conventions ${what}`);
  const { prepad, align, border, residual } = conventions;
  if (!Number.isInteger(prepad) || prepad < 0) throw bad(`prepad ${prepad} must be a whole number ≥ 0`);
  if (!Number.isInteger(align) || align < 1) throw bad(`align ${align} must be a whole number ≥ 1`);
  if (border !== 'reflect' && border !== 'edge') throw bad(`border "${String(border)}" must be "reflect" or "edge"`);
  if (residual !== undefined && residual !== 'nearest') throw bad(`residual "${String(residual)}" must be "nearest" or absent`);
}

/** Tensors the output step needs from the input step. */
export interface PaddedInput {
  /** The padded input, fed to the network. */
  padded: string;
  /** [h, w] of the graph input (int64). */
  size: string;
  /** [h, w] rounded up to multiples of align (int64). */
  aligned: string;
}

const int64 = (b: OnnxGraphBuilder, base: string, values: number[]) => b.addInt64Initializer(base, [values.length], values);

function node(b: OnnxGraphBuilder, op: string, inputs: string[], base: string, attributes: Record<string, number | string> = {}): string {
  const out = b.uniqueName(base);
  b.addNode(op, inputs, [out], attributes);
  return out;
}

export function padInput(b: OnnxGraphBuilder, input: string, c: NcnnConventions): PaddedInput {
  const size = node(b, 'Shape', [input], 'input_hw', { start: 2 });
  let aligned = size;
  let pads: string;
  if (c.align > 1) {
    // extra = (align − size mod align) mod align: 0 when already aligned.
    const align = int64(b, 'align', [c.align]);
    const remainder = node(b, 'Mod', [size, align], 'align_remainder');
    const gap = node(b, 'Sub', [align, remainder], 'align_gap');
    const extra = node(b, 'Mod', [gap, align], 'align_extra');
    aligned = node(b, 'Add', [size, extra], 'aligned_hw');
    const endPads = node(b, 'Add', [extra, int64(b, 'prepad', [c.prepad])], 'end_pads');
    // ONNX pads: [N, C, top, left] begins, then [N, C, bottom, right] ends.
    pads = node(b, 'Concat', [int64(b, 'begin_pads', [0, 0, c.prepad, c.prepad, 0, 0]), endPads], 'pads', { axis: 0 });
  } else {
    pads = int64(b, 'pads', [0, 0, c.prepad, c.prepad, 0, 0, c.prepad, c.prepad]);
  }
  const padded = node(b, 'Pad', [input, pads], 'padded_input', { mode: c.border });
  return { padded, size, aligned };
}

/** Crops the network output to s·h × s·w (and adds the residual) into the graph output `output`. */
export function cropOutput(b: OnnxGraphBuilder, input: string, network: string, p: PaddedInput, c: NcnnConventions, output: string): void {
  const outSize = node(b, 'Shape', [network], 'network_hw', { start: 2 });
  const scale = node(b, 'Div', [outSize, p.aligned], 'model_scale');
  const ends = node(b, 'Mul', [scale, p.size], 'output_hw');
  const sliceInputs = [network, int64(b, 'crop_starts', [0, 0]), ends, int64(b, 'crop_axes', [2, 3])];
  if (!c.residual) {
    b.addNode('Slice', sliceInputs, [output]);
    return;
  }
  const cropped = node(b, 'Slice', sliceInputs, 'network_cropped');
  const sizes = node(b, 'Concat', [node(b, 'Shape', [input], 'input_nc', { end: 2 }), ends], 'residual_sizes', { axis: 0 });
  // Output pixel (y, x) adds input (floor(y/s), floor(x/s)), as realcugan.cpp's inptr[j / 4].
  const upsampled = b.uniqueName('residual');
  b.addNode('Resize', [input, '', '', sizes], [upsampled], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  b.addNode('Add', [cropped, upsampled], [output]);
}
