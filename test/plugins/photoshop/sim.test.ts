/**
 * The simulated host follows the documented Photoshop behaviour the plugin relies on: these tests
 * pin each rule (with hand-computed values), so a plugin test that passes against the sim passes
 * for a reason. Sources: @types/photoshop 25.0.4 and PSDOCS pages cited in sim/photoshop.ts.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { action, app, constants, core, imaging, sim, SimDocumentSpec, SimImageData } from './sim/photoshop';
import { entrypoints, storage, uxpSim } from './sim/uxp';

const TYPES = path.join(__dirname, '..', '..', '..', 'node_modules', '@types', 'photoshop', 'dom', 'Constants.d.ts');

const modal = <T>(fn: Parameters<typeof core.executeAsModal<T>>[0], commandName = 'test') => core.executeAsModal(fn, { commandName });

function doc(id: number) {
  const d = app.documents.find((x) => x.id === id);
  if (!d) throw new Error(`no document ${id}`);
  return d;
}

/** 4×2 RGB: a background (values by position) and a half-transparent red layer over the left half. */
function smallDoc(extra: Partial<SimDocumentSpec> = {}): SimDocumentSpec {
  const bg = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => 10 * i);
  return {
    title: 'small',
    width: 4,
    height: 2,
    layers: [
      { name: 'Red', rect: { left: 0, top: 0, right: 2, bottom: 2 }, pixels: Uint8Array.from([255, 0, 0, 128, 255, 0, 0, 0, 255, 0, 0, 255, 255, 0, 0, 64]) },
      { name: 'Background', background: true, pixels: bg },
    ],
    ...extra,
  };
}

beforeEach(() => {
  sim.reset();
  uxpSim.reset();
});

describe('constants', () => {
  test('every enum the sim exports has the keys and string values @types/photoshop declares', () => {
    const source = readFileSync(TYPES, 'utf8');
    for (const [name, values] of Object.entries(constants)) {
      const block = source.match(new RegExp(`export declare enum ${name} \\{([^}]*)\\}`));
      expect(block).not.toBeNull();
      const declared = Object.fromEntries([...block![1].matchAll(/^\s*(\w+) = "([^"]*)"/gm)].map((m) => [m[1], m[2]]));
      expect({ name, values }).toEqual({ name, values: declared });
    }
  });
});

describe('modal scope (PSDOCS executeasmodal.md)', () => {
  test('document changes outside executeAsModal throw and change nothing', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    const before = sim.snapshot(id);
    const red = sim.layer(id, 'Red');
    const image = await imaging.createImageDataFromBuffer(new Uint8Array(3), { width: 1, height: 1, components: 3, colorSpace: 'RGB' });
    await expect(imaging.putPixels({ documentID: id, layerID: red.id, imageData: image })).rejects.toThrow(/modal/);
    await expect(doc(id).resizeImage(8, 4)).rejects.toThrow(/modal/);
    await expect(doc(id).createPixelLayer({ name: 'x' })).rejects.toThrow(/modal/);
    await expect(app.createDocument({ width: 2, height: 2 })).rejects.toThrow(/modal/);
    expect(() => {
      doc(id).layers[0].name = 'renamed';
    }).toThrow(/modal/);
    expect(sim.snapshot(id)).toEqual(before);
    expect(sim.documentIds()).toEqual([id]);
  });

  test('commandName is required; another plugin holding the modal state refuses the call (error number 9)', async () => {
    sim.reset({ documents: [smallDoc()] });
    await expect(core.executeAsModal(async () => 1, {} as never)).rejects.toThrow(/commandName/);
    sim.holdModal('com.other.plugin');
    const error = await core.executeAsModal(async () => 1, { commandName: 'x' }).catch((e) => e);
    expect(error.message).toMatch(/host is in a modal state/);
    expect(error.number).toBe(9);
    sim.releaseModal();
    await expect(core.executeAsModal(async () => 2, { commandName: 'x' })).resolves.toBe(2);
  });

  test('one modal scope at a time', async () => {
    let release!: () => void;
    const first = modal(() => new Promise<void>((r) => (release = r)));
    await expect(modal(async () => 1)).rejects.toThrow(/modal state/);
    release();
    await first;
    await expect(modal(async () => 3)).resolves.toBe(3);
  });
});

describe('history', () => {
  async function edits(id: number) {
    const d = doc(id);
    const layer = await d.createPixelLayer({ name: 'New' });
    const image = await imaging.createImageDataFromBuffer(new Uint8Array([1, 2, 3]), { width: 1, height: 1, components: 3, colorSpace: 'RGB' });
    await imaging.putPixels({ documentID: id, layerID: layer!.id, imageData: image });
    await image.dispose();
    layer!.name = 'Renamed';
  }

  test('changes inside one suspension make exactly one named state; without one, a state per command', async () => {
    const [a, b] = sim.reset({ documents: [smallDoc(), smallDoc({ title: 'b' })] });
    await modal(async (ctx) => {
      const s = await ctx.hostControl.suspendHistory({ documentID: a, name: 'All at once' });
      await edits(a);
      await ctx.hostControl.resumeHistory(s, true);
    });
    await modal(() => edits(b));
    expect(sim.history(a)).toEqual(['All at once']);
    expect(sim.history(b)).toEqual(['New Layer', 'Put Pixels', 'Rename Layer']);
  });

  test('no state when nothing changed; finalName renames the state', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    await modal(async (ctx) => {
      const s = await ctx.hostControl.suspendHistory({ documentID: id, name: 'Nothing' });
      await ctx.hostControl.resumeHistory(s, true);
    });
    expect(sim.history(id)).toEqual([]);
    await modal(async (ctx) => {
      const s = await ctx.hostControl.suspendHistory({ documentID: id, name: 'First name' });
      await edits(id);
      await ctx.hostControl.resumeHistory({ ...s, finalName: 'Final name' }, true);
    });
    expect(sim.history(id)).toEqual(['Final name']);
  });

  test('resumeHistory(…, false) and a throwing target function roll the document back', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    const before = sim.snapshot(id);
    await modal(async (ctx) => {
      const s = await ctx.hostControl.suspendHistory({ documentID: id, name: 'Undone' });
      await doc(id).resizeImage(8, 4);
      await edits(id);
      await ctx.hostControl.resumeHistory(s, false);
    });
    expect(sim.snapshot(id)).toEqual(before);
    const failure = new Error('boom');
    await expect(
      modal(async (ctx) => {
        await ctx.hostControl.suspendHistory({ documentID: id, name: 'Cancelled' });
        await doc(id).resizeImage(8, 4);
        await edits(id);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(sim.snapshot(id)).toEqual(before);
    expect(doc(id).width).toBe(4);
    expect(sim.isModal()).toBe(false);
  });

  test('a suspension left open is committed when the target function returns', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    await modal(async (ctx) => {
      await ctx.hostControl.suspendHistory({ documentID: id, name: 'Auto' });
      await edits(id);
    });
    expect(sim.history(id)).toEqual(['Auto']);
  });

  test('documents registered for auto-close are closed when the scope ends, unless unregistered', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    await expect(
      modal(async (ctx) => {
        const d = await app.createDocument({ width: 2, height: 2, fill: constants.DocumentFill.TRANSPARENT });
        await ctx.hostControl.registerAutoCloseDocument(d!.id);
        throw new Error('failed');
      }),
    ).rejects.toThrow('failed');
    expect(sim.documentIds()).toEqual([id]);
    const kept = await modal(async (ctx) => {
      const d = await app.createDocument({ width: 2, height: 2, fill: constants.DocumentFill.TRANSPARENT });
      await ctx.hostControl.registerAutoCloseDocument(d!.id);
      await ctx.hostControl.unregisterAutoCloseDocument(d!.id);
      return d!.id;
    });
    expect(sim.documentIds()).toEqual([id, kept]);
  });
});

describe('imaging.getPixels (PSDOCS imaging.md)', () => {
  test('the composite of a document with a background is opaque RGB: 3 components', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    const { imageData, sourceBounds } = await imaging.getPixels({ documentID: id, sourceBounds: { left: 2, top: 0, right: 4, bottom: 2 } });
    expect([imageData.components, imageData.componentSize, imageData.hasAlpha, imageData.pixelFormat]).toEqual([3, 8, false, 'RGB']);
    expect({ ...sourceBounds }).toMatchObject({ left: 2, top: 0, right: 4, bottom: 2 });
    // The red layer covers x 0..1 only: the right half is the background itself.
    expect(Array.from(await imageData.getData({}))).toEqual([60, 70, 80, 90, 100, 110, 180, 190, 200, 210, 220, 230]);
  });

  test('normal blend with alpha over the background (hand-computed)', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    const { imageData } = await imaging.getPixels({ documentID: id, sourceBounds: { left: 0, top: 0, width: 2, height: 2 } as never });
    // ({left, top, width, height} is documented; @types only declares right/bottom.)
    const data = Array.from(await imageData.getData({}));
    // (0,0): red at alpha 128/255 over (0,10,20): c = 255·a + bg·(1 − a).
    const a = 128 / 255;
    expect(data.slice(0, 3)).toEqual([Math.round(255 * a), Math.round(10 * (1 - a)), Math.round(20 * (1 - a))]);
    // (1,0): alpha 0 → the background (30,40,50); (0,1): opaque red.
    expect(data.slice(3, 6)).toEqual([30, 40, 50]);
    expect(data.slice(6, 9)).toEqual([255, 0, 0]);
  });

  test('without a background the composite keeps alpha (4 components); hidden layers are left out', async () => {
    const pixels = Uint8Array.from([10, 20, 30, 200, 40, 50, 60, 100]);
    const [id] = sim.reset({
      documents: [{ title: 't', width: 2, height: 1, layers: [{ name: 'Hidden', visible: false, pixels: new Uint8Array(8).fill(255) }, { name: 'Paint', pixels }] }],
    });
    const { imageData } = await imaging.getPixels({ documentID: id });
    expect([imageData.components, imageData.pixelFormat]).toEqual([4, 'RGBA']);
    expect(Array.from(await imageData.getData({}))).toEqual(Array.from(pixels));
  });

  test('a layer read is trimmed to its non-transparent pixels and the returned sourceBounds say so', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    const red = sim.layer(id, 'Red');
    expect(red.bounds).toEqual({ left: 0, top: 0, right: 2, bottom: 2 });
    // Trim: pixel (1,0) is fully transparent, but (1,1) is not, so the bounds stay 2×2; ask for row 0.
    const { imageData, sourceBounds } = await imaging.getPixels({ documentID: id, layerID: red.id, sourceBounds: { left: 0, top: 0, right: 4, bottom: 1 } });
    expect({ left: sourceBounds.left, top: sourceBounds.top, right: sourceBounds.right, bottom: sourceBounds.bottom }).toEqual({ left: 0, top: 0, right: 2, bottom: 1 });
    expect([imageData.width, imageData.height, imageData.components]).toEqual([2, 1, 4]);
    expect(Array.from(await imageData.getData({ chunky: false }))).toEqual([255, 255, 0, 0, 0, 0, 128, 0]);
    const bg = await imaging.getPixels({ documentID: id, layerID: sim.layer(id, 'Background').id });
    expect(bg.imageData.components).toBe(3);
  });

  test('a transparent layer with pixels in one corner has bounds around them', async () => {
    const pixels = new Uint8Array(4 * 3 * 4);
    pixels.set([9, 9, 9, 255], (2 * 4 + 3) * 4);
    const [id] = sim.reset({ documents: [{ title: 't', width: 4, height: 3, layers: [{ name: 'Dot', pixels }] }] });
    expect(doc(id).layers[0].boundsNoEffects).toMatchObject({ left: 3, top: 2, right: 4, bottom: 3 });
    const { imageData } = await imaging.getPixels({ documentID: id, layerID: sim.layer(id, 'Dot').id });
    expect(Array.from(await imageData.getData({}))).toEqual([9, 9, 9, 255]);
  });

  test('16-bit documents give Uint16Array data in 0..32768; other component sizes are refused, not converted', async () => {
    const pixels = Uint16Array.from([0, 16384, 32768]);
    const [id] = sim.reset({ documents: [{ title: 't', width: 1, height: 1, bits: 'bitDepth16', layers: [{ name: 'Background', background: true, pixels }] }] });
    const { imageData } = await imaging.getPixels({ documentID: id, componentSize: 16 });
    const data = await imageData.getData({});
    expect(data).toBeInstanceOf(Uint16Array);
    expect(Array.from(data)).toEqual([0, 16384, 32768]);
    await expect(imaging.getPixels({ documentID: id, componentSize: 8 })).rejects.toThrow(/not simulated/);
    await expect(imageData.getData({ fullRange: true })).rejects.toThrow(/not simulated/);
    expect(() => sim.addDocument({ title: 'bad', width: 1, height: 1, bits: 'bitDepth16', layers: [{ name: 'B', background: true, pixels: Uint16Array.from([0, 0, 40000]) }] })).toThrow(/0\.\.32768/);
  });
});

describe('imaging.createImageDataFromBuffer / putPixels', () => {
  test('the element count must be width × height × components; the array type sets the component size', async () => {
    await expect(imaging.createImageDataFromBuffer(new Uint8Array(11), { width: 2, height: 2, components: 3, colorSpace: 'RGB' })).rejects.toThrow(/12/);
    await expect(imaging.createImageDataFromBuffer(new Uint8Array(8), { width: 2, height: 2, components: 2, colorSpace: 'RGB' })).rejects.toThrow(/components/);
    const wide = await imaging.createImageDataFromBuffer(new Uint16Array(4), { width: 2, height: 2, components: 1, colorSpace: 'Grayscale' });
    expect([wide.componentSize, wide.pixelFormat]).toEqual([16, 'Grayscale']);
    await expect(imaging.createImageDataFromBuffer(Uint16Array.from([32769]), { width: 1, height: 1, components: 1, colorSpace: 'Grayscale' })).rejects.toThrow(/0\.\.32768/);
    const planar = await imaging.createImageDataFromBuffer(Uint8Array.from([1, 2, 3, 4, 5, 6]), { width: 2, height: 1, components: 3, colorSpace: 'RGB', chunky: false });
    expect(Array.from(await planar.getData({}))).toEqual([1, 3, 5, 2, 4, 6]);
  });

  test('replace discards the layer’s pixels; the new ones land at targetBounds.left/top; RGB data is opaque', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    const red = sim.layer(id, 'Red');
    const image = await imaging.createImageDataFromBuffer(Uint8Array.from([7, 8, 9]), { width: 1, height: 1, components: 3, colorSpace: 'RGB' });
    await modal(() => imaging.putPixels({ documentID: id, layerID: red.id, imageData: image, targetBounds: { left: 3, top: 1, width: 1, height: 1 } }));
    expect(sim.layerPixels(id, red.id)).toMatchObject({ extent: { left: 3, top: 1, right: 4, bottom: 2 }, channels: 4 });
    expect(Array.from(sim.layerPixels(id, red.id).data)).toEqual([7, 8, 9, 255]);
    // replace: false keeps what was there.
    const more = await imaging.createImageDataFromBuffer(Uint8Array.from([1, 1, 1, 50]), { width: 1, height: 1, components: 4, colorSpace: 'RGB' });
    await modal(() => imaging.putPixels({ documentID: id, layerID: red.id, imageData: more, replace: false, targetBounds: { left: 0, top: 1, width: 1, height: 1 } }));
    expect(sim.layer(id, 'Red').bounds).toEqual({ left: 0, top: 1, right: 4, bottom: 2 });
  });

  test('only pixel layers, only matching depth and colour space, never disposed data', async () => {
    const [id] = sim.reset({
      documents: [{ ...smallDoc(), layers: [{ name: 'Text', kind: 'text', pixels: new Uint8Array(32) }, ...smallDoc().layers] }],
    });
    const rgb = await imaging.createImageDataFromBuffer(new Uint8Array(3), { width: 1, height: 1, components: 3, colorSpace: 'RGB' });
    const grey = await imaging.createImageDataFromBuffer(new Uint8Array(1), { width: 1, height: 1, components: 1, colorSpace: 'Grayscale' });
    const deep = await imaging.createImageDataFromBuffer(new Uint16Array(3), { width: 1, height: 1, components: 3, colorSpace: 'RGB' });
    const red = sim.layer(id, 'Red').id;
    await modal(async () => {
      await expect(imaging.putPixels({ documentID: id, layerID: sim.layer(id, 'Text').id, imageData: rgb })).rejects.toThrow(/pixel layer/);
      await expect(imaging.putPixels({ documentID: id, layerID: red, imageData: grey })).rejects.toThrow(/not simulated/);
      await expect(imaging.putPixels({ documentID: id, layerID: red, imageData: deep })).rejects.toThrow(/16-bit/);
      await rgb.dispose();
      await expect(imaging.putPixels({ documentID: id, layerID: red, imageData: rgb })).rejects.toThrow(/disposed/);
    });
    expect(sim.undisposedImageData()).toHaveLength(2);
    await (grey as SimImageData).dispose();
    expect(sim.undisposedImageData()).toEqual([expect.stringMatching(/^imageData#\d+ from createImageDataFromBuffer$/)]);
  });
});

describe('documents and layers', () => {
  test('resizeImage resamples every layer (bilinear, hand-computed) and scales extents and the selection', async () => {
    const [id] = sim.reset({
      documents: [
        {
          title: 'r',
          width: 2,
          height: 1,
          mode: 'grayscaleMode',
          selection: { left: 1, top: 0, right: 2, bottom: 1 },
          layers: [
            { name: 'Dot', rect: { left: 1, top: 0, right: 2, bottom: 1 }, pixels: Uint8Array.from([100, 255]) },
            { name: 'Background', background: true, pixels: Uint8Array.from([0, 255]) },
          ],
        },
      ],
    });
    await modal(() => doc(id).resizeImage(4, 2, undefined, constants.ResampleMethod.BILINEAR));
    expect([doc(id).width, doc(id).height]).toEqual([4, 2]);
    // Output centres map to source x = -0.25, 0.25, 0.75, 1.25 (clamped): 0, 63.75, 191.25, 255.
    expect(Array.from(sim.layerPixels(id, sim.layer(id, 'Background').id).data)).toEqual([0, 64, 191, 255, 0, 64, 191, 255]);
    expect(sim.layer(id, 'Dot').extent).toEqual({ left: 2, top: 0, right: 4, bottom: 2 });
    expect(sim.info(id).selection).toEqual({ left: 2, top: 0, right: 4, bottom: 2 });
    expect(sim.history(id)).toEqual(['Image Size']);
  });

  test('createDocument (transparent) has one empty "Layer 1" and becomes active; createPixelLayer goes above the active layer', async () => {
    const [first] = sim.reset({ documents: [smallDoc({ active: ['Background'] })] });
    const created = await modal(() => app.createDocument({ name: 'New', width: 3, height: 2, resolution: 300, mode: constants.NewDocumentMode.GRAYSCALE, depth: 16, fill: constants.DocumentFill.TRANSPARENT, profile: 'Gray Gamma 2.2' }));
    expect(app.activeDocument.id).toBe(created!.id);
    expect(sim.info(created!.id)).toMatchObject({ title: 'New', width: 3, height: 2, resolution: 300, mode: 'grayscaleMode', bits: 'bitDepth16', profile: 'Gray Gamma 2.2' });
    expect(sim.layers(created!.id)).toEqual([expect.objectContaining({ name: 'Layer 1', kind: 'pixel', background: false, bounds: { left: 0, top: 0, right: 0, bottom: 0 } })]);
    const layer = await modal(() => doc(first).createPixelLayer({ name: 'Above background' }));
    expect(sim.layers(first).map((l) => l.name)).toEqual(['Red', 'Above background', 'Background']);
    expect(doc(first).activeLayers.map((l) => l.id)).toEqual([layer!.id]);
  });

  test('Document.selection (25.0) and the batchPlay selection descriptor used before it', async () => {
    const [id] = sim.reset({ documents: [smallDoc({ selection: { left: -1, top: 0, right: 3, bottom: 2 } })] });
    expect({ ...doc(id).selection!.bounds }).toMatchObject({ left: -1, top: 0, right: 3, bottom: 2 });
    const get = { _obj: 'get', _target: [{ _property: 'selection' }, { _ref: 'document', _id: id }] };
    const [answer] = await action.batchPlay([get], {});
    expect(answer).toEqual({
      selection: { _obj: 'rectangle', top: { _unit: 'pixelsUnit', _value: 0 }, left: { _unit: 'pixelsUnit', _value: -1 }, bottom: { _unit: 'pixelsUnit', _value: 2 }, right: { _unit: 'pixelsUnit', _value: 3 } },
    });
    sim.setSelection(id, null);
    expect(doc(id).selection!.bounds).toBeNull();
    expect(await action.batchPlay([get], {})).toEqual([{}]);
    await expect(action.batchPlay([{ _obj: 'select', _target: [{ _ref: 'layer', _name: 'x' }] }], {})).rejects.toThrow(/not simulated/);
    sim.reset({ documents: [smallDoc()], selectionApi: false });
    expect(app.activeDocument.selection).toBeUndefined();
  });

  test('every call is recorded in order, with whether it ran in a modal scope', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    await imaging.getPixels({ documentID: id });
    await modal(() => doc(id).resizeImage(8, 4));
    expect(sim.calls.map((c) => [c.name, c.modal])).toEqual([
      ['imaging.getPixels', false],
      ['core.executeAsModal', false],
      ['Document.resizeImage', true],
    ]);
    expect(sim.calls[2].args).toMatchObject({ document: id, width: 8, height: 4 });
  });

  test('failNext makes the next matching call throw once', async () => {
    const [id] = sim.reset({ documents: [smallDoc()] });
    sim.failNext('Document.resizeImage', new Error('disk full'));
    await expect(modal(() => doc(id).resizeImage(8, 4))).rejects.toThrow('disk full');
    await modal(() => doc(id).resizeImage(8, 4));
    expect(doc(id).width).toBe(8);
  });
});

describe('uxp (secure-storage.md, entry-points.md)', () => {
  test('secure storage keeps bytes and gives back a Uint8Array; strings are stored as UTF-8', async () => {
    const s = storage.secureStorage;
    await s.setItem('k', Uint8Array.from([1, 2, 250]));
    const back = await s.getItem('k');
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Array.from(back!)).toEqual([1, 2, 250]);
    await s.setItem('t', 'tök');
    expect(Array.from((await s.getItem('t'))!)).toEqual([0x74, 0xc3, 0xb6, 0x6b]);
    expect(await s.getItem('missing')).toBeNull();
    await expect(s.setItem('e', '')).rejects.toThrow(/empty/);
    await s.removeItem('k');
    await expect(s.removeItem('k')).rejects.toThrow(/nothing is stored/);
    await expect(s.getItem(1 as unknown as string)).rejects.toBeInstanceOf(TypeError);
    expect(uxpSim.keys()).toEqual(['t']);
  });

  test('entrypoints.setup is recorded and can be called only once', () => {
    const panels = { panels: { p: { create() {} } } };
    entrypoints.setup(panels);
    expect(uxpSim.setups).toEqual([panels]);
    expect(() => entrypoints.setup(panels)).toThrow(/only be called once/);
  });
});
