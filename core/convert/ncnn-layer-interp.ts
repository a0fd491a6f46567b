import { featureMap, LayerConverter, unsupported } from './ncnn-context';
import { floatParam, intParam } from './ncnn-param';
import { OnnxGraphBuilder } from './onnx-builder';

/**
 * ncnn Interp (interp.cpp) → ONNX Resize.
 *
 * Nearest (type 1) maps output x to input floor(x / scale): ONNX asymmetric + floor with the
 * layer's scales.
 *
 * Bilinear (2) and bicubic (3) take their coordinate scale from the sizes, not from the layer's
 * scale factors: ncnn computes outw = (int)(w * width_scale) and then linear_coeffs/cubic_coeffs
 * (w, outw) use w / outw. The two differ whenever w · scale is not an integer (14 px × 0.75), so
 * the Resize is given `sizes` computed in the graph the same way (float product, truncated).
 * Bicubic is Keys with A = −0.75 and taps outside the image folded onto the edge pixel, which is
 * ONNX cubic_coeff_a −0.75 with exclude_outside 0 (ONNX Runtime clamps the tap index). The fold
 * equals a clamp only for sides of 4 px or more: on smaller inputs ncnn reads out of bounds.
 */
const FLOAT = 1;
const INT64 = 7;

export const interp: LayerConverter = (layer, ctx) => {
  const resizeType = intParam(layer, 0, 0);
  const heightScale = floatParam(layer, 1, 1);
  const widthScale = floatParam(layer, 2, 1);
  const outH = intParam(layer, 3, 0);
  const outW = intParam(layer, 4, 0);
  const alignCorner = intParam(layer, 6, 0);
  if (intParam(layer, 5, 0) !== 0) throw unsupported(layer, 'dynamic target size');
  if (outH !== 0 || outW !== 0) throw unsupported(layer, 'a fixed output size');
  const b = ctx.builder;
  const input = featureMap(layer, ctx);
  if (resizeType === 1) {
    const scales = b.addFloatInitializer(`${layer.name}_scales`, [4], [1, 1, heightScale, widthScale]);
    // ncnn nearest: src = floor(dst * (1 / scale)), i.e. ONNX asymmetric + floor.
    const attributes = { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
    b.addNode('Resize', [input, '', scales], [ctx.define(layer.outputs[0])], attributes, layer.name);
    return;
  }
  if (resizeType !== 2 && resizeType !== 3) throw unsupported(layer, `resize type ${resizeType}`);
  const sizes = truncatedSizes(b, layer.name, input, heightScale, widthScale);
  const coordinates = alignCorner ? 'align_corners' : 'half_pixel';
  const attributes: Record<string, string | number | { float: number }> =
    resizeType === 2
      ? { mode: 'linear', coordinate_transformation_mode: coordinates }
      : { mode: 'cubic', coordinate_transformation_mode: coordinates, cubic_coeff_a: { float: -0.75 }, exclude_outside: 0 };
  b.addNode('Resize', [input, '', '', sizes], [ctx.define(layer.outputs[0])], attributes, layer.name);
};

/** [N, C, (int)(H · hScale), (int)(W · wScale)] of `input`, computed in float32 as ncnn does. */
function truncatedSizes(b: OnnxGraphBuilder, name: string, input: string, heightScale: number, widthScale: number): string {
  const hw = b.uniqueName(`${name}_hw`);
  b.addNode('Shape', [input], [hw], { start: 2 });
  const hwFloat = b.uniqueName(`${name}_hw_float`);
  b.addNode('Cast', [hw], [hwFloat], { to: FLOAT });
  const scaled = b.uniqueName(`${name}_hw_scaled`);
  b.addNode('Mul', [hwFloat, b.addFloatInitializer(`${name}_scale_hw`, [2], [heightScale, widthScale])], [scaled]);
  const floored = b.uniqueName(`${name}_hw_floor`);
  b.addNode('Floor', [scaled], [floored]);
  const outHW = b.uniqueName(`${name}_out_hw`);
  b.addNode('Cast', [floored], [outHW], { to: INT64 });
  const nc = b.uniqueName(`${name}_nc`);
  b.addNode('Shape', [input], [nc], { end: 2 });
  const sizes = b.uniqueName(`${name}_sizes`);
  b.addNode('Concat', [nc, outHW], [sizes], { axis: 0 });
  return sizes;
}
