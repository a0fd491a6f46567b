import { featureMap, formatError, LayerConverter, opWithActivation, unsupported } from './ncnn-context';
import { intParam } from './ncnn-param';

/**
 * The layers of squeeze-and-excitation blocks (Real-CUGAN, waifu2x cunet), which make and use
 * ncnn 1-D blobs: global Pooling (feature map → vector), InnerProduct (vector → vector) and Scale
 * (feature map × vector, per channel). A 1-D blob of length C is the tensor [1,C,1,1] (see
 * ncnn-context.ts), so a vector layer is a 1×1 convolution and the per-channel product a Mul.
 */

/**
 * pooling.cpp with global_pooling: `top_blob.create(channels)`, each entry the channel's mean
 * (sum / (w·h)) or max. Windowed and adaptive pooling are not used by any catalogued model.
 */
export const pooling: LayerConverter = (layer, ctx) => {
  const type = intParam(layer, 0, 0);
  if (intParam(layer, 4, 0) === 0) throw unsupported(layer, `windowed pooling (4=0, kernel ${intParam(layer, 1, 0)}, stride ${intParam(layer, 2, 1)})`);
  if (type !== 0 && type !== 1) throw unsupported(layer, `pooling type ${type}`);
  const op = type === 0 ? 'GlobalMaxPool' : 'GlobalAveragePool';
  ctx.builder.addNode(op, [featureMap(layer, ctx)], [ctx.define(layer.outputs[0], 1)], {}, layer.name);
};

/**
 * innerproduct.cpp on a 1-D blob: out[p] = act(bias[p] + Σ_i W[p·I + i] · in[i]), weights
 * load(weight_data_size, 0) then load(num_output, 1). The [O][I] layout is a [O, I, 1, 1] Conv kernel.
 * On a 3-D blob ncnn flattens C×H×W first; nothing catalogued does that, so it is refused.
 */
export const innerProduct: LayerConverter = (layer, ctx) => {
  const numOutput = intParam(layer, 0, 0);
  const biasTerm = intParam(layer, 1, 0);
  const weightDataSize = intParam(layer, 2, 0);
  if (intParam(layer, 8, 0) !== 0) throw unsupported(layer, 'int8 quantisation');
  const blob = layer.inputs[0];
  const input = ctx.tensorOf(blob);
  if (ctx.rankOf(blob) !== 1) throw unsupported(layer, `input blob "${blob}" is a 3-D feature map; InnerProduct (flattening C×H×W) on a 3-D blob`);
  const numInput = weightDataSize / numOutput;
  if (!Number.isInteger(numInput) || numInput <= 0) throw formatError(layer, `weight_data_size ${weightDataSize} is not a multiple of num_output ${numOutput}`);

  const b = ctx.builder;
  const inputs = [input, b.addFloatInitializer(`${layer.name}_W`, [numOutput, numInput, 1, 1], ctx.weights.readTagged(weightDataSize, `${layer.name} weights`))];
  if (biasTerm) inputs.push(b.addFloatInitializer(`${layer.name}_B`, [numOutput], ctx.weights.readRaw(numOutput, `${layer.name} bias`)));
  opWithActivation(layer, ctx, 'Conv', inputs, { kernel_shape: [1, 1] }, 1);
};

/**
 * scale.cpp. With 0=-233 the scale is the second input blob (one value per channel) and
 * load_model reads nothing, not even a bias. Otherwise scale (and bias, with 1=1) are raw float32
 * vectors of 0=C entries: x·s (+ b) per channel.
 */
export const scale: LayerConverter = (layer, ctx) => {
  const scaleDataSize = intParam(layer, 0, 0);
  const biasTerm = intParam(layer, 1, 0);
  const b = ctx.builder;
  const x = ctx.tensorOf(layer.inputs[0]);
  const rank = ctx.rankOf(layer.inputs[0]);
  if (scaleDataSize === -233) {
    if (layer.inputs.length < 2) throw formatError(layer, '0=-233 takes the scale from a second input blob, and there is none');
    if (biasTerm) throw unsupported(layer, 'a bias with a scale blob (ncnn loads no bias then)');
    const scaleBlob = layer.inputs[1];
    const s = ctx.tensorOf(scaleBlob);
    if (ctx.rankOf(scaleBlob) !== 1) throw unsupported(layer, `scale blob "${scaleBlob}" is 3-D; a Scale by a feature map`);
    b.addNode('Mul', [x, s], [ctx.define(layer.outputs[0], rank)], {}, layer.name);
    return;
  }
  if (scaleDataSize <= 0) throw formatError(layer, `scale_data_size ${scaleDataSize}`);
  const s = b.addFloatInitializer(`${layer.name}_scale`, [1, scaleDataSize, 1, 1], ctx.weights.readRaw(scaleDataSize, `${layer.name} scale`));
  if (!biasTerm) {
    b.addNode('Mul', [x, s], [ctx.define(layer.outputs[0], rank)], {}, layer.name);
    return;
  }
  const bias = b.addFloatInitializer(`${layer.name}_bias`, [1, scaleDataSize, 1, 1], ctx.weights.readRaw(scaleDataSize, `${layer.name} bias`));
  const scaled = b.uniqueName(`${layer.name}_scaled`);
  b.addNode('Mul', [x, s], [scaled], {}, layer.name);
  b.addNode('Add', [scaled, bias], [ctx.define(layer.outputs[0], rank)]);
};
