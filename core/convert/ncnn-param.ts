import { UpbridgeError } from '../errors';

/**
 * Reader for ncnn's text `.param` format, as written by ncnn's own tools
 * (ncnn/src/net.cpp `load_param`, paramdict.cpp `load_param`):
 *
 *   7767517                      magic
 *   <layer count> <blob count>
 *   <type> <name> <in count> <out count> <in blobs...> <out blobs...> <k=v ...>
 *
 * A value is an int, or a float when it contains '.', 'e' or 'E'. A key at or below -23300 holds
 * an array for id (-23300 - key): "n,v1,...,vn".
 */
export type ParamValue = number | number[];

export interface NcnnLayer {
  type: string;
  name: string;
  inputs: string[];
  outputs: string[];
  params: Map<number, ParamValue>;
}

export interface NcnnGraph {
  layers: NcnnLayer[];
  blobCount: number;
}

const MAGIC = '7767517';
const ARRAY_KEY_BASE = -23300;

function formatError(message: string): UpbridgeError {
  return new UpbridgeError('UPB_NCNN_FORMAT', `ncnn .param: ${message}`);
}

function parseScalar(text: string, where: string): number {
  const isFloat = /[.eE]/.test(text);
  const value = isFloat ? Number.parseFloat(text) : Number.parseInt(text, 10);
  if (!Number.isFinite(value) || !/^[-+0-9.eE]+$/.test(text)) {
    throw formatError(`bad number "${text}" in ${where}`);
  }
  return value;
}

export function parseNcnnParam(text: string): NcnnGraph {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (lines[0] !== MAGIC) {
    throw formatError(`missing magic ${MAGIC} on the first line (binary .param.bin files are not supported)`);
  }
  const counts = (lines[1] ?? '').split(/\s+/).map((t) => Number.parseInt(t, 10));
  const [layerCount, blobCount] = counts;
  if (counts.length !== 2 || !Number.isInteger(layerCount) || !Number.isInteger(blobCount)) {
    throw formatError('second line must be "<layer count> <blob count>"');
  }
  if (lines.length - 2 !== layerCount) {
    throw formatError(`header declares ${layerCount} layers but the file has ${lines.length - 2}`);
  }

  const layers: NcnnLayer[] = [];
  for (let i = 2; i < lines.length; i++) {
    const tokens = lines[i].split(/\s+/);
    const [type, name] = tokens;
    const inCount = Number.parseInt(tokens[2], 10);
    const outCount = Number.parseInt(tokens[3], 10);
    if (!type || !name || !Number.isInteger(inCount) || !Number.isInteger(outCount)) {
      throw formatError(`line ${i + 1} is not "<type> <name> <in count> <out count> ..."`);
    }
    const inputs = tokens.slice(4, 4 + inCount);
    const outputs = tokens.slice(4 + inCount, 4 + inCount + outCount);
    if (inputs.length !== inCount || outputs.length !== outCount) {
      throw formatError(`layer ${name} lists fewer blobs than its counts`);
    }
    const params = new Map<number, ParamValue>();
    for (const token of tokens.slice(4 + inCount + outCount)) {
      const eq = token.indexOf('=');
      if (eq <= 0) throw formatError(`layer ${name}: parameter "${token}" is not key=value`);
      const key = Number.parseInt(token.slice(0, eq), 10);
      const raw = token.slice(eq + 1);
      const where = `layer ${name} parameter ${key}`;
      if (key <= ARRAY_KEY_BASE) {
        const [n, ...items] = raw.split(',');
        const values = items.map((v) => parseScalar(v, where));
        if (parseScalar(n, where) !== values.length) {
          throw formatError(`${where}: array length ${n} but ${values.length} values`);
        }
        params.set(ARRAY_KEY_BASE - key, values);
      } else {
        params.set(key, parseScalar(raw, where));
      }
    }
    layers.push({ type, name, inputs, outputs, params });
  }
  return { layers, blobCount };
}

/** Typed accessors with ncnn's defaults, so converters read like ncnn's load_param. */
export function intParam(layer: NcnnLayer, id: number, fallback: number): number {
  const v = layer.params.get(id);
  if (v === undefined) return fallback;
  if (Array.isArray(v)) throw formatError(`layer ${layer.name}: parameter ${id} should be a number`);
  return Math.trunc(v);
}

export function floatParam(layer: NcnnLayer, id: number, fallback: number): number {
  const v = layer.params.get(id);
  if (v === undefined) return fallback;
  if (Array.isArray(v)) throw formatError(`layer ${layer.name}: parameter ${id} should be a number`);
  return v;
}

export function arrayParam(layer: NcnnLayer, id: number): number[] {
  const v = layer.params.get(id);
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}
