import { UpbridgeError } from '../errors';
import { NcnnWeightReader } from './ncnn-bin';
import { BlobRank, ConvertContext, LayerConverter } from './ncnn-context';
import { checkConventions, cropOutput, NcnnConventions, padInput, PaddedInput } from './ncnn-conventions';
import { crop } from './ncnn-layer-crop';
import { deconvolution } from './ncnn-layer-deconvolution';
import { interp } from './ncnn-layer-interp';
import { binaryOp, concat, convolution, eltwise, pixelShuffle, prelu, split } from './ncnn-layers-core';
import { innerProduct, pooling, scale } from './ncnn-layers-vector';
import { NcnnGraph, parseNcnnParam } from './ncnn-param';
import { OnnxGraphBuilder } from './onnx-builder';

export type { NcnnConventions } from './ncnn-conventions';
export { minimumInputSide } from './ncnn-conventions';

/**
 * ncnn → ONNX. ncnn blobs are CHW without a batch axis; ONNX tensors here are NCHW with N = 1,
 * so channel-relative axes shift by one (1-D blobs: see ncnn-context.ts). Each layer converter
 * (ncnn-layer*.ts) mirrors the corresponding ncnn layer's load_param/load_model (parameter ids
 * and defaults from ncnn/src/layer/*.cpp) so the weights are consumed from the .bin in exactly
 * ncnn's order. This module walks the layers, keeps the blob table, and, given conventions,
 * wraps the network in its reference program's padding and crop (ncnn-conventions.ts).
 */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'output';

const CONVERTERS: Record<string, LayerConverter> = {
  Convolution: convolution,
  PReLU: prelu,
  Split: split,
  Concat: concat,
  Eltwise: eltwise,
  Interp: interp,
  BinaryOp: binaryOp,
  PixelShuffle: pixelShuffle,
  Deconvolution: deconvolution,
  Crop: crop,
  Pooling: pooling,
  InnerProduct: innerProduct,
  Scale: scale,
};

export const SUPPORTED_LAYER_TYPES = ['Input', ...Object.keys(CONVERTERS)];

export interface ConvertResult {
  onnx: Uint8Array;
  layerCount: number;
  nodeCount: number;
}

/**
 * Converts a text .param and its .bin. Without `conventions` the graph is the bare network (its
 * bytes are pinned in the catalogue, so that path must not change). With them, the graph takes
 * any [1,3,h,w] input of at least minimumInputSide(conventions) and returns [1,3,s·h,s·w].
 */
export function convertNcnnToOnnx(paramText: string, binBytes: Uint8Array, modelName: string, conventions?: NcnnConventions): ConvertResult {
  if (conventions) checkConventions(conventions, modelName);
  const graph: NcnnGraph = parseNcnnParam(paramText);
  const unknown = [...new Set(graph.layers.map((l) => l.type))].filter((t) => !SUPPORTED_LAYER_TYPES.includes(t));
  if (unknown.length > 0) {
    const first = graph.layers.find((l) => l.type === unknown[0])!;
    throw new UpbridgeError(
      'UPB_NCNN_UNSUPPORTED_LAYER',
      `ncnn model ${modelName}: unsupported layer type${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (first: "${first.name}"); supported: ${SUPPORTED_LAYER_TYPES.join(', ')}`,
      { layerTypes: unknown },
    );
  }

  const builder = new OnnxGraphBuilder();
  const blobs = new Map<string, { tensor: string; rank: BlobRank }>();
  const consumed = new Set(graph.layers.flatMap((l) => l.inputs));
  const inputLayers = graph.layers.filter((l) => l.type === 'Input');
  if (inputLayers.length !== 1) {
    throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn model ${modelName}: expected one Input layer, found ${inputLayers.length}`);
  }
  const producedLast = graph.layers.flatMap((l) => l.outputs).filter((b) => !consumed.has(b));
  if (producedLast.length !== 1) {
    throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn model ${modelName}: expected one output blob, found ${producedLast.length}`);
  }
  const outputBlob = producedLast[0];
  // With conventions the network's output is an inner tensor; the graph output comes after the crop.
  if (conventions) builder.reserve(OUTPUT_NAME);

  const blob = (name: string) => {
    const found = blobs.get(name);
    if (!found) throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn model ${modelName}: blob "${name}" is used before any layer produces it`);
    return found;
  };
  const ctx: ConvertContext = {
    builder,
    weights: new NcnnWeightReader(binBytes),
    tensorOf: (name) => blob(name).tensor,
    rankOf: (name) => blob(name).rank,
    alias(name, source) {
      blobs.set(name, blob(source));
    },
    define(name, rank = 3) {
      let tensor: string;
      if (name !== outputBlob) tensor = builder.uniqueName(`blob_${name}`);
      else if (conventions) tensor = builder.uniqueName('network_output');
      else {
        tensor = OUTPUT_NAME;
        builder.reserve(tensor);
      }
      blobs.set(name, { tensor, rank });
      return tensor;
    },
  };

  let padded: PaddedInput | undefined;
  for (const layer of graph.layers) {
    if (layer.type === 'Input') {
      builder.addInput(INPUT_NAME, [1, 3, 'height', 'width']);
      if (conventions) padded = padInput(builder, INPUT_NAME, conventions);
      blobs.set(layer.outputs[0], { tensor: padded?.padded ?? INPUT_NAME, rank: 3 });
      continue;
    }
    CONVERTERS[layer.type](layer, ctx);
  }
  if (ctx.weights.remaining !== 0) {
    throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn model ${modelName}: ${ctx.weights.remaining} bytes of the .bin were not consumed; the .bin does not match the .param`);
  }
  if (conventions && padded) {
    if (ctx.rankOf(outputBlob) !== 3) throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn model ${modelName}: output blob "${outputBlob}" is 1-D; conventions need an image output`);
    cropOutput(builder, INPUT_NAME, ctx.tensorOf(outputBlob), padded, conventions, OUTPUT_NAME);
  } else if (ctx.tensorOf(outputBlob) !== OUTPUT_NAME) {
    // An output that is only an alias (e.g. a trailing Split) still needs a named graph output.
    builder.addNode('Identity', [ctx.tensorOf(outputBlob)], [OUTPUT_NAME]);
  }
  builder.addOutput(OUTPUT_NAME, [1, 3, 'out_height', 'out_width']);
  const { bytes, nodeCount } = builder.encode('upbridge-ncnn2onnx', { source_model: modelName });
  return { onnx: bytes, layerCount: graph.layers.length, nodeCount };
}
