import { onnx } from 'onnx-proto';
import { UpbridgeError } from '../errors';

/**
 * float32 ONNX graph → float16 graph for GPU execution providers (issue 8): weights and
 * activations in float16, the graph's inputs and outputs still float32 (a Cast at each), so
 * callers feed and read exactly what they do with the float32 model.
 *
 * Which tensors become float16 is decided by data flow, not by dtype alone: a float tensor is
 * float16 when it is computed from the image (the graph input). Float tensors computed only
 * from shapes stay float32; Interp's size computation (Shape → Cast → Mul by the scale → Floor →
 * Cast, ncnn-layer-interp.ts) must, because float16 holds integers exactly only up to 2048.
 * Constants (initializers and Constant nodes) follow their consumer: an operand of the image's
 * type ("T" in the ONNX op schema) of a float16 node is stored as float16; any other input
 * (Resize scales and roi, Pad pads, Slice bounds, shapes) keeps its type.
 *
 * Only the ops in FP16_OPS are accepted. That table lists, per op, which inputs share the
 * image's type; an op missing from it could have float inputs of its own type (Resize's scales,
 * BatchNormalization's statistics) that a guess would break, so it is refused, not guessed.
 */

const DataType = onnx.TensorProto.DataType;

/** Bump when the rules below change what is written: cached variants from older rules are made again. */
export const FP16_CONVERTER_VERSION = 1;

interface OpRule {
  /** Inputs that share the output's float type T ('all': every input). */
  sameType: readonly number[] | 'all';
  /** The output's type is not T: Shape gives int64, Cast gives its `to`. */
  output?: 'int64' | 'cast';
  /**
   * Computed in float32 between Casts even in the float16 graph. GlobalAveragePool (and
   * ReduceMean): ORT's WebGPU pool shader sums the whole plane in its input type
   * (onnxruntime/core/providers/webgpu/nn/pool.cc: `var value = f16(0); value += x_val`), and a
   * 256×256 tile of values near 1 sums past float16's 65504. The op reads its input once; the
   * float32 cost is negligible next to the convolutions.
   */
  float32?: true;
}

/** Every op the ncnn and TF.js converters emit (core/convert/), plus a few shape-neutral ones. */
export const FP16_OPS: Readonly<Record<string, OpRule>> = {
  Conv: { sameType: [0, 1, 2] },
  ConvTranspose: { sameType: [0, 1, 2] },
  Gemm: { sameType: [0, 1, 2] },
  MatMul: { sameType: [0, 1] },
  PRelu: { sameType: [0, 1] },
  Relu: { sameType: [0] },
  LeakyRelu: { sameType: [0] },
  Sigmoid: { sameType: [0] },
  Tanh: { sameType: [0] },
  Clip: { sameType: [0, 1, 2] },
  Identity: { sameType: [0] },
  Floor: { sameType: [0] },
  Add: { sameType: 'all' },
  Sub: { sameType: 'all' },
  Mul: { sameType: 'all' },
  Div: { sameType: 'all' },
  Mod: { sameType: 'all' },
  // Pow's exponent may have its own type; the converters give it the base's, so it follows.
  Pow: { sameType: 'all' },
  Max: { sameType: 'all' },
  Min: { sameType: 'all' },
  Concat: { sameType: 'all' },
  // Resize: roi (1) and scales (2) are float32 by schema whatever X is; sizes (3) int64.
  Resize: { sameType: [0] },
  DepthToSpace: { sameType: [0] },
  // Pad: pads (1) and axes (3) int64; constant_value (2) has X's type.
  Pad: { sameType: [0, 2] },
  Slice: { sameType: [0] },
  Reshape: { sameType: [0] },
  Transpose: { sameType: [0] },
  Flatten: { sameType: [0] },
  GlobalMaxPool: { sameType: [0] },
  GlobalAveragePool: { sameType: [0], float32: true },
  ReduceMean: { sameType: [0], float32: true },
  Shape: { sameType: [], output: 'int64' },
  Cast: { sameType: [], output: 'cast' },
};

export interface Fp16Stats {
  /** Float constants now stored as float16 (initializers and Constant values). */
  convertedTensors: number;
  convertedValues: number;
  /** Finite values beyond ±65504 stored as ±65504 (not as infinity). */
  clamped: number;
  /** Non-zero values below float16's smallest subnormal (2^-24 / 2) stored as ±0. */
  flushedToZero: number;
  /** Float tensors (constants or computed) left in float32, by name. */
  keptFloat32: string[];
  /** Cast nodes added (graph inputs, outputs, float32 islands). */
  castsAdded: number;
}

const F16_MAX = 65504;
const scratch = new DataView(new ArrayBuffer(4));

/**
 * IEEE 754 binary16 bits of `value` (first rounded to float32, the precision our weights have),
 * rounded to nearest, ties to even. Finite values beyond the range clamp to ±65504 rather than
 * become infinities: one out-of-range weight must not poison a whole feature map. Infinity and
 * NaN keep their meaning.
 */
export function float32ToFloat16Bits(value: number): number {
  scratch.setFloat32(0, value);
  const x = scratch.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7bff;
  if (e <= 0) {
    // Subnormal (or zero): the implicit 1 joins the mantissa, shifted right by 14 − e places.
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const tie = 1 << (shift - 1);
    if (rest > tie || (rest === tie && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa raises the exponent, which is the correctly rounded result;
  // only a carry into exponent 31 (65520 and above) must be clamped back to the largest finite.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return (half & 0x7fff) === 0x7c00 ? sign | 0x7bff : sign | half;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function unsupported(message: string, details?: Record<string, unknown>): UpbridgeError {
  return new UpbridgeError('UPB_MODEL_UNSUPPORTED', `float16 conversion: ${message}`, details);
}

function floatValues(tensor: onnx.ITensorProto): Float32Array {
  const count = (tensor.dims ?? []).reduce<number>((n, d) => n * Number(d), 1);
  if (tensor.rawData && tensor.rawData.length > 0) {
    const raw = tensor.rawData;
    if (raw.length !== count * 4) throw unsupported(`tensor "${tensor.name}" has ${raw.length} bytes of raw data for ${count} float32 values`);
    // ONNX raw data is little-endian; a DataView reads it so on any host and at any offset.
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Float32Array.from({ length: count }, (_, i) => view.getFloat32(i * 4, true));
  }
  const values = tensor.floatData ?? [];
  if (values.length !== count) throw unsupported(`tensor "${tensor.name}" has ${values.length} float values for dims [${(tensor.dims ?? []).join(', ')}]`);
  return Float32Array.from(values);
}

function toFloat16Tensor(tensor: onnx.ITensorProto, name: string, stats: Fp16Stats): onnx.ITensorProto {
  const values = floatValues(tensor);
  const raw = new Uint8Array(values.length * 2);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const bits = float32ToFloat16Bits(v);
    if (Number.isFinite(v) && Math.abs(v) > F16_MAX) stats.clamped++;
    if (v !== 0 && (bits & 0x7fff) === 0) stats.flushedToZero++;
    view.setUint16(i * 2, bits, true);
  }
  stats.convertedTensors++;
  stats.convertedValues += values.length;
  return { name, dims: tensor.dims, dataType: DataType.FLOAT16, rawData: raw, docString: tensor.docString };
}

function constantValue(node: onnx.INodeProto): onnx.ITensorProto | undefined {
  return node.attribute?.find((a) => a.name === 'value')?.t ?? undefined;
}

/** The float16 form of a float32 ModelProto; `model` is not changed. */
export function convertModelToFp16(model: onnx.IModelProto): { model: onnx.IModelProto; stats: Fp16Stats } {
  const graph = model.graph;
  if (!graph) throw unsupported('the model has no graph');
  if (model.metadataProps?.some((p) => p.key === 'upbridge_precision' && p.value === 'fp16')) throw unsupported('the model is already float16 (an fp16 variant); the source must be a float32 model');
  const stats: Fp16Stats = { convertedTensors: 0, convertedValues: 0, clamped: 0, flushedToZero: 0, keptFloat32: [], castsAdded: 0 };
  const nodes = graph.node ?? [];
  const initializers = graph.initializer ?? [];

  const used = new Set<string>();
  for (const t of initializers) used.add(t.name ?? '');
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) used.add(v.name ?? '');
  for (const n of nodes) for (const name of [...(n.input ?? []), ...(n.output ?? []), n.name ?? '']) used.add(name);
  const uniqueName = (base: string) => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };

  // Types in the float32 graph, and which tensors are constants (free to take either type).
  const type = new Map<string, number>();
  const constants = new Set<string>();
  for (const t of initializers) {
    type.set(t.name ?? '', t.dataType ?? 0);
    constants.add(t.name ?? '');
  }
  const imageInputs: string[] = [];
  for (const input of graph.input ?? []) {
    const name = input.name ?? '';
    if (constants.has(name)) continue;
    const elemType = input.type?.tensorType?.elemType ?? 0;
    if (elemType === DataType.FLOAT16) throw unsupported(`graph input "${name}" is already float16; the source must be a float32 model`);
    type.set(name, elemType);
    if (elemType === DataType.FLOAT) imageInputs.push(name);
  }

  // Pass 1, in graph order (ONNX requires topological order): which nodes compute in float16,
  // and where each float constant is read as float16 and where as float32.
  const half = new Set<string>(imageInputs);
  const halfNodes = new Set<onnx.INodeProto>();
  const readAsHalf = new Set<string>();
  const readAsFloat = new Set<string>();
  for (const node of nodes) {
    const op = node.opType ?? '';
    if (op === 'Constant') {
      const value = constantValue(node);
      const out = node.output?.[0] ?? '';
      // value_float(s) forms are not rewritten: such a constant is cast where float16 reads it.
      const scalarFloat = node.attribute?.some((a) => a.name === 'value_float' || a.name === 'value_floats');
      type.set(out, value ? (value.dataType ?? 0) : scalarFloat ? DataType.FLOAT : 0);
      if (value) constants.add(out);
      continue;
    }
    const rule = FP16_OPS[op];
    if (!rule || (node.domain && node.domain !== 'ai.onnx')) {
      throw unsupported(`op ${node.domain ? `${node.domain}.` : ''}${op} (node "${node.name}") is not supported; supported: Constant, ${Object.keys(FP16_OPS).join(', ')}`, { op, node: node.name });
    }
    const inputs = node.input ?? [];
    const slots = sameTypeSlots(rule, inputs);
    const typed = [...slots].map((i) => inputs[i]).filter((name) => name !== '');
    const outType = rule.output === 'int64' ? DataType.INT64 : rule.output === 'cast' ? Number(node.attribute?.find((a) => a.name === 'to')?.i ?? 0) : (type.get(typed[0]) ?? 0);
    // A Cast to float of an image tensor is a float→float no-op; it stays in float16.
    const fromImage = rule.output === 'cast' ? outType === DataType.FLOAT && half.has(inputs[0]) : typed.some((name) => half.has(name));
    for (const out of node.output ?? []) type.set(out, outType);
    const isHalf = fromImage && outType === DataType.FLOAT && !rule.float32;
    if (isHalf) {
      halfNodes.add(node);
      for (const out of node.output ?? []) half.add(out);
    }
    inputs.forEach((name, i) => {
      if (constants.has(name) && type.get(name) === DataType.FLOAT) (isHalf && slots.has(i) ? readAsHalf : readAsFloat).add(name);
    });
  }

  // A constant read only as float16 is converted under its own name; one read both ways keeps
  // its float32 form and gains a float16 copy.
  const halfName = new Map<string, string>();
  for (const name of readAsHalf) halfName.set(name, readAsFloat.has(name) ? uniqueName(`${name}_fp16`) : name);

  const cast = (input: string, output: string, to: number): onnx.INodeProto => {
    stats.castsAdded++;
    return { opType: 'Cast', input: [input], output: [output], name: uniqueName(`${output}_cast`), attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to }] };
  };

  // Pass 2: rewrite. Image inputs are cast to float16 once, at the front; image outputs are
  // produced under another name and cast back to float32 at the end.
  const renamed = new Map<string, string>();
  const front: onnx.INodeProto[] = [];
  for (const name of imageInputs) {
    renamed.set(name, uniqueName(`${name}_fp16`));
    front.push(cast(name, renamed.get(name)!, DataType.FLOAT16));
  }
  const back: onnx.INodeProto[] = [];
  for (const output of graph.output ?? []) {
    const name = output.name ?? '';
    if (!half.has(name) || imageInputs.includes(name)) continue;
    renamed.set(name, uniqueName(`${name}_fp16`));
    back.push(cast(renamed.get(name)!, name, DataType.FLOAT));
  }

  const body: onnx.INodeProto[] = [];
  const casts = new Map<string, string>(); // `${tensor}>${to}` → the cast's output, made once
  const castTo = (name: string, to: number): string => {
    const key = `${name}>${to}`;
    let out = casts.get(key);
    if (!out) {
      out = uniqueName(`${name}_${to === DataType.FLOAT16 ? 'fp16' : 'fp32'}`);
      body.push(cast(renamed.get(name) ?? name, out, to));
      casts.set(key, out);
    }
    return out;
  };
  for (const node of nodes) {
    const op = node.opType ?? '';
    if (op === 'Constant') continue; // emitted below, in the forms that are read
    const rule = FP16_OPS[op];
    const slots = sameTypeSlots(rule, node.input ?? []);
    const isHalf = halfNodes.has(node);
    const inputs = (node.input ?? []).map((name, i) => {
      if (name === '') return name;
      if (isHalf && slots.has(i) && type.get(name) === DataType.FLOAT && !half.has(name)) {
        // A float32 operand of a float16 node: a constant's float16 form, else a Cast.
        return halfName.get(name) ?? castTo(name, DataType.FLOAT16);
      }
      // A float16 tensor read by a float32 node: the float32 island's entry Cast. Shape reads
      // any type, and Cast converts by itself.
      if (!isHalf && half.has(name) && op !== 'Shape' && op !== 'Cast') return castTo(name, DataType.FLOAT);
      return renamed.get(name) ?? name;
    });
    const outputs = (node.output ?? []).map((name) => renamed.get(name) ?? name);
    const attribute = op === 'Cast' && isHalf ? (node.attribute ?? []).map((a) => (a.name === 'to' ? { ...a, i: DataType.FLOAT16 } : a)) : node.attribute;
    body.push({ ...node, input: inputs, output: outputs, attribute });
  }

  const newInitializers: onnx.ITensorProto[] = [];
  for (const t of initializers) {
    const name = t.name ?? '';
    if (halfName.has(name)) newInitializers.push(toFloat16Tensor(t, halfName.get(name)!, stats));
    if (!halfName.has(name) || readAsFloat.has(name)) newInitializers.push(t);
  }
  const constantNodes: onnx.INodeProto[] = [];
  for (const node of nodes.filter((n) => n.opType === 'Constant')) {
    const name = node.output?.[0] ?? '';
    const value = constantValue(node);
    if (halfName.has(name) && value) {
      const out = halfName.get(name)!;
      const tensor = toFloat16Tensor(value, '', stats);
      constantNodes.push({ ...node, output: [out], name: out === name ? node.name : uniqueName(`${out}_constant`), attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: tensor }] });
    }
    if (!halfName.has(name) || readAsFloat.has(name)) constantNodes.push(node);
  }
  for (const [name, t] of type) if (t === DataType.FLOAT && !half.has(name) && !imageInputs.includes(name) && !halfName.has(name)) stats.keptFloat32.push(name);
  for (const name of readAsFloat) if (halfName.has(name)) stats.keptFloat32.push(name);

  const valueInfo = (graph.valueInfo ?? []).map((v) => {
    const name = v.name ?? '';
    if (!half.has(name) || !v.type?.tensorType) return v;
    return { ...v, name: renamed.get(name) ?? name, type: { ...v.type, tensorType: { ...v.type.tensorType, elemType: DataType.FLOAT16 } } };
  });

  const metadataProps = [...(model.metadataProps ?? []).filter((p) => p.key !== 'upbridge_precision'), { key: 'upbridge_precision', value: 'fp16' }];
  return {
    model: { ...model, metadataProps, graph: { ...graph, node: [...constantNodes, ...front, ...body, ...back], initializer: newInitializers, valueInfo } },
    stats,
  };
}

function sameTypeSlots(rule: OpRule, inputs: readonly string[]): Set<number> {
  return new Set(rule.sameType === 'all' ? inputs.map((_, i) => i) : rule.sameType.filter((i) => i < inputs.length));
}

/** `convertModelToFp16` on encoded bytes. */
export function convertOnnxToFp16(bytes: Uint8Array): { onnx: Uint8Array; stats: Fp16Stats } {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw unsupported(`not an ONNX model (${e instanceof Error ? e.message : String(e)})`);
  }
  const { model: converted, stats } = convertModelToFp16(model);
  return { onnx: onnx.ModelProto.encode(converted).finish(), stats };
}
