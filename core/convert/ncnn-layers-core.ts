import { UpbridgeError } from '../errors';
import { BlobRank, ConvertContext, featureMap, kernelParams, LayerConverter, onnxAxis, opWithActivation, unsupported } from './ncnn-context';
import { arrayParam, floatParam, intParam, NcnnLayer } from './ncnn-param';

/**
 * The plain feed-forward layers: Convolution, PReLU, Split, Concat, Eltwise, BinaryOp,
 * PixelShuffle. Each mirrors the ncnn layer's load_param/load_model (ids and defaults from
 * ncnn/src/layer/*.cpp) so weights are consumed from the .bin in exactly ncnn's order.
 */

export const convolution: LayerConverter = (layer, ctx) => {
  const { numOutput, kernelW, kernelH, dilationW, dilationH, strideW, strideH, padLeft, padRight, padTop, padBottom, biasTerm, weightDataSize } = kernelParams(layer);
  const padValue = floatParam(layer, 18, 0);
  if (intParam(layer, 8, 0) !== 0) throw unsupported(layer, 'int8 quantisation');
  if (intParam(layer, 19, 0) !== 0) throw unsupported(layer, 'dynamic weights');
  if (padValue !== 0) throw unsupported(layer, `pad value ${padValue}`);
  const inChannels = weightDataSize / (numOutput * kernelW * kernelH);
  if (!Number.isInteger(inChannels) || inChannels <= 0) {
    throw new UpbridgeError('UPB_NCNN_FORMAT', `ncnn layer ${layer.name}: weight_data_size ${weightDataSize} does not fit ${numOutput}×k${kernelW}×${kernelH}`);
  }

  const weight = ctx.weights.readTagged(weightDataSize, `${layer.name} weights`);
  const b = ctx.builder;
  const inputs = [featureMap(layer, ctx), b.addFloatInitializer(`${layer.name}_W`, [numOutput, inChannels, kernelH, kernelW], weight)];
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

  opWithActivation(layer, ctx, 'Conv', inputs, attributes);
};

export const prelu: LayerConverter = (layer, ctx) => {
  const numSlope = intParam(layer, 0, 0);
  const slope = ctx.weights.readRaw(numSlope, `${layer.name} slopes`);
  const dims = numSlope === 1 ? [] : [numSlope, 1, 1];
  const slopeName = ctx.builder.addFloatInitializer(`${layer.name}_slope`, dims, slope);
  ctx.builder.addNode('PRelu', [featureMap(layer, ctx), slopeName], [ctx.define(layer.outputs[0])], {}, layer.name);
};

export const split: LayerConverter = (layer, ctx) => {
  for (const out of layer.outputs) ctx.alias(out, layer.inputs[0]);
};

export const concat: LayerConverter = (layer, ctx) => {
  ctx.builder.addNode(
    'Concat',
    layer.inputs.map((_, i) => featureMap(layer, ctx, i)),
    [ctx.define(layer.outputs[0])],
    { axis: onnxAxis(layer, intParam(layer, 0, 0)) },
    layer.name,
  );
};

/** The common rank of a layer's inputs; ncnn's element-wise layers need equal shapes, so mixed ranks are an error. */
function sameRank(layer: NcnnLayer, ctx: ConvertContext): BlobRank {
  const ranks = new Set(layer.inputs.map((i) => ctx.rankOf(i)));
  if (ranks.size > 1) throw unsupported(layer, 'mixing 1-D and 3-D input blobs');
  return [...ranks][0] ?? 3;
}

export const eltwise: LayerConverter = (layer, ctx) => {
  const op = intParam(layer, 0, 0);
  const coeffs = arrayParam(layer, 1);
  const b = ctx.builder;
  const rank = sameRank(layer, ctx);
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
  const output = ctx.define(layer.outputs[0], rank);
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

/**
 * ncnn broadcasts a 1-D operand of length C against a 3-D one per channel (binaryop.cpp,
 * "expand inner axes": `if (B.w == A.c) B2 = B.reshape(1, 1, B.w)`), which the [1,C,1,1] form
 * of 1-D blobs gives for free. ncnn's other reading, a 1-D operand as long as the width, has no
 * such form; ONNX Runtime rejects that case at run time with a shape mismatch.
 */
export const binaryOp: LayerConverter = (layer, ctx) => {
  const opType = intParam(layer, 0, 0);
  const spec = BINARY_OPS[opType];
  if (!spec) throw unsupported(layer, `operation ${opType}`);
  const a = ctx.tensorOf(layer.inputs[0]);
  const withScalar = intParam(layer, 1, 0) !== 0;
  const bOperand = withScalar ? ctx.builder.addFloatInitializer(`${layer.name}_b`, [], [floatParam(layer, 2, 0)]) : ctx.tensorOf(layer.inputs[1]);
  const rank: BlobRank = withScalar ? ctx.rankOf(layer.inputs[0]) : (Math.max(ctx.rankOf(layer.inputs[0]), ctx.rankOf(layer.inputs[1])) as BlobRank);
  const operands = spec.reversed ? [bOperand, a] : [a, bOperand];
  ctx.builder.addNode(spec.op, operands, [ctx.define(layer.outputs[0], rank)], {}, layer.name);
};

export const pixelShuffle: LayerConverter = (layer, ctx) => {
  const factor = intParam(layer, 0, 1);
  // ncnn mode 0 takes input channel p*r*r + i*r + j (PyTorch pixel_shuffle = ONNX CRD);
  // mode 1 takes (i*r + j)*outc + p (ONNX DCR).
  const mode = intParam(layer, 1, 0) === 0 ? 'CRD' : 'DCR';
  ctx.builder.addNode('DepthToSpace', [featureMap(layer, ctx)], [ctx.define(layer.outputs[0])], { blocksize: factor, mode }, layer.name);
};
