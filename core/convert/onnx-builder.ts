import { onnx } from 'onnx-proto';

/**
 * A small graph builder over onnx-proto's generated protobuf classes: converters add nodes and
 * float initializers by name, then `encode()` yields the `.onnx` bytes.
 */
export const OPSET = 17;

type AttrValue = number | number[] | string | { ints: number[] } | { float: number };

export interface BuiltModel {
  bytes: Uint8Array;
  nodeCount: number;
}

export class OnnxGraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();
  private counter = 0;

  /** A tensor name that no other tensor in the graph uses. */
  uniqueName(base: string): string {
    let name = base;
    while (this.usedNames.has(name)) name = `${base}_${++this.counter}`;
    this.usedNames.add(name);
    return name;
  }

  reserve(name: string): void {
    this.usedNames.add(name);
  }

  addInput(name: string, dims: (number | string)[]): void {
    this.reserve(name);
    this.inputs.push(valueInfo(name, dims));
  }

  addOutput(name: string, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, dims));
  }

  addFloatInitializer(base: string, dims: number[], values: Float32Array | number[]): string {
    const name = this.uniqueName(base);
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /**
   * An int64 initializer (shapes, pads, slice bounds). Values are bigint so INT64_MAX, ONNX's
   * "to the end" for Slice, survives: a JS number cannot hold it exactly.
   */
  addInt64Initializer(base: string, dims: number[], values: readonly (number | bigint)[]): string {
    const name = this.uniqueName(base);
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.INT64,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  addNode(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttrValue> = {}, name?: string): void {
    this.nodes.push({
      opType,
      input: inputs,
      output: outputs,
      name: name ?? this.uniqueName(`${opType}_node`),
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
  }

  encode(producer: string, metadata: Record<string, string> = {}): BuiltModel {
    const model: onnx.IModelProto = {
      irVersion: 8,
      producerName: producer,
      opsetImport: [{ domain: '', version: OPSET }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: producer,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    return { bytes: onnx.ModelProto.encode(model).finish(), nodeCount: this.nodes.length };
  }
}

function valueInfo(name: string, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.INTS, ints: value.ints };
}
