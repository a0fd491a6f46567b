import { thrown } from '../../helpers';
import { arrayParam, floatParam, intParam, NcnnLayer, parseNcnnParam } from '../../../core/convert/ncnn-param';

/** A small but realistic .param: counts, multi-blob layers, int/float/array values. */
const PARAM = [
  '7767517',
  '5 6',
  'Input            input     0 1 data 0=5 1=3 2=3',
  'Convolution      conv0     1 1 data c0 0=64 1=3 4=1 5=1 6=1728 9=2 -23310=1,2.000000e-01',
  'Split            split0    1 2 c0 s0 s1',
  'Eltwise          sum0      2 1 s0 s1 e0 0=1 -23301=2,2.000000e-01,1.000000e+00',
  'Interp           up0       1 1 e0 out 0=1 1=2.000000e+00 2=2.5 3=-4',
  '',
].join('\n');

function layer(name: string): NcnnLayer {
  const found = parseNcnnParam(PARAM).layers.find((l) => l.name === name);
  if (!found) throw new Error(`no layer ${name}`);
  return found;
}


describe('parseNcnnParam', () => {
  test('reads the blob count and one layer per line after the header', () => {
    const graph = parseNcnnParam(PARAM);
    expect(graph.blobCount).toBe(6);
    expect(graph.layers.map((l) => l.type)).toEqual(['Input', 'Convolution', 'Split', 'Eltwise', 'Interp']);
    expect(graph.layers.map((l) => l.name)).toEqual(['input', 'conv0', 'split0', 'sum0', 'up0']);
  });

  test('splits input and output blobs by the declared counts', () => {
    expect(layer('input').inputs).toEqual([]);
    expect(layer('input').outputs).toEqual(['data']);
    expect(layer('split0').inputs).toEqual(['c0']);
    expect(layer('split0').outputs).toEqual(['s0', 's1']);
    expect(layer('sum0').inputs).toEqual(['s0', 's1']);
    expect(layer('sum0').outputs).toEqual(['e0']);
    expect(layer('split0').params.size).toBe(0);
  });

  test('reads integer values as integers and values with ".", "e" or "E" as floats', () => {
    const conv = layer('conv0');
    expect(conv.params.get(0)).toBe(64);
    expect(conv.params.get(6)).toBe(1728);
    const up = layer('up0');
    expect(up.params.get(1)).toBe(2);
    expect(up.params.get(2)).toBe(2.5);
    expect(up.params.get(3)).toBe(-4);
    const floats = parseNcnnParam('7767517\n1 1\nInput in 0 1 x 0=2.000000e-01 1=1E2 2=-3.5\n').layers[0];
    expect(floats.params.get(0)).toBeCloseTo(0.2, 12);
    expect(floats.params.get(1)).toBe(100);
    expect(floats.params.get(2)).toBe(-3.5);
  });

  test('stores an array key -233xx under id xx with its values (length prefix dropped)', () => {
    const conv = layer('conv0');
    expect(conv.params.has(-23310)).toBe(false);
    expect(conv.params.get(10)).toEqual([0.2]);
    expect(layer('sum0').params.get(1)).toEqual([0.2, 1]);
  });

  test('accepts CRLF line endings, blank lines and runs of spaces', () => {
    const text = '7767517\r\n\r\n2   2\r\nInput  in 0 1 x 0=3\r\nSplit s 1 1 x y\r\n\r\n';
    const graph = parseNcnnParam(text);
    expect(graph.layers).toHaveLength(2);
    expect(graph.layers[1].inputs).toEqual(['x']);
    expect(graph.layers[1].outputs).toEqual(['y']);
  });

  test('rejects a file without the 7767517 magic line', () => {
    const e = thrown(() => parseNcnnParam(PARAM.replace('7767517', '7767518')));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toMatch(/magic/);
    expect(e.message).toContain('7767517');
    expect(thrown(() => parseNcnnParam('')).code).toBe('UPB_NCNN_FORMAT');
  });

  test('rejects a header whose layer count differs from the number of layer lines', () => {
    const e = thrown(() => parseNcnnParam(PARAM.replace('5 6', '6 6')));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('declares 6 layers but the file has 5');
  });

  test('rejects a malformed count line', () => {
    const e = thrown(() => parseNcnnParam(PARAM.replace('5 6', '5')));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toMatch(/layer count.*blob count/);
  });

  test('rejects an array whose declared length does not match its values', () => {
    const e = thrown(() => parseNcnnParam(PARAM.replace('-23301=2,2.000000e-01,1.000000e+00', '-23301=3,2.000000e-01,1.000000e+00')));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('sum0');
    expect(e.message).toContain('array length 3 but 2 values');
  });

  test('rejects a layer listing fewer blobs than its counts', () => {
    const e = thrown(() => parseNcnnParam('7767517\n1 2\nSplit s 1 2 x y\n'));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('layer s lists fewer blobs than its counts');
  });

  test('rejects a parameter that is not key=value or not a number', () => {
    const notKv = thrown(() => parseNcnnParam('7767517\n1 1\nInput in 0 1 x 0=1 oops\n'));
    expect(notKv.code).toBe('UPB_NCNN_FORMAT');
    expect(notKv.message).toContain('"oops" is not key=value');
    const notNumber = thrown(() => parseNcnnParam('7767517\n1 1\nInput in 0 1 x 0=abc\n'));
    expect(notNumber.code).toBe('UPB_NCNN_FORMAT');
    expect(notNumber.message).toContain('bad number "abc"');
  });
});

describe('typed parameter accessors', () => {
  test('intParam returns the value, truncated, or the fallback when absent', () => {
    const conv = layer('conv0');
    expect(intParam(conv, 0, 1)).toBe(64);
    expect(intParam(conv, 11, 7)).toBe(7);
    expect(intParam(layer('up0'), 2, 0)).toBe(2); // 2.5 truncates like ncnn's int read
  });

  test('floatParam returns the value or the fallback when absent', () => {
    const up = layer('up0');
    expect(floatParam(up, 2, 1)).toBe(2.5);
    expect(floatParam(up, 7, 1.25)).toBe(1.25);
  });

  test('arrayParam returns the array, a scalar as a one-element array, or [] when absent', () => {
    expect(arrayParam(layer('conv0'), 10)).toEqual([0.2]);
    expect(arrayParam(layer('conv0'), 0)).toEqual([64]);
    expect(arrayParam(layer('conv0'), 11)).toEqual([]);
  });

  test('intParam and floatParam reject an array-valued parameter with UPB_NCNN_FORMAT', () => {
    const e = thrown(() => intParam(layer('sum0'), 1, 0));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('layer sum0: parameter 1 should be a number');
    expect(thrown(() => floatParam(layer('conv0'), 10, 0)).code).toBe('UPB_NCNN_FORMAT');
  });
});
