import { promises as fs } from 'node:fs';
import { OnnxGraphBuilder } from '../../core/convert/onnx-builder';
import { graphCost } from '../../core/graph-cost';
import { ModelStore } from '../../core/node/model-store';

const weights = (dims: number[]) => new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.01);

/**
 * A tiny graph with one op of each kind the walk follows, and the hand count of its cost per
 * input pixel beside each node.
 */
function tinyGraph(): Uint8Array {
  const g = new OnnxGraphBuilder();
  g.addInput('image', [1, 3, 'height', 'width']);
  // 3→8, 3×3, full size: 8·3·9 = 216.
  g.addNode('Conv', ['image', g.addFloatInitializer('w1', [8, 3, 3, 3], weights([8, 3, 3, 3]))], ['a'], { pads: [1, 1, 1, 1] });
  // Squeeze-excitation gate: a 1×1 conv on a pooled [1, 8, 1, 1] tensor costs nothing per pixel.
  g.addNode('GlobalAveragePool', ['a'], ['pooled']);
  g.addNode('Conv', ['pooled', g.addFloatInitializer('se', [8, 8, 1, 1], weights([8, 8, 1, 1]))], ['gate_logits']);
  g.addNode('Sigmoid', ['gate_logits'], ['gate']);
  g.addNode('Mul', ['a', 'gate'], ['gated']);
  // 8→16, 3×3, stride 2: 16·8·9 = 1152 per output position, a quarter as many: 288.
  g.addNode('Conv', ['gated', g.addFloatInitializer('w2', [16, 8, 3, 3], weights([16, 8, 3, 3]))], ['b'], { pads: [1, 1, 1, 1], strides: [2, 2] });
  // 16 channels at half size → 4 channels at full size.
  g.addNode('DepthToSpace', ['b'], ['c'], { blocksize: 2 });
  // Nearest ×2 with constant scales: twice the input's size.
  g.addNode('Resize', ['c', '', g.addFloatInitializer('scales', [4], [1, 1, 2, 2])], ['d'], { mode: 'nearest' });
  // 4→3, 1×1 at 2× (area 4): 12·4 = 48.
  g.addNode('Conv', ['d', g.addFloatInitializer('w3', [3, 4, 1, 1], weights([3, 4, 1, 1]))], ['e']);
  // Transposed 3→3, 2×2, stride 2, on the area-4 map: 3·3·4·4 = 144; output at 4×.
  g.addNode('ConvTranspose', ['e', g.addFloatInitializer('wt', [3, 3, 2, 2], weights([3, 3, 2, 2]))], ['f'], { strides: [2, 2] });
  // A size computed from the input's shape (as exported dynamic graphs do): 4·H × 4·W.
  g.addNode('Shape', ['image'], ['image_shape']);
  g.addNode('Slice', ['image_shape', g.addInt64Initializer('s0', [1], [2]), g.addInt64Initializer('s1', [1], [4])], ['image_hw']);
  g.addNode('Mul', ['image_hw', g.addInt64Initializer('four', [1], [4])], ['out_hw']);
  g.addNode('Slice', ['image_shape', g.addInt64Initializer('n0', [1], [0]), g.addInt64Initializer('n1', [1], [2])], ['image_nc']);
  g.addNode('Concat', ['image_nc', 'out_hw'], ['out_size'], { axis: 0 });
  g.addNode('Resize', ['image', '', '', 'out_size'], ['residual'], { mode: 'nearest' });
  g.addNode('Add', ['f', 'residual'], ['output']);
  g.addOutput('output', [1, 3, 'out_height', 'out_width']);
  return g.encode('graph-cost-test').bytes;
}

describe('graphCost', () => {
  test('counts a tiny synthetic graph as by hand, through strides, shuffles, resizes and shape arithmetic', () => {
    const cost = graphCost(tinyGraph());
    expect(cost.byOp).toEqual({ Conv: 216 + 288 + 48, ConvTranspose: 144 });
    expect(cost.macsPerInputPixel).toBe(696);
    expect(cost.outputAreaRatio).toBe(16);
    expect(cost.macsPerOutputPixel).toBe(696 / 16);
    expect(cost.unresolved).toEqual([]);
  });

  test('Real-ESRGAN x4plus costs 17.93 M multiply-adds per input pixel (RRDBNet, counted by layer)', async () => {
    // conv_first 3→64; 23 RRDBs × 3 dense blocks × five 3×3 convs (64, 96, 128, 160 → 32 and
    // 192 → 64 channels); conv_body; two ×2 nearest upsamplings each followed by a 64→64 conv;
    // conv_hr and conv_last (64→3) at 4×.
    const k = 9;
    const dense = k * (64 * 32 + 96 * 32 + 128 * 32 + 160 * 32 + 192 * 64);
    const handCount = k * 3 * 64 + 23 * 3 * dense + k * 64 * 64 + k * 64 * 64 * 4 + k * 64 * 64 * 16 * 2 + k * 64 * 3 * 16;
    expect(handCount).toBe(17_926_848);
    const installed = await new ModelStore().ensureOne('realesrgan-x4plus');
    const cost = graphCost(await fs.readFile(installed.onnxPath));
    expect(cost.macsPerInputPixel).toBe(handCount);
    expect(cost.outputAreaRatio).toBe(16);
    expect(cost.unresolved).toEqual([]);
  });

  test('realesr-general-x4v3 (SRVGGNetCompact, 32 body convs, pixel shuffle) costs 1.21 M per input pixel', async () => {
    const handCount = 9 * (3 * 64 + 32 * 64 * 64 + 64 * 48);
    const installed = await new ModelStore().ensureOne('realesr-general-x4v3');
    const cost = graphCost(await fs.readFile(installed.onnxPath));
    expect(cost.macsPerInputPixel).toBe(handCount);
    expect(cost.macsPerOutputPixel).toBe(handCount / 16);
  });
});
