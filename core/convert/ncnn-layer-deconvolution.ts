import { featureMap, formatError, kernelParams, LayerConverter, opWithActivation, unsupported } from './ncnn-context';
import { intParam } from './ncnn-param';

/**
 * ncnn Deconvolution (deconvolution.cpp) → ONNX ConvTranspose.
 *
 * ncnn scatters each input pixel times the kernel into a (w−1)·s + dil·(k−1) + 1 + output_pad
 * wide map pre-filled with the bias (no kernel flip), applies the fused activation, then cuts
 * pad_left/right/top/bottom off the edges. That is ConvTranspose with the same pads and
 * output_padding. ncnn stores the weights [out][in][kh][kw]; ConvTranspose wants [in][out][kh][kw].
 */
export const deconvolution: LayerConverter = (layer, ctx) => {
  const { numOutput, kernelW, kernelH, dilationW, dilationH, strideW, strideH, padLeft, padRight, padTop, padBottom, biasTerm, weightDataSize } = kernelParams(layer);
  const outputPadRight = intParam(layer, 18, 0);
  const outputPadBottom = intParam(layer, 19, outputPadRight);
  const outputW = intParam(layer, 20, 0);
  const outputH = intParam(layer, 21, outputW);
  if (intParam(layer, 28, 0) !== 0) throw unsupported(layer, 'dynamic weights (28=1)');
  // Negative pads are ncnn's "SAME" markers, resolved against output_w/output_h at run time.
  if ([padLeft, padRight, padTop, padBottom].some((p) => p < 0)) throw unsupported(layer, `padding ${[padLeft, padRight, padTop, padBottom].join(',')}`);
  if (outputW > 0 || outputH > 0) throw unsupported(layer, `an explicit output size (${outputW}×${outputH})`);
  if (outputPadRight < 0 || outputPadBottom < 0) throw unsupported(layer, `output padding ${outputPadRight},${outputPadBottom}`);
  const maxk = kernelW * kernelH;
  const inChannels = weightDataSize / (numOutput * maxk);
  if (!Number.isInteger(inChannels) || inChannels <= 0) {
    throw formatError(layer, `weight_data_size ${weightDataSize} does not fit ${numOutput} outputs × ${kernelW}×${kernelH} kernels`);
  }

  const input = featureMap(layer, ctx);
  const ncnnOrder = ctx.weights.readTagged(weightDataSize, `${layer.name} weights`);
  const onnxOrder = new Float32Array(weightDataSize);
  for (let o = 0; o < numOutput; o++) {
    for (let i = 0; i < inChannels; i++) {
      onnxOrder.set(ncnnOrder.subarray((o * inChannels + i) * maxk, (o * inChannels + i + 1) * maxk), (i * numOutput + o) * maxk);
    }
  }
  const b = ctx.builder;
  const inputs = [input, b.addFloatInitializer(`${layer.name}_W`, [inChannels, numOutput, kernelH, kernelW], onnxOrder)];
  if (biasTerm) inputs.push(b.addFloatInitializer(`${layer.name}_B`, [numOutput], ctx.weights.readRaw(numOutput, `${layer.name} bias`)));

  const attributes: Record<string, number[]> = {
    kernel_shape: [kernelH, kernelW],
    strides: [strideH, strideW],
    dilations: [dilationH, dilationW],
    pads: [padTop, padLeft, padBottom, padRight],
  };
  if (outputPadRight !== 0 || outputPadBottom !== 0) attributes.output_padding = [outputPadBottom, outputPadRight];
  opWithActivation(layer, ctx, 'ConvTranspose', inputs, attributes);
};
