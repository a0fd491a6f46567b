import { UpbridgeError } from '../errors';
import { NcnnWeightReader } from './ncnn-bin';
import { arrayParam, intParam, NcnnLayer } from './ncnn-param';
import { OnnxGraphBuilder } from './onnx-builder';

/**
 * What every layer converter shares: the graph being built, the weight reader, the blob table,
 * and the helpers for ncnn's fused activations and axes.
 *
 * ncnn blobs are CHW (3-D) or plain vectors (1-D: a global pooling or InnerProduct result).
 * A 3-D blob becomes an NCHW tensor [1,C,H,W]; a 1-D blob of length C becomes [1,C,1,1], so that
 * ncnn's per-channel broadcasting of a vector against a feature map (BinaryOp, Scale) is plain
 * ONNX broadcasting with no reshapes. The rank is tracked per blob because the two look alike in
 * ONNX yet mean different things to ncnn layers.
 */
export type BlobRank = 1 | 3;

export interface ConvertContext {
  builder: OnnxGraphBuilder;
  weights: NcnnWeightReader;
  /** ONNX tensor holding an ncnn blob (Split makes several blobs alias one tensor). */
  tensorOf(blob: string): string;
  rankOf(blob: string): BlobRank;
  /** Makes `blob` another name for `source` (same tensor, same rank). */
  alias(blob: string, source: string): void;
  /** The ONNX name for a layer output blob of the given rank. */
  define(blob: string, rank?: BlobRank): string;
}

export type LayerConverter = (layer: NcnnLayer, ctx: ConvertContext) => void;

export function unsupported(layer: NcnnLayer, what: string): UpbridgeError {
  return new UpbridgeError(
    'UPB_NCNN_UNSUPPORTED_LAYER',
    `ncnn layer ${layer.type} "${layer.name}": ${what} is not supported by the converter`,
    { layerType: layer.type, layer: layer.name },
  );
}

export function formatError(layer: NcnnLayer, what: string): UpbridgeError {
  return new UpbridgeError('UPB_NCNN_FORMAT', `ncnn layer ${layer.type} "${layer.name}": ${what}`, { layerType: layer.type, layer: layer.name });
}

/** Input `index` of a layer that works on feature maps only; a 1-D blob there is an error, not a silent broadcast. */
/**
 * The kernel parameters Convolution and Deconvolution share, with ncnn's ids and defaults
 * (convolution.cpp / deconvolution.cpp load_param): each *_h falls back to its *_w.
 */
export function kernelParams(layer: NcnnLayer) {
  const kernelW = intParam(layer, 1, 0);
  const dilationW = intParam(layer, 2, 1);
  const strideW = intParam(layer, 3, 1);
  const padLeft = intParam(layer, 4, 0);
  const padTop = intParam(layer, 14, padLeft);
  return {
    numOutput: intParam(layer, 0, 0),
    kernelW,
    kernelH: intParam(layer, 11, kernelW),
    dilationW,
    dilationH: intParam(layer, 12, dilationW),
    strideW,
    strideH: intParam(layer, 13, strideW),
    padLeft,
    padRight: intParam(layer, 15, padLeft),
    padTop,
    padBottom: intParam(layer, 16, padTop),
    biasTerm: intParam(layer, 5, 0),
    weightDataSize: intParam(layer, 6, 0),
  };
}

export function featureMap(layer: NcnnLayer, ctx: ConvertContext, index = 0): string {
  const blob = layer.inputs[index];
  const tensor = ctx.tensorOf(blob);
  if (ctx.rankOf(blob) !== 3) throw unsupported(layer, `input blob "${blob}" is a 1-D vector (from global pooling or InnerProduct); this layer on a 1-D blob`);
  return tensor;
}

/** ncnn's fused activation (param 9/10) as ONNX nodes from `input` to `output`. */
export function activation(layer: NcnnLayer, ctx: ConvertContext, input: string, output: string): void {
  const type = intParam(layer, 9, 0);
  const params = arrayParam(layer, 10);
  const b = ctx.builder;
  switch (type) {
    case 1:
      b.addNode('Relu', [input], [output]);
      return;
    case 2:
      b.addNode('LeakyRelu', [input], [output], { alpha: { float: params[0] ?? 0 } });
      return;
    case 3: {
      const lo = b.addFloatInitializer(`${layer.name}_clip_min`, [], [params[0]]);
      const hi = b.addFloatInitializer(`${layer.name}_clip_max`, [], [params[1]]);
      b.addNode('Clip', [input, lo, hi], [output]);
      return;
    }
    case 4:
      b.addNode('Sigmoid', [input], [output]);
      return;
    default:
      throw unsupported(layer, `fused activation type ${type}`);
  }
}

/**
 * One ONNX op for the layer, then its fused activation (if any) into the layer's output blob.
 * The output is named before the pre-activation tensor: converted graphs are pinned by sha256,
 * so the order in which names are taken must not change.
 */
export function opWithActivation(
  layer: NcnnLayer,
  ctx: ConvertContext,
  opType: string,
  inputs: string[],
  attributes: Record<string, number[] | string>,
  rank: BlobRank = 3,
): void {
  const b = ctx.builder;
  const output = ctx.define(layer.outputs[0], rank);
  if (intParam(layer, 9, 0) === 0) {
    b.addNode(opType, inputs, [output], attributes, layer.name);
  } else {
    const pre = b.uniqueName(`${layer.name}_preact`);
    b.addNode(opType, inputs, [pre], attributes, layer.name);
    activation(layer, ctx, pre, output);
  }
}

/** ncnn axes count over (c, h, w) for 3-D blobs; ONNX adds the batch axis in front. */
export function onnxAxis(layer: NcnnLayer, ncnnAxis: number): number {
  const axis = ncnnAxis < 0 ? ncnnAxis + 3 : ncnnAxis;
  if (axis < 0 || axis > 2) throw unsupported(layer, `axis ${ncnnAxis}`);
  return axis + 1;
}

/** ONNX Slice's "to the end of the axis". */
export const INT64_MAX = 2n ** 63n - 1n;
