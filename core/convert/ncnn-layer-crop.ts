import { ConvertContext, featureMap, formatError, INT64_MAX, LayerConverter, unsupported } from './ncnn-context';
import { arrayParam, intParam, NcnnLayer } from './ncnn-param';

/**
 * ncnn Crop (crop.cpp) → ONNX Slice, in the three forms crop.cpp resolves (resolve_crop_roi):
 *
 * - numpy-style (9 starts[], 10 ends[], 11 axes[]; Real-CUGAN): start −233 → 0, negative → dim +
 *   start; end −233 or 0 → the end of the axis ("end > 0 ? end : dim + end"), negative → dim + end.
 *   ONNX Slice reads negative bounds the same way, so only −233 and 0 need mapping.
 * - offsets and sizes (0/1/2 woffset/hoffset/coffset, 3/4/5 outw/outh/outc, 6/7/8 the offsets from
 *   the far end): out = dim − offset − offset2, capped at outw unless outw is −233.
 * - reference blob (two inputs and none of the above; waifu2x cunet): the offsets from 0/1/2, the
 *   size of the second blob (its channels too when it is 3-D), read with Shape at run time.
 *
 * ncnn picks the form from the parameters (Crop::load_param sets one_blob_only), not from the
 * number of inputs listed, and so does this.
 */
export const crop: LayerConverter = (layer, ctx) => {
  for (const id of [19, 20, 21]) if (layer.params.has(id)) throw unsupported(layer, `expression parameter ${id}`);
  const starts = arrayParam(layer, 9);
  const ends = arrayParam(layer, 10);
  if (starts.length > 0 && ends.length > 0) return numpyStyle(layer, ctx, starts, ends, arrayParam(layer, 11));

  const axes = [
    { axis: 1, offset: intParam(layer, 2, 0), offset2: intParam(layer, 8, 0), size: intParam(layer, 5, 0), name: 'c' },
    { axis: 2, offset: intParam(layer, 1, 0), offset2: intParam(layer, 7, 0), size: intParam(layer, 4, 0), name: 'h' },
    { axis: 3, offset: intParam(layer, 0, 0), offset2: intParam(layer, 6, 0), size: intParam(layer, 3, 0), name: 'w' },
  ];
  if (intParam(layer, 13, 0) !== 0 || intParam(layer, 14, 0) !== 0 || intParam(layer, 15, 0) !== 0) throw unsupported(layer, 'a depth crop (4-D blobs)');
  const oneBlob = axes.some((a) => a.size !== 0 || a.offset2 !== 0);
  if (oneBlob) return offsetsAndSizes(layer, ctx, axes);
  return referenceBlob(layer, ctx, axes);
};

type Axis = { axis: number; offset: number; offset2: number; size: number; name: string };

function slice(layer: NcnnLayer, ctx: ConvertContext, input: string, starts: readonly (number | bigint)[], ends: string | readonly (number | bigint)[], axes: number[]): void {
  const b = ctx.builder;
  const startsName = b.addInt64Initializer(`${layer.name}_starts`, [starts.length], starts);
  const endsName = typeof ends === 'string' ? ends : b.addInt64Initializer(`${layer.name}_ends`, [ends.length], ends);
  const axesName = b.addInt64Initializer(`${layer.name}_axes`, [axes.length], axes);
  b.addNode('Slice', [input, startsName, endsName, axesName], [ctx.define(layer.outputs[0])], {}, layer.name);
}

function numpyStyle(layer: NcnnLayer, ctx: ConvertContext, starts: number[], ends: number[], ncnnAxes: number[]): void {
  const input = featureMap(layer, ctx);
  // ncnn: no axes means every axis in order, here (c, h, w), so starts and ends need three entries.
  const axes = ncnnAxes.length > 0 ? ncnnAxes : [0, 1, 2];
  if (starts.length !== axes.length || ends.length !== axes.length) {
    throw formatError(layer, `${starts.length} starts, ${ends.length} ends and ${axes.length} axes`);
  }
  const onnxAxes = axes.map((a) => {
    const axis = a < 0 ? a + 3 : a;
    if (axis < 0 || axis > 2) throw unsupported(layer, `axis ${a} of a 3-D blob`);
    return axis + 1;
  });
  const onnxStarts = starts.map((s) => (s === -233 ? 0 : s));
  const onnxEnds = ends.map((e) => (e === -233 || e === 0 ? INT64_MAX : e));
  slice(layer, ctx, input, onnxStarts, onnxEnds, onnxAxes);
}

function offsetsAndSizes(layer: NcnnLayer, ctx: ConvertContext, axes: Axis[]): void {
  const input = featureMap(layer, ctx);
  const used: Axis[] = [];
  const ends: (number | bigint)[] = [];
  for (const a of axes) {
    if (a.offset < 0 || a.offset2 < 0) throw unsupported(layer, `a negative ${a.name} offset`);
    if (a.size === -233) {
      if (a.offset === 0 && a.offset2 === 0) continue;
      ends.push(a.offset2 > 0 ? -a.offset2 : INT64_MAX);
    } else if (a.size > 0 && a.offset2 === 0) {
      ends.push(a.offset + a.size);
    } else if (a.size > 0) {
      throw unsupported(layer, `both an output ${a.name} size and an end offset`);
    } else {
      // crop.cpp: _outw = min(outw, w − woffset − woffset2) with outw 0: an empty axis.
      throw unsupported(layer, `output ${a.name} size ${a.size} (an empty or negative axis)`);
    }
    used.push(a);
  }
  if (used.length === 0) {
    ctx.alias(layer.outputs[0], layer.inputs[0]);
    return;
  }
  slice(layer, ctx, input, used.map((a) => a.offset), ends, used.map((a) => a.axis));
}

function referenceBlob(layer: NcnnLayer, ctx: ConvertContext, axes: Axis[]): void {
  if (layer.inputs.length < 2) throw formatError(layer, 'no output size, end offset or slice is given, so a second (reference) input blob is needed');
  const [c, h, w] = axes;
  if (w.offset === -233) throw unsupported(layer, 'a crop region read from the reference blob (0=-233)');
  if (axes.some((a) => a.offset < 0)) throw unsupported(layer, 'a negative offset');
  const input = featureMap(layer, ctx, 0);
  const reference = featureMap(layer, ctx, 1);
  const b = ctx.builder;
  // ends = offsets + the reference's (C, H, W): a 3-D reference also sets the channel count.
  const refSize = b.uniqueName(`${layer.name}_ref_chw`);
  b.addNode('Shape', [reference], [refSize], { start: 1 });
  const offsets = [c.offset, h.offset, w.offset];
  const ends = b.uniqueName(`${layer.name}_ends`);
  b.addNode('Add', [refSize, b.addInt64Initializer(`${layer.name}_offsets`, [3], offsets)], [ends]);
  slice(layer, ctx, input, offsets, ends, [1, 2, 3]);
}
