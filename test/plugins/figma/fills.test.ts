import sharp from 'sharp';
import type { JobReport } from '../../../plugins/shared/bridge-client';
import { syntheticRaster } from '../../helpers';
import { request, startBridge, TestBridge } from '../../bridge-server/bridge-harness';
import { decode, encode, imagePaint, openPlugin, png, runAction, whenNextJobStarts } from './plugin-harness';
import { ellipse, frame, rectangle, setUp, SimContainer, SimRectangle, text } from './figma-sim';

/**
 * Upscaling image fills in place, end to end: the plugin's main thread on the simulated Figma
 * host, its UI logic talking to a real bridge with the real model (realesr-general-x4v3).
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

  expect(outcome).toEqual({ kind: 'done', text: 'Upscaled 1 image (4x) in 1 layer', notes: [], ran: RAN_WITHOUT_MODE });
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

test('an image shown by several layers is upscaled once; every layer gets it; tiled paints keep their tile size', async () => {
  const shared = await png(syntheticRaster(48, 40, 4, 8, 3));
  const jpeg = await encode(syntheticRaster(40, 24, 3, 8, 5), 'jpeg');
  let a!: SimRectangle;
  let b!: SimRectangle;
  let tiled!: SimRectangle;
  let photo!: SimRectangle;
  let card!: SimContainer;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        const image = sim.addImage(shared);
        const fill = (scaleMode: ImagePaint['scaleMode'], extra: Partial<ImagePaint> = {}): ImagePaint => ({ type: 'IMAGE', scaleMode, imageHash: image.hash, ...extra });
        a = rectangle(sim, { name: 'Avatar', width: 48, height: 40, fills: [fill('FILL')] });
        card = frame(sim, { name: 'Card', x: 200, width: 300, height: 200 });
        b = ellipse(sim, { name: 'Avatar small', width: 24, height: 20, fills: [fill('FIT', { rotation: 180 })] }, card);
        tiled = rectangle(sim, { name: 'Pattern', width: 400, height: 400, fills: [fill('TILE', { scalingFactor: 0.5 })] }, card);
        photo = rectangle(sim, { name: 'Photo', width: 40, height: 24, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(jpeg).hash }] }, card);
        text(sim, { name: 'Mixed text', width: 100, height: 20 }, card);
        sim.page.selection = [a, card];
      }),
  });
  const submittedBefore = bridge.submitted.length;

  const outcome = await runAction(ui, 'fills', { scale: 4, includeChildren: true });

  expect(outcome).toEqual({ kind: 'done', text: 'Upscaled 2 images (4x) in 4 layers', notes: [], ran: RAN_WITHOUT_MODE });
  const jobs = bridge.submitted.slice(submittedBefore);
  // Two jobs for three layers of one image and one JPEG (finished jobs drop their input; the results show the sizes).
  expect(jobs.map((j) => [j.result!.width, j.result!.height])).toEqual([
    [192, 160],
    [160, 96],
  ]);

  // One new image for the three layers that shared one.
  const hashes = [a, b, tiled].map((n) => imagePaint(n).imageHash);
  expect(new Set(hashes).size).toBe(1);
  const upscaled = await decode(sim.images.get(hashes[0]!)!.bytes);
  const result = jobs[0].result!;
  expect({ width: upscaled.width, height: upscaled.height, channels: upscaled.channels }).toEqual({ width: 192, height: 160, channels: 4 });
  expect(Buffer.compare(upscaled.data, Buffer.from(result.data.buffer, result.data.byteOffset, result.data.byteLength))).toBe(0);

  // Modes and settings kept; the tile factor divided by the scale, so tiles stay 24×20 units.
  expect(imagePaint(a)).toMatchObject({ scaleMode: 'FILL' });
  expect(imagePaint(b)).toMatchObject({ scaleMode: 'FIT', rotation: 180 });
  expect(imagePaint(tiled)).toMatchObject({ scaleMode: 'TILE', scalingFactor: 0.125 });

  // A JPEG fill stays JPEG: the bytes are the bridge's own JPEG of the result.
  const jpegResult = await request(bridge.port, `/v1/jobs/${jobs[1].id}/result?format=jpeg`, { token: bridge.token });
  const placedJpeg = sim.images.get(imagePaint(photo).imageHash!)!.bytes;
  expect(Buffer.compare(Buffer.from(placedJpeg), jpegResult.body)).toBe(0);
  expect((await sharp(placedJpeg).metadata()).format).toBe('jpeg');

  expect(sim.undoSteps).toHaveLength(1);
});

test('the designer changes the layers while the bridge works: a fill moved by one added above it is still upscaled; a swapped image and a deleted layer are left alone, with notes; one undo step', async () => {
  const images = await Promise.all([1, 2, 3].map((seed) => png(syntheticRaster(24, 20, 3, 8, 60 + seed))));
  const other = await png(syntheticRaster(24, 20, 3, 8, 70));
  let moved!: SimRectangle;
  let swapped!: SimRectangle;
  let deleted!: SimRectangle;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        const fill = (bytes: Uint8Array): ImagePaint => ({ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(bytes).hash });
        moved = rectangle(sim, { name: 'Moved', width: 24, height: 20, fills: [fill(images[0])] });
        swapped = rectangle(sim, { name: 'Swapped', width: 24, height: 20, fills: [fill(images[1])] });
        deleted = rectangle(sim, { name: 'Deleted', width: 24, height: 20, fills: [fill(images[2])] });
        sim.page.selection = [moved, swapped, deleted];
      }),
  });
  const swappedTo = sim.addImage(other).hash;
  // While the first job runs, the designer edits the three layers (outside the plugin's undo step).
  whenNextJobStarts(bridge, () => {
    moved.setFillsQuietly([{ type: 'SOLID', color: { r: 0, g: 0, b: 1 } }, ...(moved.fills as readonly Paint[])]);
    swapped.setFillsQuietly([{ type: 'IMAGE', scaleMode: 'FILL', imageHash: swappedTo }]);
    deleted.remove();
  });
  const submittedBefore = bridge.submitted.length;

  const outcome = await runAction(ui, 'fills', { scale: 2 });

  expect(outcome).toMatchObject({ kind: 'done', text: 'Upscaled 1 image (2x) in 1 layer' });
  expect(outcome.notes).toEqual([
    '"Swapped": its image fill was changed while upscaling, left as it is',
    '"Deleted": a layer showing this image was deleted while upscaling, skipped',
  ]);
  const first = bridge.submitted[submittedBefore];
  const placed = await decode(sim.images.get(imagePaint(moved, 1).imageHash!)!.bytes);
  expect(Buffer.compare(placed.data, Buffer.from(first.result!.data.buffer, first.result!.data.byteOffset, first.result!.data.byteLength))).toBe(0);
  expect((moved.fills as readonly Paint[])[0]).toMatchObject({ type: 'SOLID' });
  expect(imagePaint(swapped).imageHash).toBe(swappedTo);
  expect(sim.undoSteps).toHaveLength(1);
});

test('without "include layers inside", only the selected layers themselves are changed', async () => {
  const bytes = await png(syntheticRaster(32, 32, 3, 8, 11));
  let top!: SimRectangle;
  let inner!: SimRectangle;
  const { ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        const hash = sim.addImage(bytes).hash;
        top = rectangle(sim, { name: 'Top', width: 32, height: 32, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: hash }] });
        const group = frame(sim, { name: 'Group', width: 100, height: 100 });
        inner = rectangle(sim, { name: 'Inner', width: 32, height: 32, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: hash }] }, group);
        sim.page.selection = [top, group];
      }),
  });
  const before = imagePaint(inner).imageHash;

  const outcome = await runAction(ui, 'fills', { scale: 2, includeChildren: false });

  expect(outcome).toMatchObject({ kind: 'done', text: 'Upscaled 1 image (2x) in 1 layer' });
  expect(imagePaint(top).imageHash).not.toBe(before);
  expect(imagePaint(inner).imageHash).toBe(before);
});

test('a fill that would pass 4096 px gets the largest scale that fits, and one already at the limit is skipped, each with a note', async () => {
  const wide = await png(syntheticRaster(1100, 8, 3, 8, 2));
  const huge = await png(syntheticRaster(4096, 4, 3, 8, 4));
  let strip!: SimRectangle;
  let full!: SimRectangle;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        strip = rectangle(sim, { name: 'Strip', width: 1100, height: 8, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(wide).hash }] });
        full = rectangle(sim, { name: 'Panorama', width: 4096, height: 4, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(huge).hash }] });
        sim.page.selection = [strip, full];
      }),
  });
  const fullHash = imagePaint(full).imageHash;
  const submittedBefore = bridge.submitted.length;

  const outcome = await runAction(ui, 'fills', { scale: 4 });

  // 4096 / 1100 = 3.72…: the largest tenth that fits is 3.7x, 1100×8 → 4070×30.
  expect(outcome).toEqual({
    kind: 'done',
    text: 'Upscaled 1 image (3.7x) in 1 layer',
    notes: [
      `"Strip": upscaled 3.7x instead of 4x (1100×8 → 4070×30 px), the largest that fits Figma's 4096 px limit`,
      `"Panorama": already 4096×4 px, and Figma images are at most 4096 px a side, skipped`,
    ],
    ran: RAN_WITHOUT_MODE,
  });
  const jobs = bridge.submitted.slice(submittedBefore);
  expect(jobs).toHaveLength(1);
  expect(jobs[0].input.plan.scale).toBe(3.7);
  const placed = await decode(sim.images.get(imagePaint(strip).imageHash!)!.bytes);
  expect([placed.width, placed.height]).toEqual([4070, 30]);
  const result = jobs[0].result!;
  expect(Buffer.compare(placed.data, Buffer.from(result.data.buffer, result.data.byteOffset, result.data.byteLength))).toBe(0);
  expect(imagePaint(full).imageHash).toBe(fullHash);
  expect(sim.notifications).toEqual([{ message: 'Upscaled 1 image (3.7x) in 1 layer (2 notes in the plugin window)', error: false }]);
});

test('GIF fills are skipped with a note; with only GIFs selected there is nothing to upscale', async () => {
  const gif = await encode(syntheticRaster(16, 16, 3, 8, 9), 'gif');
  const still = await png(syntheticRaster(16, 16, 3, 8, 10));
  let animated!: SimRectangle;
  let photo!: SimRectangle;
  const { sim, ui } = await openPlugin({
    bridgeUrl: bridge.origin,
    token: bridge.token,
    document: (sim) =>
      setUp(sim, () => {
        animated = rectangle(sim, { name: 'Spinner', width: 16, height: 16, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(gif).hash }] });
        photo = rectangle(sim, { name: 'Photo', width: 16, height: 16, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(still).hash }] });
        sim.page.selection = [animated, photo];
      }),
  });
  const gifHash = imagePaint(animated).imageHash;
  const submittedBefore = bridge.submitted.length;
  const gifNote = '"Spinner": GIF fills are skipped (the models upscale still images, and Figma keeps GIFs animated)';

  expect(await runAction(ui, 'fills', { scale: 2 })).toEqual({ kind: 'done', text: 'Upscaled 1 image (2x) in 1 layer', notes: [gifNote], ran: RAN_WITHOUT_MODE });
  expect(bridge.submitted.length).toBe(submittedBefore + 1);
  expect(imagePaint(animated).imageHash).toBe(gifHash);

  sim.page.selection = [animated];
  const undoSteps = sim.undoSteps.length;
  expect(await runAction(ui, 'fills', { scale: 2 })).toEqual({ kind: 'error', text: `Nothing to upscale: ${gifNote}`, notes: [] });
  expect(sim.notifications.at(-1)).toEqual({ message: `Nothing to upscale: ${gifNote}`, error: true });
  expect(bridge.submitted.length).toBe(submittedBefore + 1);
  expect(sim.undoSteps.length).toBe(undoSteps);
});

describe('modes', () => {
  /** One 24×20 photo-like fill, selected; the plugin opened on it. */
  async function onePhotoFill() {
    const bytes = await png(syntheticRaster(24, 20, 3, 8, 61));
    let photo!: SimRectangle;
    const { sim, ui } = await openPlugin({
      bridgeUrl: bridge.origin,
      token: bridge.token,
      document: (sim) =>
        setUp(sim, () => {
          photo = rectangle(sim, { name: 'Thumb', width: 48, height: 40, fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: sim.addImage(bytes).hash }] });
          sim.page.selection = [photo];
        }),
    });
    return { sim, ui, photo };
  }

  test('creative: the job carries the mode and no model; the fill gets the bridge’s bytes; the outcome says what ran with its LR-PSNR', async () => {
    const { sim, ui, photo } = await onePhotoFill();
    const before = bridge.submitted.length;
    const outcome = await runAction(ui, 'fills', { scale: 4, mode: 'creative' });

    expect(bridge.submitted).toHaveLength(before + 1);
    const job = bridge.submitted[before];
    expect(job.input.plan).toMatchObject({ mode: 'creative', model: undefined, creativity: 1, creativityGiven: false, scale: 4 });
    const placed = await decode(sim.images.get(imagePaint(photo).imageHash!)!.bytes);
    expect([placed.width, placed.height, placed.channels]).toEqual([96, 80, job.result!.channels]);
    expect(Buffer.compare(placed.data, Buffer.from(job.result!.data.buffer, job.result!.data.byteOffset, job.result!.data.byteLength))).toBe(0);
    const report = job.report as unknown as JobReport;
    expect(report).toMatchObject({ mode: 'creative', contentDetected: true });
    expect(outcome).toEqual({ kind: 'done', text: 'Upscaled 1 image (4x) in 1 layer', notes: [], ran: `Creative (${report.models.creative}) · LR-PSNR ${report.lrPsnr.toFixed(1)} dB` });
    expect(sim.undoSteps).toHaveLength(1);
  });

  test('balanced with the slider moved: mode and creativity reach the bridge, which blends its two models; the fill holds the blend', async () => {
    const { sim, ui, photo } = await onePhotoFill();
    const before = bridge.submitted.length;
    const outcome = await runAction(ui, 'fills', { scale: 2, mode: 'balanced', creativity: 0.4 });

    const job = bridge.submitted[before];
    expect(job.input.plan).toMatchObject({ mode: 'balanced', model: undefined, creativity: 0.4, creativityGiven: true, scale: 2 });
    const placed = await decode(sim.images.get(imagePaint(photo).imageHash!)!.bytes);
    expect([placed.width, placed.height]).toEqual([48, 40]);
    expect(Buffer.compare(placed.data, Buffer.from(job.result!.data.buffer, job.result!.data.byteOffset, job.result!.data.byteLength))).toBe(0);
    const report = job.report as unknown as JobReport;
    expect(outcome.ran).toBe(`Balanced · creativity 0.4 (${report.models.fidelity} + ${report.models.creative}) · LR-PSNR ${report.lrPsnr.toFixed(1)} dB`);
  });
});
