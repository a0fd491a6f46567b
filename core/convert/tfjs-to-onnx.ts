import { UpbridgeError } from '../errors';
import { ConvertResult, INPUT_NAME, OUTPUT_NAME } from './ncnn-to-onnx';
import { OnnxGraphBuilder } from './onnx-builder';
import { tfjsGeometry, TfjsGeometry } from './tfjs-geometry';
import { LayerContext, layerHandler, SUPPORTED_TFJS_LAYERS, TensorInfo, unsupported } from './tfjs-layers';
import { parseTfjsModel, TfjsLayer, TfjsModel } from './tfjs-model';
import { decodeTfjsWeights } from './tfjs-weights';

/**
 * TensorFlow.js layers model → ONNX, with the same interface to the pipeline as the ncnn
 * converter: input `INPUT_NAME` [1, 3, H, W] and output `OUTPUT_NAME` [1, 3, sH, sW], both NCHW
 * float RGB in 0..1. Models trained on 0..255 (UpscalerJS' RDN models) get the range change baked
 * in: input · 255 before the network and output / 255 after it. Clipping stays in the pipeline.
 */

export interface TfjsConvertOptions {
  /** Used in messages and recorded in the .onnx metadata. */
  modelName: string;
  /** The range the original model takes and returns: 1 (0..1) or 255 (0..255). */
  inputRange: 1 | 255;
}

export interface TfjsConvertResult extends ConvertResult, TfjsGeometry {
  /** Number of weight values (after dequantisation, all float32 in the .onnx). */
  parameterCount: number;
}

const RGB = 3;

function checkInputLayer(layer: TfjsLayer, modelName: string): void {
  if (layer.className !== 'InputLayer') {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: the model input "${layer.name}" is a ${layer.className}, not an InputLayer`);
  }
  const shape = layer.config.batch_input_shape ?? layer.config.batch_shape;
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: input "${layer.name}" has shape ${JSON.stringify(shape)}; expected [batch, height, width, 3]`);
  }
  // The tiler feeds tiles of any size; a fixed-size model would need padding the pipeline does not do.
  if (shape[1] !== null || shape[2] !== null || shape[3] !== RGB) {
    throw new UpbridgeError(
      'UPB_TFJS_UNSUPPORTED_MODEL',
      `TF.js model ${modelName}: input "${layer.name}" has shape ${JSON.stringify(shape)}; only any-size RGB inputs [null, null, null, 3] are supported`,
    );
  }
  const dtype = layer.config.dtype ?? 'float32';
  if (dtype !== 'float32') throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: input dtype ${dtype}; only float32 is supported`);
}

function checkLayerClasses(model: TfjsModel, modelName: string): void {
  const unknown = [...new Set(model.layers.filter((l) => l.name !== model.inputLayer && !layerHandler(l.className)).map((l) => l.className))];
  if (unknown.length === 0) return;
  const first = model.layers.find((l) => l.className === unknown[0])!;
  throw new UpbridgeError(
    'UPB_TFJS_UNSUPPORTED_LAYER',
    `TF.js model ${modelName}: unsupported layer class${unknown.length > 1 ? 'es' : ''} ${unknown.join(', ')} (first: "${first.name}"); supported: ${SUPPORTED_TFJS_LAYERS.join(', ')}`,
    { layerClasses: unknown },
  );
}

export function convertTfjsToOnnx(modelJson: unknown, weightData: Uint8Array, options: TfjsConvertOptions): TfjsConvertResult {
  const { modelName, inputRange } = options;
  if (inputRange !== 1 && inputRange !== 255) throw new UpbridgeError('UPB_INVALID_OPTION', `inputRange must be 1 or 255, got ${JSON.stringify(inputRange)}`);
  const model = parseTfjsModel(modelJson, modelName);
  const inputLayer = model.layers.find((l) => l.name === model.inputLayer)!;
  checkInputLayer(inputLayer, modelName);
  checkLayerClasses(model, modelName);
  const weights = decodeTfjsWeights(model.weightSpecs, weightData, modelName);

  const builder = new OnnxGraphBuilder();
  builder.addInput(INPUT_NAME, [1, RGB, 'height', 'width']);
  builder.reserve(OUTPUT_NAME);
  const used = new Set<string>();
  const ctx: LayerContext = {
    builder,
    weight(layer, suffix, shape) {
      const key = `${layer.name}/${suffix}`;
      const w = weights.get(key);
      if (!w) throw new UpbridgeError('UPB_TFJS_FORMAT', `TF.js model ${modelName}: weight "${key}" is missing from the manifest`);
      if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
        throw new UpbridgeError('UPB_TFJS_FORMAT', `TF.js model ${modelName}: weight "${key}" has shape [${w.shape}], the layer needs [${shape}]`);
      }
      used.add(key);
      return w.values;
    },
  };

  // UpscalerJS feeds its RDN models 0..255: scale the pipeline's 0..1 up before the first layer.
  let networkInput = INPUT_NAME;
  if (inputRange === 255) {
    networkInput = builder.uniqueName('input_255');
    builder.addNode('Mul', [INPUT_NAME, builder.addFloatInitializer('range_255', [], [255])], [networkInput], {}, 'to_input_range');
  }
  const tensors = new Map<string, TensorInfo>([[inputLayer.name, { name: networkInput, channels: RGB }]]);
  const finalName = (layer: TfjsLayer) => (layer.name === model.outputLayer && inputRange === 1 ? OUTPUT_NAME : builder.uniqueName(layer.name));

  for (const layer of model.layers) {
    if (layer === inputLayer) continue;
    if (layer.className === 'InputLayer') throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: a second InputLayer "${layer.name}"; upscalers have one input`);
    const inputs = layer.inputs.map((name) => {
      const t = tensors.get(name);
      if (!t) throw new UpbridgeError('UPB_TFJS_FORMAT', `TF.js model ${modelName}: layer "${layer.name}" takes "${name}", which no earlier layer produces`);
      return t;
    });
    if (inputs.length === 0) throw unsupported(layer, 'a layer with no inputs');
    const output = finalName(layer);
    const channels = layerHandler(layer.className)!.emit(layer, inputs, output, ctx);
    tensors.set(layer.name, { name: output, channels });
  }

  const unused = [...weights.keys()].filter((k) => !used.has(k));
  if (unused.length > 0) {
    throw new UpbridgeError('UPB_TFJS_FORMAT', `TF.js model ${modelName}: ${unused.length} weight(s) not used by any layer (${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}); the manifest does not match the topology`);
  }
  const result = tensors.get(model.outputLayer)!;
  if (result.channels !== RGB) {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: the output "${model.outputLayer}" has ${result.channels} channels; only RGB (3) outputs are supported`);
  }
  if (inputRange === 255) {
    builder.addNode('Div', [result.name, builder.addFloatInitializer('range_255', [], [255])], [OUTPUT_NAME], {}, 'from_output_range');
  } else if (result.name !== OUTPUT_NAME) {
    // Only when the output layer is the input layer itself (a model with no layers).
    builder.addNode('Identity', [result.name], [OUTPUT_NAME]);
  }
  builder.addOutput(OUTPUT_NAME, [1, RGB, 'out_height', 'out_width']);

  const geometry = tfjsGeometry(model, modelName);
  const { bytes, nodeCount } = builder.encode('upbridge-tfjs2onnx', { source_model: modelName, input_range: String(inputRange), scale: String(geometry.scale) });
  let parameterCount = 0;
  for (const w of weights.values()) parameterCount += w.values.length;
  return { onnx: bytes, layerCount: model.layers.length, nodeCount, parameterCount, ...geometry };
}
