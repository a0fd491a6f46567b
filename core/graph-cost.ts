import { onnx } from 'onnx-proto';

/**
 * What a super-resolution graph costs per pixel, read from its ONNX graph alone: multiply-adds
 * of the layers with weights (Conv, ConvTranspose, Gemm, MatMul), found by walking the graph from
 * its image input with a spatial scale factor per tensor (height and width relative to the
 * input's). Ops that change the spatial size (strided Conv, ConvTranspose, Resize, Upsample,
 * DepthToSpace, SpaceToDepth, pooling, stepped Slice, Reshape to a computed shape) change the
 * factor; Pad, Crop and Slice bounds only add a constant border, which vanishes per pixel.
 *
 * Shape arithmetic (Shape → Gather → Mul → Concat → Resize sizes, as exported graphs with dynamic
 * sizes do) is followed symbolically: each value is a linear form h·H + w·W + c in the input's
 * height H and width W, so a size computed as floor(H·2) still reads as "twice the input".
 * Tensors reduced over their spatial axes (GlobalAveragePool: a squeeze-excitation block) have a
 * factor of 0: their layers cost a constant per image, nothing per pixel.
 */
export interface GraphCost {
  /** Multiply-adds per input pixel (asymptotic: fixed borders and per-image constants drop out). */
  macsPerInputPixel: number;
  /** Output area ÷ input area: the scale squared for an upscaler. */
  outputAreaRatio: number;
  /** macsPerInputPixel ÷ outputAreaRatio. */
  macsPerOutputPixel: number;
  /** Multiply-adds per input pixel by op type (Conv, ConvTranspose...). */
  byOp: Record<string, number>;
  /**
   * The largest float32 input plus output of one convolution, in bytes per input pixel: the least
   * memory a window must have live at once (the tile planner's memory estimate starts from it).
   */
  convBytesPerInputPixel: number;
  /**
   * Nodes this walk could not follow (an unknown Resize size, MatMul of two activations): the
   * figures above leave them out or assume they keep the spatial size. Empty for the catalogue.
   */
  unresolved: string[];
}

/** h·H + w·W + c, in the input's height H and width W. NaN where a part is not known. */
interface Linear {
  h: number;
  w: number;
  c: number;
}

/** A feature map: spatial size relative to the input's; 0 once reduced over its spatial axes. */
interface MapInfo {
  kind: 'map';
  sh: number;
  sw: number;
}

/** A small tensor whose values matter (shapes, scales, pads), possibly symbolic. */
interface ValuesInfo {
  kind: 'values';
  values: Linear[];
  /** Present for constants (a small weight is decoded too). */
  dims?: number[];
}

/** A constant whose values are not read (large weights): only its dims. */
interface WeightInfo {
  kind: 'weight';
  dims: number[];
}

type TensorInfo = MapInfo | ValuesInfo | WeightInfo;

/** Initializers up to this many elements are decoded (shapes, scales); weights are not. */
const MAX_DECODED_ELEMENTS = 64;

const constant = (c: number): Linear => ({ h: 0, w: 0, c });
const UNKNOWN: Linear = { h: NaN, w: NaN, c: NaN };

export function graphCost(model: onnx.IModelProto | Uint8Array): GraphCost {
  const proto = model instanceof Uint8Array ? onnx.ModelProto.decode(model) : model;
  const graph = proto.graph;
  if (!graph) throw new Error('the ONNX model has no graph');
  const tensors = new Map<string, TensorInfo>();
  for (const init of graph.initializer ?? []) tensors.set(init.name ?? '', tensorInfo(init));
  const imageInput = (graph.input ?? []).find((i) => !tensors.has(i.name ?? ''));
  if (!imageInput) throw new Error('the ONNX graph has no input besides its initializers');
  tensors.set(imageInput.name ?? '', { kind: 'map', sh: 1, sw: 1 });

  const byOp: Record<string, number> = {};
  const unresolved: string[] = [];
  let convBytes = 0;
  const noteConvBytes = (channelsIn: number, input: MapInfo, channelsOut: number, output: MapInfo) => {
    convBytes = Math.max(convBytes, 4 * (channelsIn * input.sh * input.sw + channelsOut * output.sh * output.sw));
  };
  const addMacs = (op: string, macs: number) => {
    byOp[op] = (byOp[op] ?? 0) + macs;
  };

  for (const node of graph.node ?? []) {
    const op = node.opType ?? '';
    const label = `${op} ${node.name ?? ''}`.trim();
    const inputs = (node.input ?? []).map((name) => (name ? tensors.get(name) : undefined));
    const attrs = attributes(node);
    const outputs = node.output ?? [];
    const set = (info: TensorInfo, index = 0) => outputs[index] && tensors.set(outputs[index], info);
    const firstMap = inputs.find((t): t is MapInfo => t?.kind === 'map');
    // Broadcasting binary ops: the largest map wins ([1,C,1,1] gates keep the feature map's size).
    const widestMap = inputs.filter((t): t is MapInfo => t?.kind === 'map').sort((a, b) => b.sh * b.sw - a.sh * a.sw)[0];

    switch (op) {
      case 'Conv': {
        const x = inputs[0];
        const weight = constantDims(inputs[1]);
        if (x?.kind !== 'map' || !weight) {
          unresolved.push(label);
          if (x?.kind === 'map') set(x);
          break;
        }
        const [stridesH, stridesW] = (attrs.strides as number[] | undefined) ?? [1, 1];
        const out: MapInfo = { kind: 'map', sh: x.sh / stridesH, sw: x.sw / (stridesW ?? stridesH) };
        // W is [M, C/group, kH, kW]: one output position costs the product of its dims.
        addMacs(op, product(weight) * out.sh * out.sw);
        noteConvBytes(weight[1] * Number(attrs.group ?? 1), x, weight[0], out);
        set(out);
        break;
      }
      case 'ConvTranspose': {
        const x = inputs[0];
        const weight = constantDims(inputs[1]);
        if (x?.kind !== 'map' || !weight) {
          unresolved.push(label);
          if (x?.kind === 'map') set(x);
          break;
        }
        const [stridesH, stridesW] = (attrs.strides as number[] | undefined) ?? [1, 1];
        // W is [C, M/group, kH, kW]: each input position scatters into kH·kW outputs per channel.
        addMacs(op, product(weight) * x.sh * x.sw);
        const out: MapInfo = { kind: 'map', sh: x.sh * stridesH, sw: x.sw * (stridesW ?? stridesH) };
        noteConvBytes(weight[0], x, weight[1] * Number(attrs.group ?? 1), out);
        set(out);
        break;
      }
      case 'Gemm':
      case 'MatMul': {
        const a = inputs[0];
        const b = constantDims(inputs[1]);
        if (a?.kind !== 'map' || !b || b.length < 2) {
          // Two activations (attention) or an unknown operand: not counted.
          if (a?.kind === 'map' || inputs[1]?.kind === 'map') unresolved.push(label);
          if (firstMap) set(firstMap);
          break;
        }
        // A token matrix [pixels, K] times a [K, N] weight: K·N per pixel, as a 1×1 conv.
        const [k, n] = b.slice(-2);
        addMacs(op, k * n * a.sh * a.sw);
        set(a);
        break;
      }
      case 'Resize':
      case 'Upsample': {
        const x = inputs[0];
        if (x?.kind !== 'map') {
          if (x) set(x);
          break;
        }
        // Resize-11+: (X, roi, scales, sizes); Resize-10 and Upsample: (X, scales).
        const scales = op === 'Upsample' || (node.input ?? []).length === 2 ? inputs[1] : inputs[2];
        const sizes = inputs[3];
        if (scales?.kind === 'values' && scales.values.length >= 4) {
          set({ kind: 'map', sh: x.sh * scales.values[2].c, sw: x.sw * scales.values[3].c });
        } else if (sizes?.kind === 'values' && sizes.values.length >= 4 && Number.isFinite(sizes.values[2].h) && Number.isFinite(sizes.values[3].w)) {
          set({ kind: 'map', sh: sizes.values[2].h, sw: sizes.values[3].w });
        } else {
          unresolved.push(label);
          set(x);
        }
        break;
      }
      case 'DepthToSpace':
      case 'SpaceToDepth': {
        const x = inputs[0];
        const block = Number(attrs.blocksize ?? 1);
        const f = op === 'DepthToSpace' ? block : 1 / block;
        if (x?.kind === 'map') set({ kind: 'map', sh: x.sh * f, sw: x.sw * f });
        break;
      }
      case 'MaxPool':
      case 'AveragePool':
      case 'LpPool': {
        const x = inputs[0];
        const kernel = (attrs.kernel_shape as number[] | undefined) ?? [1, 1];
        const [sH, sW] = (attrs.strides as number[] | undefined) ?? kernel;
        if (x?.kind === 'map') set({ kind: 'map', sh: x.sh / sH, sw: x.sw / (sW ?? sH) });
        break;
      }
      case 'GlobalAveragePool':
      case 'GlobalMaxPool':
      case 'GlobalLpPool':
        if (inputs[0]?.kind === 'map') set({ kind: 'map', sh: 0, sw: 0 });
        break;
      case 'ReduceMean':
      case 'ReduceMax':
      case 'ReduceSum': {
        // Reduced over both spatial axes (the usual [2, 3]) → per-image; otherwise the size stays.
        const x = inputs[0];
        if (x?.kind !== 'map') break;
        const axes = (attrs.axes as number[] | undefined) ?? (inputs[1]?.kind === 'values' ? inputs[1].values.map((v) => v.c) : undefined);
        const spatial = axes === undefined || (axes.some((a) => a === 2 || a === -2) && axes.some((a) => a === 3 || a === -1));
        set(spatial ? { kind: 'map', sh: 0, sw: 0 } : x);
        break;
      }
      case 'Slice': {
        const x = inputs[0];
        if (x?.kind === 'values') {
          set({ kind: 'values', values: sliceValues(x.values, inputs) });
          break;
        }
        if (x?.kind !== 'map') break;
        // Stepped slices (space-to-depth done by hand) shrink the map; plain crops do not.
        const axes = inputs[3]?.kind === 'values' ? inputs[3].values.map((v) => v.c) : undefined;
        const steps = inputs[4]?.kind === 'values' ? inputs[4].values.map((v) => v.c) : undefined;
        let { sh, sw } = x;
        steps?.forEach((step, i) => {
          const axis = axes ? axes[i] : i;
          if (axis === 2 || axis === -2) sh /= Math.abs(step);
          if (axis === 3 || axis === -1) sw /= Math.abs(step);
        });
        set({ kind: 'map', sh, sw });
        break;
      }
      case 'Reshape': {
        const x = inputs[0];
        const shape = inputs[1];
        if (x?.kind === 'values') {
          set(x);
          break;
        }
        if (x?.kind !== 'map') break;
        // A shape computed from the input's size says where height and width went (pixel
        // shuffle written as Reshape/Transpose); a constant shape keeps the factors.
        const hDim = shape?.kind === 'values' ? shape.values.filter((v) => v.h !== 0 && Number.isFinite(v.h)) : [];
        const wDim = shape?.kind === 'values' ? shape.values.filter((v) => v.w !== 0 && Number.isFinite(v.w)) : [];
        set(hDim.length === 1 && wDim.length === 1 && hDim[0] !== wDim[0] ? { kind: 'map', sh: hDim[0].h, sw: wDim[0].w } : x);
        break;
      }
      case 'Shape': {
        const x = inputs[0];
        const dims = x?.kind === 'map' ? [UNKNOWN, UNKNOWN, { h: x.sh, w: 0, c: 0 }, { h: 0, w: x.sw, c: 0 }] : x?.kind === 'weight' ? x.dims.map(constant) : x?.kind === 'values' ? (x.dims ?? [x.values.length]).map(constant) : [];
        const start = Number(attrs.start ?? 0);
        const end = attrs.end === undefined ? dims.length : Number(attrs.end);
        set({ kind: 'values', values: dims.slice(start < 0 ? dims.length + start : start, end < 0 ? dims.length + end : end) });
        break;
      }
      case 'Constant': {
        const value = node.attribute?.find((a) => a.name === 'value')?.t;
        if (value) set(tensorInfo(value));
        break;
      }
      case 'Gather': {
        const x = inputs[0];
        const indices = inputs[1];
        if (x?.kind === 'values' && indices?.kind === 'values') {
          set({ kind: 'values', values: indices.values.map((i) => x.values[i.c < 0 ? x.values.length + i.c : i.c] ?? UNKNOWN) });
        } else if (x?.kind === 'map') set(x);
        break;
      }
      case 'Concat': {
        if (inputs.every((t) => t?.kind === 'values')) set({ kind: 'values', values: inputs.flatMap((t) => (t as ValuesInfo).values) });
        else if (firstMap) set(firstMap);
        break;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Mod': {
        if (inputs.every((t) => t?.kind === 'values')) {
          set({ kind: 'values', values: elementwise(op, (inputs[0] as ValuesInfo).values, (inputs[1] as ValuesInfo).values) });
        } else if (widestMap) set(widestMap);
        break;
      }
      case 'Cast':
      case 'Floor':
      case 'Ceil':
      case 'Round':
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Identity': {
        const x = inputs[0];
        // Rounding changes only the constant part of a linear size.
        if (x?.kind === 'values' && op !== 'Cast' && op !== 'Unsqueeze' && op !== 'Squeeze' && op !== 'Identity') {
          const round = op === 'Floor' ? Math.floor : op === 'Ceil' ? Math.ceil : Math.round;
          set({ kind: 'values', values: x.values.map((v) => (v.h === 0 && v.w === 0 ? constant(round(v.c)) : { ...v, c: NaN })) });
        } else if (x) set(x);
        break;
      }
      default: {
        // Activations, normalisations, Pad, Crop, Transpose, Split...: every output keeps the
        // widest map input's size.
        if (widestMap) outputs.forEach((_, i) => set(widestMap, i));
      }
    }
  }

  const outputName = graph.output?.[0]?.name ?? '';
  const out = tensors.get(outputName);
  if (out?.kind !== 'map') throw new Error(`could not follow the graph to its output ${JSON.stringify(outputName)}`);
  const macsPerInputPixel = Object.values(byOp).reduce((a, b) => a + b, 0);
  const outputAreaRatio = out.sh * out.sw;
  return { macsPerInputPixel, outputAreaRatio, macsPerOutputPixel: macsPerInputPixel / outputAreaRatio, byOp, convBytesPerInputPixel: convBytes, unresolved };
}

/** The dims of a constant operand (a weight), small or large; undefined for activations. */
function constantDims(t: TensorInfo | undefined): number[] | undefined {
  return t?.kind === 'weight' ? t.dims : t?.kind === 'values' ? t.dims : undefined;
}

function product(values: number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

function attributes(node: onnx.INodeProto): Record<string, number | number[] | undefined> {
  const T = onnx.AttributeProto.AttributeType;
  const out: Record<string, number | number[] | undefined> = {};
  for (const a of node.attribute ?? []) {
    if (a.type === T.INTS) out[a.name ?? ''] = (a.ints ?? []).map(toNumber);
    else if (a.type === T.INT) out[a.name ?? ''] = toNumber(a.i ?? 0);
    else if (a.type === T.FLOAT) out[a.name ?? ''] = a.f ?? 0;
  }
  return out;
}

/** int64 fields decode as Long objects when the long package is present, else as numbers. */
function toNumber(value: number | { toString(): string }): number {
  return typeof value === 'number' ? value : Number(value.toString());
}

function tensorInfo(t: onnx.ITensorProto): TensorInfo {
  const dims = (t.dims ?? []).map(toNumber);
  const count = product(dims);
  if (count > MAX_DECODED_ELEMENTS) return { kind: 'weight', dims };
  const values = decodeValues(t, count);
  return values ? { kind: 'values', values: values.map(constant), dims } : { kind: 'weight', dims };
}

function decodeValues(t: onnx.ITensorProto, count: number): number[] | undefined {
  const T = onnx.TensorProto.DataType;
  if (t.int64Data && t.int64Data.length > 0) return t.int64Data.map(toNumber);
  if (t.int32Data && t.int32Data.length > 0) return t.int32Data.map(Number);
  if (t.floatData && t.floatData.length > 0) return t.floatData.map(Number);
  if (t.doubleData && t.doubleData.length > 0) return t.doubleData.map(Number);
  const raw = t.rawData;
  if (!raw || raw.length === 0) return count === 0 ? [] : undefined;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const read: Partial<Record<number, [number, (offset: number) => number]>> = {
    [T.FLOAT]: [4, (o) => view.getFloat32(o, true)],
    [T.DOUBLE]: [8, (o) => view.getFloat64(o, true)],
    [T.INT64]: [8, (o) => Number(view.getBigInt64(o, true))],
    [T.INT32]: [4, (o) => view.getInt32(o, true)],
  };
  const reader = read[t.dataType ?? 0];
  if (!reader) return undefined;
  const [size, get] = reader;
  return Array.from({ length: raw.byteLength / size }, (_, i) => get(i * size));
}

/** Slice on a small values tensor (a shape): axis 0 only, constant bounds. */
function sliceValues(values: Linear[], inputs: (TensorInfo | undefined)[]): Linear[] {
  const bound = (t: TensorInfo | undefined) => (t?.kind === 'values' ? t.values[0]?.c : undefined);
  const n = values.length;
  const clamp = (v: number) => Math.max(0, Math.min(n, v < 0 ? n + v : v));
  const start = clamp(bound(inputs[1]) ?? 0);
  const end = clamp(Math.min(bound(inputs[2]) ?? n, n));
  return Number.isFinite(start) && Number.isFinite(end) ? values.slice(start, end) : values.map(() => UNKNOWN);
}

function elementwise(op: string, a: Linear[], b: Linear[]): Linear[] {
  const length = Math.max(a.length, b.length);
  const at = (v: Linear[], i: number) => v[v.length === 1 ? 0 : i] ?? UNKNOWN;
  const isConst = (v: Linear) => v.h === 0 && v.w === 0;
  return Array.from({ length }, (_, i) => {
    const x = at(a, i);
    const y = at(b, i);
    switch (op) {
      case 'Add':
        return { h: x.h + y.h, w: x.w + y.w, c: x.c + y.c };
      case 'Sub':
        return { h: x.h - y.h, w: x.w - y.w, c: x.c - y.c };
      case 'Mul':
        if (isConst(y)) return { h: x.h * y.c, w: x.w * y.c, c: x.c * y.c };
        if (isConst(x)) return { h: y.h * x.c, w: y.w * x.c, c: y.c * x.c };
        return UNKNOWN;
      case 'Div':
        if (isConst(y)) return { h: x.h / y.c, w: x.w / y.c, c: x.c / y.c };
        // Two sizes in the same axis (the network's output height over its padded input
        // height): their ratio for large images, which is the model's scale.
        if (x.w === 0 && y.w === 0 && y.h !== 0) return constant(x.h / y.h);
        if (x.h === 0 && y.h === 0 && y.w !== 0) return constant(x.w / y.w);
        return UNKNOWN;
      default:
        // Mod: bounded by the divisor, so nothing per pixel; the exact remainder is not known.
        return isConst(x) && isConst(y) ? constant(x.c % y.c) : { h: 0, w: 0, c: NaN };
    }
  });
}
