import { UpbridgeError } from '../errors';
import { NcnnWeightReader } from './ncnn-bin';
import { arrayParam, floatParam, intParam, NcnnGraph, NcnnLayer, parseNcnnParam } from './ncnn-param';
import { OnnxGraphBuilder } from './onnx-builder';

/**
 * ncnn → ONNX. ncnn blobs are CHW without a batch axis; ONNX tensors here are NCHW with N = 1,
 * so channel-relative axes shift by one. Each converter mirrors the corresponding ncnn layer's
 * load_param/load_model (parameter ids and defaults from ncnn/src/layer/*.cpp) so the weights
 * are consumed from the .bin in exactly ncnn's order.
 */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'output';

interface ConvertContext {
  builder: OnnxGraphBuilder;
  weights: NcnnWeightReader;
  /** ncnn blob name → ONNX tensor name (Split makes several blobs alias one tensor). */
  tensorOf(blob: string): string;
  alias(blob: string, tensor: string): void;
  /** ONNX name for a layer output blob. */
  define(blob: string): string;
}

type LayerConverter = (layer: NcnnLayer, ctx: ConvertContext) => void;

function unsupported(layer: NcnnLayer, what: string): UpbridgeError {
  return new UpbridgeError(
    'UPB_NCNN_UNSUPPORTED_LAYER',
    `ncnn layer ${layer.type} "${layer.name}": ${what} is not supported by the converter`,
    { layerType: layer.type, layer: layer.name },
  );
}

/** ncnn's fused activation (Convolution param 9/10) as ONNX nodes from `input` to `output`. */
function activation(layer: NcnnLayer, ctx: ConvertContext, input: string, output: string): void {
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

const convolution: LayerConverter = (layer, ctx) => {
  const numOutput = intParam(layer, 0, 0);
  const kernelW = intParam(layer, 1, 0);
  const kernelH = intParam(layer, 11, kernelW);
  const dilationW = intParam(layer, 2, 1);
  const dilationH = intParam(layer, 12, dilationW);
  const strideW = intParam(layer, 3, 1);
  const strideH = intParam(layer, 13, strideW);
  const padLeft = intParam(layer, 4, 0);
  const padRight = intParam(layer, 15, padLeft);
  const padTop = intParam(layer, 14, padLeft);
  const padBottom = intParam(layer, 16, padTop);
  const padValue = floatParam(layer, 18, 0);
  const biasTerm = intParam(layer, 5, 0);
  const weightDataSize = intParam(layer, 6, 0);
  if (intParam(layer, 8, 0) !== 0) throw unsupported(layer, 'int8 quantisation');
  if (intParam(layer, 19, 0) !== 0) throw unsupported(layer, 'dynamic weights');
  if (padValue !== 0) throw unsupported(layer, `pad value ${padValue}`);
  const inChannels = weightDataSize / (numOutput * kernelW * kernelH);
  if (!Number.isInteger(inChannels) || inChannels <= 0) {
    throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn layer ${layer.name}: weight_data_size ${weightDataSize} does not fit ${numOutput}×k${kernelW}×${kernelH}`);
  }

  const weight = ctx.weights.readTagged(weightDataSize, `${layer.name} weights`);
  const b = ctx.builder;
  const inputs = [ctx.tensorOf(layer.inputs[0]), b.addFloatInitializer(`${layer.name}_W`, [numOutput, inChannels, kernelH, kernelW], weight)];
  if (biasTerm) inputs.push(b.addFloatInitializer(`${layer.name}_B`, [numOutput], ctx.weights.readRaw(numOutput, `${layer.name} bias`)));

  const attributes: Record<string, number[] | string> = {
    kernel_shape: [kernelH, kernelW],
    strides: [strideH, strideW],
    dilations: [dilationH, dilationW],
  };
  // -233 / -234 are ncnn's "SAME" padding markers (computed at run time from the input size).
  if (padLeft === -233) attributes.auto_pad = 'SAME_UPPER';
  else if (padLeft === -234) attributes.auto_pad = 'SAME_LOWER';
  else if ([padLeft, padRight, padTop, padBottom].some((p) => p < 0)) throw unsupported(layer, `padding ${padLeft}`);
  else attributes.pads = [padTop, padLeft, padBottom, padRight];

  const output = ctx.define(layer.outputs[0]);
  if (intParam(layer, 9, 0) === 0) {
    b.addNode('Conv', inputs, [output], attributes, layer.name);
  } else {
    const pre = b.uniqueName(`${layer.name}_preact`);
    b.addNode('Conv', inputs, [pre], attributes, layer.name);
    activation(layer, ctx, pre, output);
  }
};

const prelu: LayerConverter = (layer, ctx) => {
  const numSlope = intParam(layer, 0, 0);
  const slope = ctx.weights.readRaw(numSlope, `${layer.name} slopes`);
  const dims = numSlope === 1 ? [] : [numSlope, 1, 1];
  const slopeName = ctx.builder.addFloatInitializer(`${layer.name}_slope`, dims, slope);
  ctx.builder.addNode('PRelu', [ctx.tensorOf(layer.inputs[0]), slopeName], [ctx.define(layer.outputs[0])], {}, layer.name);
};

const split: LayerConverter = (layer, ctx) => {
  const source = ctx.tensorOf(layer.inputs[0]);
  for (const out of layer.outputs) ctx.alias(out, source);
};

/** ncnn axes count over (c, h, w) for 3-D blobs; ONNX adds the batch axis in front. */
function onnxAxis(layer: NcnnLayer, ncnnAxis: number): number {
  const axis = ncnnAxis < 0 ? ncnnAxis + 3 : ncnnAxis;
  if (axis < 0 || axis > 2) throw unsupported(layer, `axis ${ncnnAxis}`);
  return axis + 1;
}

const concat: LayerConverter = (layer, ctx) => {
  ctx.builder.addNode(
    'Concat',
    layer.inputs.map((i) => ctx.tensorOf(i)),
    [ctx.define(layer.outputs[0])],
    { axis: onnxAxis(layer, intParam(layer, 0, 0)) },
    layer.name,
  );
};

const eltwise: LayerConverter = (layer, ctx) => {
  const op = intParam(layer, 0, 0);
  const coeffs = arrayParam(layer, 1);
  const b = ctx.builder;
  let terms = layer.inputs.map((i) => ctx.tensorOf(i));
  const onnxOp = ['Mul', 'Add', 'Max'][op];
  if (!onnxOp) throw unsupported(layer, `operation ${op}`);
  if (op === 1 && coeffs.length > 0) {
    if (coeffs.length !== terms.length) throw unsupported(layer, `${coeffs.length} coefficients for ${terms.length} inputs`);
    terms = terms.map((t, i) => {
      if (coeffs[i] === 1) return t;
      const scaled = b.uniqueName(`${layer.name}_scaled${i}`);
      b.addNode('Mul', [t, b.addFloatInitializer(`${layer.name}_coeff${i}`, [], [coeffs[i]])], [scaled]);
      return scaled;
    });
  }
  const output = ctx.define(layer.outputs[0]);
  if (op === 2 || terms.length === 1) {
    b.addNode(onnxOp === 'Max' ? 'Max' : 'Identity', terms, [output], {}, layer.name);
    return;
  }
  // Binary chain: ((a op b) op c) ..., the order ncnn accumulates in.
  let acc = terms[0];
  for (let i = 1; i < terms.length; i++) {
    const out = i === terms.length - 1 ? output : b.uniqueName(`${layer.name}_acc${i}`);
    b.addNode(onnxOp, [acc, terms[i]], [out]);
    acc = out;
  }
};

const interp: LayerConverter = (layer, ctx) => {
  const resizeType = intParam(layer, 0, 0);
  const heightScale = floatParam(layer, 1, 1);
  const widthScale = floatParam(layer, 2, 1);
  const outH = intParam(layer, 3, 0);
  const outW = intParam(layer, 4, 0);
  const alignCorner = intParam(layer, 6, 0);
  if (intParam(layer, 5, 0) !== 0) throw unsupported(layer, 'dynamic target size');
  if (outH !== 0 || outW !== 0) throw unsupported(layer, 'a fixed output size');
  const b = ctx.builder;
  const scales = b.addFloatInitializer(`${layer.name}_scales`, [4], [1, 1, heightScale, widthScale]);
  let attributes: Record<string, string>;
  if (resizeType === 1) {
    // ncnn nearest: src = floor(dst * (1 / scale)), i.e. ONNX asymmetric + floor.
    attributes = { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
  } else if (resizeType === 2) {
    attributes = { mode: 'linear', coordinate_transformation_mode: alignCorner ? 'align_corners' : 'half_pixel' };
  } else {
    throw unsupported(layer, `resize type ${resizeType}`);
  }
  b.addNode('Resize', [ctx.tensorOf(layer.inputs[0]), '', scales], [ctx.define(layer.outputs[0])], attributes, layer.name);
};

const BINARY_OPS: Record<number, { op: string; reversed: boolean }> = {
  0: { op: 'Add', reversed: false },
  1: { op: 'Sub', reversed: false },
  2: { op: 'Mul', reversed: false },
  3: { op: 'Div', reversed: false },
  4: { op: 'Max', reversed: false },
  5: { op: 'Min', reversed: false },
  6: { op: 'Pow', reversed: false },
  7: { op: 'Sub', reversed: true },
  8: { op: 'Div', reversed: true },
};

const binaryOp: LayerConverter = (layer, ctx) => {
  const opType = intParam(layer, 0, 0);
  const spec = BINARY_OPS[opType];
  if (!spec) throw unsupported(layer, `operation ${opType}`);
  const a = ctx.tensorOf(layer.inputs[0]);
  const bOperand = intParam(layer, 1, 0)
    ? ctx.builder.addFloatInitializer(`${layer.name}_b`, [], [floatParam(layer, 2, 0)])
    : ctx.tensorOf(layer.inputs[1]);
  const operands = spec.reversed ? [bOperand, a] : [a, bOperand];
  ctx.builder.addNode(spec.op, operands, [ctx.define(layer.outputs[0])], {}, layer.name);
};

const pixelShuffle: LayerConverter = (layer, ctx) => {
  const factor = intParam(layer, 0, 1);
  // ncnn mode 0 takes input channel p*r*r + i*r + j (PyTorch pixel_shuffle = ONNX CRD);
  // mode 1 takes (i*r + j)*outc + p (ONNX DCR).
  const mode = intParam(layer, 1, 0) === 0 ? 'CRD' : 'DCR';
  ctx.builder.addNode('DepthToSpace', [ctx.tensorOf(layer.inputs[0])], [ctx.define(layer.outputs[0])], { blocksize: factor, mode }, layer.name);
};

const CONVERTERS: Record<string, LayerConverter> = {
  Convolution: convolution,
  PReLU: prelu,
  Split: split,
  Concat: concat,
  Eltwise: eltwise,
  Interp: interp,
  BinaryOp: binaryOp,
  PixelShuffle: pixelShuffle,
};

export const SUPPORTED_LAYER_TYPES = ['Input', ...Object.keys(CONVERTERS)];

export interface ConvertResult {
  onnx: Uint8Array;
  layerCount: number;
  nodeCount: number;
}

export function convertNcnnToOnnx(paramText: string, binBytes: Uint8Array, modelName: string): ConvertResult {
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
  const tensorOfBlob = new Map<string, string>();
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

  const ctx: ConvertContext = {
    builder,
    weights: new NcnnWeightReader(binBytes),
    tensorOf(blob) {
      const t = tensorOfBlob.get(blob);
      if (!t) throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn model ${modelName}: blob "${blob}" is used before any layer produces it`);
      return t;
    },
    alias(blob, tensor) {
      tensorOfBlob.set(blob, tensor);
    },
    define(blob) {
      const name = blob === outputBlob ? OUTPUT_NAME : builder.uniqueName(`blob_${blob}`);
      if (blob === outputBlob) builder.reserve(name);
      tensorOfBlob.set(blob, name);
      return name;
    },
  };

  for (const layer of graph.layers) {
    if (layer.type === 'Input') {
      builder.addInput(INPUT_NAME, [1, 3, 'height', 'width']);
      tensorOfBlob.set(layer.outputs[0], INPUT_NAME);
      continue;
    }
    CONVERTERS[layer.type](layer, ctx);
  }
  if (ctx.weights.remaining !== 0) {
    throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn model ${modelName}: ${ctx.weights.remaining} bytes of the .bin were not consumed; the .bin does not match the .param`);
  }
  // An output that is only an alias (e.g. a trailing Split) still needs a named graph output.
  if (tensorOfBlob.get(outputBlob) !== OUTPUT_NAME) builder.addNode('Identity', [ctx.tensorOf(outputBlob)], [OUTPUT_NAME]);
  builder.addOutput(OUTPUT_NAME, [1, 3, 'out_height', 'out_width']);
  const { bytes, nodeCount } = builder.encode('upbridge-ncnn2onnx', { source_model: modelName });
  return { onnx: bytes, layerCount: graph.layers.length, nodeCount };
}
