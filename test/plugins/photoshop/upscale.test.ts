/**
 * End to end: the plugin's real code (runUpscale → document.ts) against the simulated Photoshop
 * host and a real bridge on loopback running the real model, reached the way UXP reaches it
 * (fetch with a uxp:// Origin, bearer token, raw pixels). Each test checks what the bridge
 * received (exactly the pixels the user chose, in its range), the pixels that land in the
 * document and where, against an expected result computed independently (core's pipeline on its
 * own ONNX Runtime session), and the history states.
 */
import { modelForMode } from '../../../core/catalogue';
import { Raster } from '../../../core/raster';
import type { JobReport } from '../../../plugins/shared/bridge-client';
import { runUpscale } from '../../../plugins/photoshop/src/upscale-command';
import { BridgeJobInput } from '../../../bridge-server/routes/jobs';
import { FAST_MODEL, startBridge, TestBridge } from '../../bridge-server/bridge-harness';
import { app, constants, core, sim, SimDocumentSpec, SimLayerView } from './sim/photoshop';
import { clientFor, crop, expectedUpscale, expectSamePixels, layerData, psPixels, raster, toFullRange, toPhotoshopRange, withOpaqueAlpha } from './ps-helpers';

let bridge: TestBridge;
/** Copies of the rasters the bridge accepted, in order (the bridge drops its copy once a job ran). */
let received: Raster[];

beforeAll(async () => {
  bridge = await startBridge();
  const submit = bridge.queue.submit.bind(bridge.queue);
  bridge.queue.submit = (input: BridgeJobInput) => {
    received.push({ ...input.raster, data: input.raster.data.slice() });
    return submit(input);
  };
});
afterAll(() => bridge.close());
beforeEach(() => {
  received = [];
  bridge.submitted.length = 0;
});
afterEach(() => {
  // Every PhotoshopImageData the plugin got or made was disposed (imaging.md: dispose early).
  expect(sim.undisposedImageData()).toEqual([]);
  expect(sim.isModal()).toBe(false);
});

/** The bridge's own result for job `i` (kept for the result's retention time). */
function bridgeResult(i: number): Raster {
  const job = bridge.submitted[i];
  expect(job.state).toBe('done');
  return job.result!;
}

function sameRaster(actual: Raster, expected: Raster): void {
  expect([actual.width, actual.height, actual.channels, actual.depth]).toEqual([expected.width, expected.height, expected.channels, expected.depth]);
  expectSamePixels(actual.data, expected.data);
}

/** The same document resized by the sim alone: what Photoshop's resampling makes of each layer. */
async function resizedControl(spec: SimDocumentSpec, width: number, height: number): Promise<number> {
  const active = sim.activeDocumentId();
  const id = sim.addDocument({ ...spec, title: `${spec.title} (control)` });
  await core.executeAsModal(() => app.documents.find((d) => d.id === id)!.resizeImage(width, height, undefined, constants.ResampleMethod.AUTOMATIC), { commandName: 'control' });
  if (active !== null) app.activeDocument = app.documents.find((d) => d.id === active)!;
  return id;
}

function structure(layers: SimLayerView[]) {
  return layers.map(({ id, name, kind, background, visible, parentId }) => ({ id, name, kind, background, visible, parentId }));
}

const callsNamed = (name: string) => sim.calls.filter((c) => c.name === name);

describe('selection → new document', () => {
  test('4x: a new document holding exactly the bridge’s output for the selected pixels, at 0,0; the source untouched', async () => {
    const W = 160;
    const H = 120;
    const bg = psPixels(W, H, 3, 8, 3);
    const selection = { left: 37, top: 22, right: 85, bottom: 62 };
    const [source] = sim.reset({ documents: [{ title: 'Photo', width: W, height: H, resolution: 300, profile: 'Adobe RGB (1998)', layers: [{ name: 'Background', background: true, pixels: bg }], selection }] });
    const before = sim.snapshot(source);
    const progress: Array<{ done: number; total: number; label: string }> = [];

    const result = await runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-document', scale: 4, model: FAST_MODEL }, { onProgress: (p) => progress.push(p) });

    // The bridge got the selected 48×40 pixels, raw, 3 channels (the composite of a document with a background is opaque).
    const input = raster(crop(bg, W, 3, selection), 48, 40, 3, 8);
    expect(received).toHaveLength(1);
    sameRaster(received[0], input);
    expect(bridge.submitted[0].input.plan.model?.id).toBe(FAST_MODEL);

    // A new, active document with one layer: the bridge's output, which is what the model makes of those pixels.
    const expected = await expectedUpscale(input, 4);
    sameRaster(bridgeResult(0), expected);
    expect(result.documentId).not.toBe(source);
    expect(sim.documentIds()).toEqual([source, result.documentId]);
    expect(sim.activeDocumentId()).toBe(result.documentId);
    expect(sim.info(result.documentId)).toMatchObject({ title: 'Photo ×4', width: 192, height: 160, resolution: 300, mode: 'RGBColorMode', bits: 'bitDepth8', profile: 'Adobe RGB (1998)' });
    const layers = sim.layers(result.documentId);
    expect(layers.map((l) => [l.name, l.kind, l.background])).toEqual([['Selection ×4', 'pixel', false]]);
    const out = layerData(result.documentId, 'Selection ×4');
    expect(out.extent).toEqual({ left: 0, top: 0, right: 192, bottom: 160 });
    expectSamePixels(out.data, withOpaqueAlpha(expected.data, 3, 8));

    // One undo step in the new document; the source has no new state and not one changed pixel.
    expect(sim.history(result.documentId)).toEqual(['Upscale ×4 (upbridge)']);
    expect(sim.history(source)).toEqual([]);
    expect(sim.snapshot(source)).toEqual(before);

    // How the plugin got there: one composite read of the selection, in a modal scope, at 8 bits.
    expect(callsNamed('imaging.getPixels')).toEqual([{ name: 'imaging.getPixels', modal: true, args: { documentID: source, sourceBounds: selection, componentSize: 8 } }]);
    expect(callsNamed('app.createDocument')[0].args).toEqual({ name: 'Photo ×4', width: 192, height: 160, resolution: 300, mode: 'RGBColorMode', depth: 8, fill: 'transparent', profile: 'Adobe RGB (1998)' });
    for (const call of sim.calls.filter((c) => ['imaging.putPixels', 'app.createDocument', 'Layer.name='].includes(c.name))) expect(call.modal).toBe(true);
    expect(callsNamed('imaging.putPixels').map((c) => c.args)).toEqual([
      { documentID: result.documentId, layerID: layers[0].id, imageData: expect.any(String), replace: true, targetBounds: { left: 0, top: 0, width: 192, height: 160 } },
    ]);
    expect(result.message).toBe('Selection upscaled ×4 into a new 192×160 document');
    expect(progress.at(-1)).toMatchObject({ label: 'Selection', done: 1, total: 1, fraction: 1 });
  });

  test('Photoshop before 25.0 (no Document.selection): the selection comes from batchPlay', async () => {
    const bg = psPixels(90, 70, 3, 8, 5);
    const selection = { left: -6, top: 30, right: 42, bottom: 90 };
    const [source] = sim.reset({ selectionApi: false, documents: [{ title: 'Old', width: 90, height: 70, layers: [{ name: 'Background', background: true, pixels: bg }], selection }] });
    const result = await runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-document', scale: 2, model: FAST_MODEL });
    expect(callsNamed('action.batchPlay').map((c) => c.args)).toEqual([{ commands: [{ _obj: 'get', _target: [{ _property: 'selection' }, { _ref: 'document', _id: source }] }], options: {} }]);
    // The selection reaches past the canvas: the plugin reads the part inside it, 42×40.
    const inside = { left: 0, top: 30, right: 42, bottom: 70 };
    const input = raster(crop(bg, 90, 3, inside), 42, 40, 3, 8);
    sameRaster(received[0], input);
    const expected = await expectedUpscale(input, 2);
    expect(sim.info(result.documentId)).toMatchObject({ width: 84, height: 80 });
    expectSamePixels(layerData(result.documentId, 'Selection ×2').data, withOpaqueAlpha(expected.data, 3, 8));
  });
});

describe('16 bits end to end', () => {
  test('0..32768 in the document → 0..65535 at 16 bits to the bridge → its 16-bit output back in 0..32768', async () => {
    const bg = psPixels(64, 48, 3, 16, 7) as Uint16Array;
    // Both ends of Photoshop's range inside the selection.
    bg.set([0, 32768, 0], (5 * 64 + 5) * 3);
    const selection = { left: 0, top: 0, right: 48, bottom: 40 };
    const [source] = sim.reset({ documents: [{ title: 'Deep', width: 64, height: 48, bits: 'bitDepth16', layers: [{ name: 'Background', background: true, pixels: bg }], selection }] });
    const before = sim.snapshot(source);
    const result = await runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-document', scale: 4, model: FAST_MODEL });

    const psInput = crop(bg, 64, 3, selection) as Uint16Array;
    const input = raster(toFullRange(psInput), 48, 40, 3, 16);
    sameRaster(received[0], input);
    expect(Math.max(...received[0].data)).toBe(65535);
    expect(Math.min(...received[0].data)).toBe(0);
    expect(callsNamed('imaging.getPixels')[0].args).toMatchObject({ componentSize: 16 });

    const expected = await expectedUpscale(input, 4);
    sameRaster(bridgeResult(0), expected);
    expect(sim.info(result.documentId)).toMatchObject({ width: 192, height: 160, bits: 'bitDepth16' });
    const out = layerData(result.documentId, 'Selection ×4');
    expect(out.depth).toBe(16);
    expectSamePixels(out.data, withOpaqueAlpha(toPhotoshopRange(expected.data as Uint16Array), 3, 16));
    expect(Math.max(...out.data)).toBeLessThanOrEqual(32768);
    expect(sim.snapshot(source)).toEqual(before);
  });
});

describe('transparency and grey', () => {
  test('a layer with transparency keeps its alpha: 4 channels read from the layer itself, 4 back', async () => {
    const cutout = psPixels(48, 40, 4, 8, 9);
    const rect = { left: 10, top: 8, right: 58, bottom: 48 };
    const [source] = sim.reset({
      documents: [
        {
          title: 'Cut',
          width: 80,
          height: 60,
          layers: [
            { name: 'Cutout', rect, pixels: cutout },
            // Under it, so the composite would differ from the layer: the plugin must read the layer.
            { name: 'Backdrop', pixels: psPixels(80, 60, 4, 8, 10) },
          ],
          active: ['Cutout'],
        },
      ],
    });
    const before = sim.snapshot(source);
    const result = await runUpscale(clientFor(bridge), { target: 'layer', destination: 'new-document', scale: 4, model: FAST_MODEL });
    const input = raster(cutout, 48, 40, 4, 8);
    sameRaster(received[0], input);
    expect(callsNamed('imaging.getPixels')[0].args).toEqual({ documentID: source, layerID: sim.layer(source, 'Cutout').id, componentSize: 8 });
    const expected = await expectedUpscale(input, 4);
    expect(expected.channels).toBe(4);
    const out = layerData(result.documentId, 'Cutout ×4');
    expect([out.extent, out.channels]).toEqual([{ left: 0, top: 0, right: 192, bottom: 160 }, 4]);
    // The model's alpha, not an opaque one: some pixels stay partly transparent.
    expectSamePixels(out.data, expected.data);
    expect(out.data.filter((_, i) => i % 4 === 3 && out.data[i] < 255).length).toBeGreaterThan(1000);
    expect(sim.snapshot(source)).toEqual(before);
  });

  test('grey document, whole document → new document: 1 channel, grey mode and profile kept', async () => {
    const bg = psPixels(48, 40, 1, 8, 11);
    const [source] = sim.reset({ documents: [{ title: 'Scan', width: 48, height: 40, mode: 'grayscaleMode', profile: 'Gray Gamma 2.2', layers: [{ name: 'Background', background: true, pixels: bg }] }] });
    const result = await runUpscale(clientFor(bridge), { target: 'document', destination: 'new-document', scale: 4, model: FAST_MODEL });
    const input = raster(bg, 48, 40, 1, 8);
    sameRaster(received[0], input);
    const expected = await expectedUpscale(input, 4);
    expect(sim.info(result.documentId)).toMatchObject({ title: 'Scan ×4', mode: 'grayscaleMode', profile: 'Gray Gamma 2.2', width: 192, height: 160 });
    const out = layerData(result.documentId, 'Scan ×4');
    expect(out.channels).toBe(2);
    expectSamePixels(out.data, withOpaqueAlpha(expected.data, 1, 8));
    expect(sim.history(source)).toEqual([]);
  });

  test('grey with alpha at 16 bits, selection → new layer: 2 channels, in place at the scaled origin', async () => {
    const ink = psPixels(64, 48, 2, 16, 13) as Uint16Array;
    const selection = { left: 10, top: 4, right: 58, bottom: 44 };
    const spec: SimDocumentSpec = { title: 'Ink', width: 64, height: 48, mode: 'grayscaleMode', bits: 'bitDepth16', profile: 'Dot Gain 20%', layers: [{ name: 'Ink', pixels: ink }], selection };
    const [source] = sim.reset({ documents: [spec] });
    const result = await runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-layer', scale: 2, model: FAST_MODEL });
    expect(result.documentId).toBe(source);
    // Composite of a document without a background: grey + alpha.
    const input = raster(toFullRange(crop(ink, 64, 2, selection) as Uint16Array), 48, 40, 2, 16);
    sameRaster(received[0], input);
    const expected = await expectedUpscale(input, 2);
    expect(sim.info(source)).toMatchObject({ width: 128, height: 96 });
    const out = layerData(source, 'Selection ×2');
    expect(out.extent).toEqual({ left: 20, top: 8, right: 116, bottom: 88 });
    expectSamePixels(out.data, toPhotoshopRange(expected.data as Uint16Array));
    expect(sim.history(source)).toEqual(['Upscale ×2 (upbridge)']);
  });
});

describe('in place', () => {
  test('selection → new layer: document resized ×2 with every layer resampled, the result above the active layer at the scaled origin, one history state', async () => {
    const bg = psPixels(96, 80, 3, 8, 15);
    const selection = { left: 8, top: 6, right: 56, bottom: 46 };
    const spec: SimDocumentSpec = {
      title: 'Poster',
      width: 96,
      height: 80,
      layers: [
        // Hidden: not in the composite the plugin reads.
        { name: 'Hidden', visible: false, pixels: psPixels(96, 80, 4, 8, 16) },
        // Outside the selection.
        { name: 'Shape', rect: { left: 64, top: 50, right: 90, bottom: 76 }, pixels: psPixels(26, 26, 4, 8, 17) },
        { name: 'Background', background: true, pixels: bg },
      ],
      active: ['Shape'],
      selection,
    };
    const [source] = sim.reset({ documents: [spec] });
    const layersBefore = sim.layers(source);
    const result = await runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-layer', scale: 2, model: FAST_MODEL });

    const input = raster(crop(bg, 96, 3, selection), 48, 40, 3, 8);
    sameRaster(received[0], input);
    const expected = await expectedUpscale(input, 2);
    sameRaster(bridgeResult(0), expected);

    expect(result.documentId).toBe(source);
    expect(sim.documentIds()).toEqual([source]);
    expect(sim.info(source)).toMatchObject({ width: 192, height: 160 });
    const after = sim.layers(source);
    expect(after.map((l) => l.name)).toEqual(['Hidden', 'Selection ×2', 'Shape', 'Background']);
    expect(structure(after.filter((l) => l.name !== 'Selection ×2'))).toEqual(structure(layersBefore));
    const added = layerData(source, 'Selection ×2');
    expect(added.extent).toEqual({ left: 16, top: 12, right: 112, bottom: 92 });
    expectSamePixels(added.data, withOpaqueAlpha(expected.data, 3, 8));

    // Photoshop resampled every existing layer to the new size: the same as the sim resizing a copy.
    expect(callsNamed('Document.resizeImage').map((c) => c.args)).toEqual([{ document: source, width: 192, height: 160, resampleMethod: 'bicubicAutomatic' }]);
    const control = await resizedControl(spec, 192, 160);
    for (const name of ['Hidden', 'Shape', 'Background']) {
      const mine = layerData(source, name);
      const theirs = layerData(control, name);
      expect([name, mine.extent]).toEqual([name, theirs.extent]);
      expectSamePixels(mine.data, theirs.data);
    }
    expect(sim.layer(source, 'Shape').extent).toEqual({ left: 128, top: 100, right: 180, bottom: 152 });

    expect(sim.history(source)).toEqual(['Upscale ×2 (upbridge)']);
    expect(result.message).toBe('document resized to 192×160; the upscaled selection is a new layer');
  });

  test('the user edits the document while the bridge works: nothing is written over the edit, the document keeps its size, and the error says why', async () => {
    const spec: SimDocumentSpec = { title: 'Poster', width: 40, height: 32, layers: [{ name: 'Background', background: true, pixels: psPixels(40, 32, 3, 8, 21) }], active: ['Background'] };
    const [source] = sim.reset({ documents: [spec] });
    const before = sim.snapshot(source);
    const client = clientFor(bridge);
    const upscale = client.upscaleRaster.bind(client);
    client.upscaleRaster = (...args: Parameters<typeof upscale>) => {
      sim.userEdit(source, 'Brush Tool');
      return upscale(...args);
    };
    await expect(runUpscale(client, { target: 'document', destination: 'layers', scale: 2, model: FAST_MODEL })).rejects.toMatchObject({
      code: 'UPB_DOCUMENT_CHANGED',
      message: '"Poster" was changed while it was being upscaled (its history is now at "Brush Tool"); nothing was written: run the upscale again',
    });
    expect(sim.history(source)).toEqual(['Brush Tool']);
    expect(sim.snapshot(source)).toEqual({ ...before, history: ['Brush Tool'], historyId: expect.any(Number) });
  });

  test('whole document, layer by layer: same layers, ids and order; pixel layers replaced by the model’s output at their scaled bounds; text and groups left to Photoshop', async () => {
    const title = psPixels(32, 12, 4, 8, 21);
    const inner = psPixels(32, 24, 4, 8, 22);
    const paint = psPixels(36, 24, 4, 8, 23);
    const bg = psPixels(64, 48, 3, 8, 24);
    const spec: SimDocumentSpec = {
      title: 'Layered',
      width: 64,
      height: 48,
      layers: [
        { name: 'Title', kind: 'text', rect: { left: 2, top: 2, right: 34, bottom: 14 }, pixels: title },
        { name: 'Group', children: [{ name: 'Inner', rect: { left: 30, top: 20, right: 62, bottom: 44 }, pixels: inner }] },
        { name: 'Paint', rect: { left: 5, top: 6, right: 41, bottom: 30 }, pixels: paint },
        { name: 'Background', background: true, pixels: bg },
      ],
      active: ['Paint'],
    };
    const [source] = sim.reset({ documents: [spec] });
    const layersBefore = sim.layers(source);
    const progress: string[] = [];
    const result = await runUpscale(clientFor(bridge), { target: 'document', destination: 'layers', scale: 2, model: FAST_MODEL }, { onProgress: (p) => progress.push(p.label) });

    // One job per pixel layer, top to bottom; the text layer and the group are not sent.
    const inputs = [raster(inner, 32, 24, 4, 8), raster(paint, 36, 24, 4, 8), raster(bg, 64, 48, 3, 8)];
    expect(received).toHaveLength(3);
    inputs.forEach((input, i) => sameRaster(received[i], input));
    expect([...new Set(progress)]).toEqual(['Layer 1 of 3: Inner', 'Layer 2 of 3: Paint', 'Layer 3 of 3: Background']);

    expect(sim.info(source)).toMatchObject({ width: 128, height: 96 });
    expect(structure(sim.layers(source))).toEqual(structure(layersBefore));
    const placements: Array<[string, { left: number; top: number }]> = [
      ['Inner', { left: 60, top: 40 }],
      ['Paint', { left: 10, top: 12 }],
      ['Background', { left: 0, top: 0 }],
    ];
    for (const [i, [name, at]] of placements.entries()) {
      const expected = await expectedUpscale(inputs[i], 2);
      sameRaster(bridgeResult(i), expected);
      const out = layerData(source, name);
      expect([name, out.extent]).toEqual([name, { left: at.left, top: at.top, right: at.left + expected.width, bottom: at.top + expected.height }]);
      expectSamePixels(out.data, expected.data);
    }
    // The text layer: only Photoshop's resize touched it.
    const control = await resizedControl(spec, 128, 96);
    expect(layerData(source, 'Title').extent).toEqual(layerData(control, 'Title').extent);
    expectSamePixels(layerData(source, 'Title').data, layerData(control, 'Title').data);

    expect(sim.history(source)).toEqual(['Upscale ×2 (upbridge)']);
    expect(callsNamed('imaging.putPixels').map((c) => (c.args as { layerID: number }).layerID)).toEqual(['Inner', 'Paint', 'Background'].map((n) => sim.layer(source, n).id));
    expect(callsNamed('Document.createPixelLayer')).toEqual([]);
    expect(result.message).toBe('document upscaled ×2 to 128×96: 3 pixel layer(s) by the model; 1 other layer(s) (text, shapes, smart objects, adjustments) resized by Photoshop');
  });
});

describe('modes', () => {
  test('creative mode: the bridge is asked for the mode, not a model; the new document holds exactly its result; the result says what ran and its LR-PSNR', async () => {
    const bg = psPixels(40, 32, 3, 8, 31);
    const selection = { left: 6, top: 4, right: 30, bottom: 24 };
    const [source] = sim.reset({ documents: [{ title: 'Street', width: 40, height: 32, layers: [{ name: 'Background', background: true, pixels: bg }], selection }] });
    const before = sim.snapshot(source);

    const result = await runUpscale(clientFor(bridge), { target: 'selection', destination: 'new-document', scale: 4, mode: 'creative' });

    sameRaster(received[0], raster(crop(bg, 40, 3, selection), 24, 20, 3, 8));
    const job = bridge.submitted[0];
    // The mode went out alone: no model, no creativity (the mode's own, 1, applies).
    expect(job.input.plan).toMatchObject({ mode: 'creative', model: undefined, creativity: 1, creativityGiven: false });
    const report = job.report as unknown as JobReport;
    expect(report).toMatchObject({ mode: 'creative', contentDetected: true, models: { creative: modelForMode(report.content, 'creative').id } });

    // The document holds the bridge's pixels, byte for byte.
    const out = layerData(result.documentId, 'Selection ×4');
    expect(out.extent).toEqual({ left: 0, top: 0, right: 96, bottom: 80 });
    expectSamePixels(out.data, withOpaqueAlpha(bridgeResult(0).data, 3, 8));
    expect(sim.history(result.documentId)).toEqual(['Upscale ×4 (upbridge)']);
    expect(sim.snapshot(source)).toEqual(before);

    expect(result.reports).toEqual([report]);
    expect(result.ran).toBe(`Creative (${report.models.creative}) · LR-PSNR ${report.lrPsnr.toFixed(1)} dB`);
    expect(result.message).toBe('Selection upscaled ×4 into a new 96×80 document');
  });

  test('balanced with creativity, 16 bits, layer by layer: every job carries mode and creativity; each layer holds its job’s result; one line for the run', async () => {
    const paint = psPixels(20, 16, 4, 16, 32) as Uint16Array;
    const bg = psPixels(40, 32, 3, 16, 33) as Uint16Array;
    const [source] = sim.reset({
      documents: [
        {
          title: 'Deep layers',
          width: 40,
          height: 32,
          bits: 'bitDepth16',
          layers: [
            { name: 'Paint', rect: { left: 4, top: 6, right: 24, bottom: 22 }, pixels: paint },
            { name: 'Background', background: true, pixels: bg },
          ],
          active: ['Paint'],
        },
      ],
    });

    const result = await runUpscale(clientFor(bridge), { target: 'document', destination: 'layers', scale: 2, mode: 'balanced', creativity: 0.5 });

    expect(received.map((r) => [r.width, r.height, r.channels, r.depth])).toEqual([[20, 16, 4, 16], [40, 32, 3, 16]]);
    for (const job of bridge.submitted) expect(job.input.plan).toMatchObject({ mode: 'balanced', model: undefined, creativity: 0.5, creativityGiven: true });
    for (const [i, [name, at]] of ([['Paint', { left: 8, top: 12 }], ['Background', { left: 0, top: 0 }]] as const).entries()) {
      const made = bridgeResult(i);
      const out = layerData(source, name);
      expect([name, out.extent]).toEqual([name, { left: at.left, top: at.top, right: at.left + made.width, bottom: at.top + made.height }]);
      expectSamePixels(out.data, toPhotoshopRange(made.data as Uint16Array));
    }
    const reports = bridge.submitted.map((job) => job.report as unknown as JobReport);
    expect(result.reports).toEqual(reports);
    const models = reports.map((r) => `${r.models.fidelity} + ${r.models.creative}`);
    expect(new Set(models).size).toBe(1);
    const psnrs = reports.map((r) => r.lrPsnr.toFixed(1)).sort((a, b) => Number(a) - Number(b));
    const range = psnrs[0] === psnrs[1] ? psnrs[0] : `${psnrs[0]}–${psnrs[1]}`;
    expect(result.ran).toBe(`Balanced · creativity 0.5 (${models[0]}) · LR-PSNR ${range} dB`);
    expect(sim.history(source)).toEqual(['Upscale ×2 (upbridge)']);
  });
});
