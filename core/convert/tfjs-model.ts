import { UpbridgeError } from '../errors';

/**
 * Reads a TensorFlow.js layers-model `model.json` (what `tensorflowjs_converter` writes for a
 * Keras model) into a small typed form: the layers of the Functional graph with their inputs,
 * and the weight specs in manifest order. Only the single-node Keras 2 serialisation is read
 * (`inbound_nodes: [[[layer, 0, 0, {}], ...]]`); anything else is refused here with a message
 * that says where, rather than failing later in a layer converter.
 */

export interface TfjsLayer {
  className: string;
  name: string;
  config: Record<string, unknown>;
  /** Names of the layers whose (only) output this layer takes, in order. */
  inputs: string[];
}

export interface TfjsQuantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
}

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: TfjsQuantization;
}

export interface TfjsModel {
  layers: TfjsLayer[];
  inputLayer: string;
  outputLayer: string;
  /** Every group's weights, groups in manifest order: the order of the bytes in the shards. */
  weightSpecs: TfjsWeightSpec[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function formatError(modelName: string, what: string): UpbridgeError {
  return new UpbridgeError('UPB_TFJS_FORMAT', `TF.js model ${modelName}: ${what}`);
}

function field<T>(modelName: string, obj: Json, key: string, where: string, check: (v: unknown) => v is T, expected: string): T {
  const v = obj[key];
  if (!check(v)) throw formatError(modelName, `${where}.${key} should be ${expected}, found ${JSON.stringify(v) ?? 'nothing'}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isDim = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isShape = (v: unknown): v is number[] => Array.isArray(v) && v.every(isDim);

/** A `[layerName, nodeIndex, tensorIndex]` reference; upbridge only maps single-node, single-output layers. */
function tensorRef(modelName: string, ref: unknown, where: string): string {
  if (!Array.isArray(ref) || typeof ref[0] !== 'string') {
    throw formatError(modelName, `${where} should be [layerName, nodeIndex, tensorIndex, ...], found ${JSON.stringify(ref)}`);
  }
  if (ref[1] !== 0 || ref[2] !== 0) {
    throw new UpbridgeError(
      'UPB_TFJS_UNSUPPORTED_MODEL',
      `TF.js model ${modelName}: ${where} refers to node ${ref[1]}, tensor ${ref[2]} of "${ref[0]}"; only layers called once with one output are supported`,
    );
  }
  if (ref.length > 3 && isObject(ref[3]) && Object.keys(ref[3]).length > 0) {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: ${where} passes call arguments ${JSON.stringify(ref[3])}, which are not supported`);
  }
  return ref[0];
}

function readLayer(modelName: string, raw: unknown, index: number): TfjsLayer {
  const where = `layers[${index}]`;
  if (!isObject(raw)) throw formatError(modelName, `${where} is not an object`);
  const className = field(modelName, raw, 'class_name', where, isString, 'a string');
  const config = field(modelName, raw, 'config', where, isObject, 'an object');
  const name = typeof raw.name === 'string' ? raw.name : field(modelName, config, 'name', `${where}.config`, isString, 'a string');
  const nodes = field(modelName, raw, 'inbound_nodes', where, isArray, 'an array');
  if (nodes.length > 1) {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: layer "${name}" is called ${nodes.length} times (shared layer); only layers called once are supported`);
  }
  let inputs: string[] = [];
  if (nodes.length === 1) {
    // Keras 3 writes nodes as {args, kwargs} objects; Keras 2 (what tfjs-layers reads) as arrays.
    if (!Array.isArray(nodes[0])) throw formatError(modelName, `${where}.inbound_nodes[0] is not a Keras 2 node list (Keras 3 format?)`);
    inputs = nodes[0].map((ref, i) => tensorRef(modelName, ref, `layer "${name}" input ${i}`));
  }
  return { className, name, config, inputs };
}

function readQuantization(modelName: string, raw: unknown, where: string): TfjsQuantization {
  if (!isObject(raw)) throw formatError(modelName, `${where}.quantization is not an object`);
  const dtype = raw.dtype;
  if (dtype === 'float16') return { dtype };
  if (dtype === 'uint8' || dtype === 'uint16') {
    // q·scale + min, as tfjs-core's decodeWeights does; both numbers are required there too.
    if (typeof raw.scale !== 'number' || typeof raw.min !== 'number') {
      throw formatError(modelName, `${where}.quantization (${dtype}) needs numeric scale and min, found ${JSON.stringify(raw)}`);
    }
    return { dtype, scale: raw.scale, min: raw.min };
  }
  throw formatError(modelName, `${where}.quantization.dtype ${JSON.stringify(dtype)} is not uint8, uint16 or float16`);
}

function readWeightSpecs(modelName: string, manifest: unknown): TfjsWeightSpec[] {
  if (!Array.isArray(manifest)) throw formatError(modelName, 'weightsManifest should be an array of {paths, weights} groups');
  const specs: TfjsWeightSpec[] = [];
  manifest.forEach((group, g) => {
    if (!isObject(group)) throw formatError(modelName, `weightsManifest[${g}] is not an object`);
    const weights = field(modelName, group, 'weights', `weightsManifest[${g}]`, isArray, 'an array');
    weights.forEach((w, i) => {
      const where = `weightsManifest[${g}].weights[${i}]`;
      if (!isObject(w)) throw formatError(modelName, `${where} is not an object`);
      const spec: TfjsWeightSpec = {
        name: field(modelName, w, 'name', where, isString, 'a string'),
        shape: field(modelName, w, 'shape', where, isShape, 'an array of non-negative integers'),
        dtype: field(modelName, w, 'dtype', where, isString, 'a string'),
      };
      if (w.quantization !== undefined) spec.quantization = readQuantization(modelName, w.quantization, where);
      specs.push(spec);
    });
  });
  return specs;
}

/**
 * The shard file names, in the order their bytes must be concatenated for `weightData`
 * (groups in manifest order, each group's `paths` in order), relative to the model.json.
 */
export function tfjsShardPaths(modelJson: unknown, modelName = 'model.json'): string[] {
  if (!isObject(modelJson) || !Array.isArray(modelJson.weightsManifest)) throw formatError(modelName, 'no weightsManifest array');
  return modelJson.weightsManifest.flatMap((group, g) => {
    if (!isObject(group) || !isArray(group.paths) || !group.paths.every(isString)) throw formatError(modelName, `weightsManifest[${g}].paths should be an array of strings`);
    return group.paths;
  });
}

export function parseTfjsModel(modelJson: unknown, modelName: string): TfjsModel {
  if (!isObject(modelJson)) throw formatError(modelName, 'model.json is not a JSON object');
  if (modelJson.format !== undefined && modelJson.format !== 'layers-model') {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: format ${JSON.stringify(modelJson.format)}; only layers models ("layers-model") are supported`);
  }
  const topology = field(modelName, modelJson, 'modelTopology', 'model.json', isObject, 'an object');
  // tensorflowjs_converter wraps the Keras config in {keras_version, backend, model_config};
  // tf.LayersModel.save() writes the bare {class_name, config}.
  const modelConfig = isObject(topology.model_config) ? topology.model_config : topology;
  const className = modelConfig.class_name;
  if (className !== 'Functional' && className !== 'Model') {
    throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: model class ${JSON.stringify(className)}; only Functional (Model) graphs are supported`);
  }
  const config = field(modelName, modelConfig, 'config', 'model_config', isObject, 'an object');
  const rawLayers = field(modelName, config, 'layers', 'model_config.config', isArray, 'an array');
  const layers = rawLayers.map((l, i) => readLayer(modelName, l, i));

  const names = new Set<string>();
  for (const l of layers) {
    if (names.has(l.name)) throw formatError(modelName, `two layers are named "${l.name}"`);
    names.add(l.name);
  }
  const single = (key: 'input_layers' | 'output_layers'): string => {
    const refs = field(modelName, config, key, 'model_config.config', isArray, 'an array');
    if (refs.length !== 1) {
      throw new UpbridgeError('UPB_TFJS_UNSUPPORTED_MODEL', `TF.js model ${modelName}: ${refs.length} ${key.replace('_layers', 's')}; upscalers have exactly one`);
    }
    const name = tensorRef(modelName, refs[0], `${key}[0]`);
    if (!names.has(name)) throw formatError(modelName, `${key} names "${name}", which is not a layer of the model`);
    return name;
  };
  return {
    layers,
    inputLayer: single('input_layers'),
    outputLayer: single('output_layers'),
    weightSpecs: readWeightSpecs(modelName, modelJson.weightsManifest),
  };
}
