import { syntheticRaster } from '../../helpers';
import { startBridge, TestBridge } from '../../bridge-server/bridge-harness';
import { decode, imagePaint, openPlugin, png, runAction, whenNextJobStarts } from './plugin-harness';
import { frame, setUp, SimContainer, SimPage, SimSceneNode } from './figma-sim';

/**
 * "Upscale frame as image" end to end: the frame's PNG export (the simulation returns the PNG a
 * test gives it, since it cannot render) goes through the real bridge and comes back as a new
 * layer beside the frame, or as a grid of tiles when it is larger than a Figma image.
 */
/** The outcome's line on what ran: the default model alone (no mode), with the LR-PSNR of each job. */
const RAN_WITHOUT_MODE = expect.stringMatching(/^realesr-general-x4v3 · LR-PSNR \d+\.\d(–\d+\.\d)? dB$/);

let bridge: TestBridge;

beforeAll(async () => {
  bridge = await startBridge();
});

afterAll(async () => {
  await bridge?.close();
});

const rasterBytes = (data: Uint8Array | Uint16Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

let rendering: Uint8Array;
beforeAll(async () => {
  rendering = await png(syntheticRaster(40, 30, 4, 8, 21));
});

test('a frame is exported at 1x, upscaled, and placed beside it as "<name> @4x" at one pixel per unit, in one undo step', async () => {
  let card!: SimContainer;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        const screen = frame(sim, { name: 'Screen', x: 1000, y: 0, width: 400, height: 800 });
        card = frame(sim, { name: 'Card', x: 100, y: 50, width: 40, height: 30 }, screen);
        card.rendering = rendering;
        sim.page.selection = [card];
      }),
  });
  const submittedBefore = bridge.submitted.length;

  const outcome = await runAction(ui, 'frames', { scale: 4 });

  expect(outcome).toEqual({ kind: 'done', text: 'Placed 1 upscaled copy: "Card @4x"', notes: [], ran: RAN_WITHOUT_MODE });
  expect(sim.exportCalls).toEqual([{ node: card.id, settings: { format: 'PNG', constraint: { type: 'SCALE', value: 1 } } }]);

  // A new layer on the page, right of the frame's absolute box (Screen at 1000 + Card at 100, 40 wide, then a 40 gap).
  const placed = sim.page.children.at(-1) as SimSceneNode;
  expect(placed).toMatchObject({ type: 'RECTANGLE', name: 'Card @4x', x: 1180, y: 50, width: 160, height: 120 });
  expect(imagePaint(placed)).toEqual({ type: 'IMAGE', scaleMode: 'FILL', imageHash: expect.any(String) });
  const job = bridge.submitted[submittedBefore];
  const pixels = await decode(sim.images.get(imagePaint(placed).imageHash!)!.bytes);
  expect({ width: pixels.width, height: pixels.height, channels: pixels.channels }).toEqual({ width: 160, height: 120, channels: 4 });
  expect(Buffer.compare(pixels.data, rasterBytes(job.result!.data))).toBe(0);

  // The original is untouched, the copy is selected and in view.
  expect(card).toMatchObject({ x: 100, y: 50, width: 40, height: 30 });
  expect(sim.page.selection).toEqual([placed]);
  expect(sim.scrolledTo).toEqual([[placed.id]]);

  expect(sim.undoSteps).toHaveLength(1);
  expect(sim.uncommitted).toBe(0);
  sim.undo();
  expect(sim.page.children).not.toContain(placed);
});

test('a frame deleted while the bridge works: its copy is still placed where the frame was, under its name', async () => {
  let card!: SimContainer;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        card = frame(sim, { name: 'Card', x: 100, y: 50, width: 40, height: 30 });
        card.rendering = rendering;
        sim.page.selection = [card];
      }),
  });
  whenNextJobStarts(bridge, () => card.remove());

  const outcome = await runAction(ui, 'frames', { scale: 2 });

  expect(outcome).toMatchObject({ kind: 'done', text: 'Placed 1 upscaled copy: "Card @2x"' });
  expect(card.removed).toBe(true);
  expect(sim.page.children.at(-1)).toMatchObject({ type: 'RECTANGLE', name: 'Card @2x', x: 180, y: 50, width: 80, height: 60 });
});

/** A frame "Card" selected on Page 1, and an empty Page 2 the designer has not opened. */
async function openWithSecondPage() {
  let card!: SimContainer;
  let other!: SimPage;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        other = sim.addPage('Page 2');
        card = frame(sim, { name: 'Card', x: 100, y: 50, width: 40, height: 30 });
        card.rendering = rendering;
        sim.page.selection = [card];
      }),
  });
  return { sim, ui, card, other };
}

test('the designer opens another page while the bridge works: the copy goes beside the frame on its page, selected there, the view left alone', async () => {
  const { sim, ui, other } = await openWithSecondPage();
  whenNextJobStarts(bridge, () => sim.switchPage(other));

  const outcome = await runAction(ui, 'frames', { scale: 2 });

  expect(outcome).toMatchObject({ kind: 'done', text: 'Placed 1 upscaled copy: "Card @2x"', notes: ['The copy is on page "Page 1", beside its frame, and selected there'] });
  const placed = sim.page.children.at(-1) as SimSceneNode;
  expect(placed).toMatchObject({ type: 'RECTANGLE', name: 'Card @2x', x: 180, y: 50, width: 80, height: 60 });
  expect(other.children).toEqual([]);
  expect(sim.page.selection).toEqual([placed]);
  // Still on the page the designer chose; scrolling would move the view of that page.
  expect(sim.current).toBe(other);
  expect(sim.scrolledTo).toEqual([]);
  expect(sim.undoSteps).toHaveLength(1);
});

test('a frame the designer moves to another page while the bridge works: the copy follows it there, the page loaded first', async () => {
  const { sim, ui, card, other } = await openWithSecondPage();
  whenNextJobStarts(bridge, () => sim.moveToPage(card, other));

  const outcome = await runAction(ui, 'frames', { scale: 2 });

  expect(outcome).toMatchObject({ kind: 'done', notes: ['The copy is on page "Page 2", beside its frame, and selected there'] });
  expect(other.children.map((n) => n.name)).toEqual(['Card', 'Card @2x']);
  expect(other.children[1]).toMatchObject({ x: 180, y: 50, width: 80, height: 60 });
  expect(other.selection).toEqual([other.children[1]]);
  expect(sim.page.children).toEqual([]);
});

test('a result beyond 4096 px is placed as a grid of tiles in one group, every pixel kept; beyond the bridge\'s 16384 px the scale is clamped', async () => {
  let banner!: SimContainer;
  const rendering = await png(syntheticRaster(4200, 2, 3, 8, 22));
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        banner = frame(sim, { name: 'Banner', x: 0, y: 0, width: 4200, height: 2 });
        banner.rendering = rendering;
        sim.page.selection = [banner];
      }),
  });
  const submittedBefore = bridge.submitted.length;

  const outcome = await runAction(ui, 'frames', { scale: 4 });

  // 4200 × 4 = 16800 > 16384: 3.9x (16380 px), cut into four balanced tiles of 4095 px.
  expect(outcome).toEqual({
    kind: 'done',
    text: 'Placed 1 upscaled copy: "Banner @3.9x"',
    notes: [
      '"Banner": upscaled 3.9x instead of 4x (16380×8 px), the largest the bridge makes',
      '"Banner": 16380×8 px is larger than a Figma image (4096 px a side), so it is placed as 4 tiles in one group',
    ],
    ran: RAN_WITHOUT_MODE,
  });
  const job = bridge.submitted[submittedBefore];
  expect(job.input.plan.scale).toBe(3.9);
  const result = job.result!;
  expect([result.width, result.height, result.channels, result.depth]).toEqual([16380, 8, 3, 8]);

  const group = sim.page.children.at(-1) as SimContainer;
  expect(group).toMatchObject({ type: 'GROUP', name: 'Banner @3.9x' });
  expect(group.children.map((t) => ({ name: t.name, x: t.x, y: t.y, width: t.width, height: t.height }))).toEqual(
    [0, 1, 2, 3].map((i) => ({ name: `Banner @3.9x tile ${i + 1} of 4`, x: 4240 + i * 4095, y: 0, width: 4095, height: 8 })),
  );
  // Each tile holds exactly its part of the bridge's output.
  const full = rasterBytes(result.data);
  for (const [i, tile] of group.children.entries()) {
    const pixels = await decode(sim.images.get(imagePaint(tile).imageHash!)!.bytes);
    expect([pixels.width, pixels.height, pixels.channels]).toEqual([4095, 8, 3]);
    for (let y = 0; y < 8; y++) {
      const from = (y * 16380 + i * 4095) * 3;
      expect(Buffer.compare(pixels.data.subarray(y * 4095 * 3, (y + 1) * 4095 * 3), full.subarray(from, from + 4095 * 3))).toBe(0);
    }
  }
  expect(sim.undoSteps).toHaveLength(1);
  sim.undo();
  expect(sim.page.children).toEqual([banner]);
});
