import { syntheticRaster } from '../../helpers';
import { startBridge, TestBridge } from '../../bridge-server/bridge-harness';
import { decode, imagePaint, openPlugin, png, runAction } from './plugin-harness';
import { rectangle, setUp, SimRectangle } from './figma-sim';

/**
 * Upscaling image fills in place, end to end: the plugin's main thread on the simulated Figma
 * host, its UI logic talking to a real bridge with the real model (realesr-general-x4v3).
 */
let bridge: TestBridge;

beforeAll(async () => {
  bridge = await startBridge();
});

afterAll(async () => {
  await bridge?.close();
});

/** Everything about a node and its paints except the image itself. */
function snapshot(node: SimRectangle) {
  const { x, y, width, height, rotation, name } = node;
  const paints = (node.fills as readonly Paint[]).map((p) => (p.type === 'IMAGE' ? { ...p, imageHash: '(image)' } : p));
  return { x, y, width, height, rotation, name, parent: node.parent?.id, paints };
}

test("a 256×256 image fill upscaled 4x holds the bridge's 1024×1024 output; geometry and paint unchanged; one undo step", async () => {
  const bytes = await png(syntheticRaster(256, 256, 3, 8, 7));
  let photo!: SimRectangle;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        const image = sim.addImage(bytes);
        photo = rectangle(sim, {
          name: 'Photo',
          x: 120,
          y: 80,
          width: 300,
          height: 200,
          rotation: 90,
          fills: [
            { type: 'SOLID', color: { r: 1, g: 0, b: 0 } },
            {
              type: 'IMAGE',
              scaleMode: 'CROP',
              imageHash: image.hash,
              imageTransform: [
                [0.5, 0, 0.25],
                [0, 0.5, 0.1],
              ],
              filters: { exposure: 0.2, contrast: -0.1, saturation: 0.3, temperature: 0, tint: 0, highlights: 0, shadows: 0 },
              opacity: 0.8,
              blendMode: 'MULTIPLY',
              visible: true,
            },
          ],
        });
        sim.page.selection = [photo];
      }),
  });
  const before = snapshot(photo);
  const originalHash = imagePaint(photo, 1).imageHash!;
  const submittedBefore = bridge.submitted.length;

  const outcome = await runAction(ui, 'fills', { scale: 4 });

  expect(outcome).toEqual({ kind: 'done', text: 'Upscaled 1 image (4x) in 1 layer', notes: [] });
  expect(bridge.submitted.length).toBe(submittedBefore + 1);
  const job = bridge.submitted[submittedBefore];
  expect(job.state).toBe('done');

  // The fill now holds the bridge's output, pixel for pixel.
  const newHash = imagePaint(photo, 1).imageHash!;
  expect(newHash).not.toBe(originalHash);
  const placed = await decode(sim.images.get(newHash)!.bytes);
  expect({ width: placed.width, height: placed.height, channels: placed.channels }).toEqual({ width: 1024, height: 1024, channels: job.result!.channels });
  expect(Buffer.compare(placed.data, Buffer.from(job.result!.data.buffer, job.result!.data.byteOffset, job.result!.data.byteLength))).toBe(0);
  await expect(sim.images.get(newHash)!.getSizeAsync()).resolves.toEqual({ width: 1024, height: 1024 });

  // Same node, same place, same paint settings; only the image changed.
  expect(snapshot(photo)).toEqual(before);
  expect(sim.page.children).toEqual([photo]);

  // One undo step holds the whole change, and undoing it restores the original image.
  expect(sim.undoSteps).toHaveLength(1);
  expect(sim.uncommitted).toBe(0);
  sim.undo();
  expect(imagePaint(photo, 1).imageHash).toBe(originalHash);
  expect(snapshot(photo)).toEqual(before);

  expect(sim.notifications).toEqual([{ message: 'Upscaled 1 image (4x) in 1 layer', error: false }]);
});
