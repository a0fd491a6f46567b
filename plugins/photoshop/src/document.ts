/**
 * Everything that touches Photoshop: reading the document, reading pixels, creating documents
 * and layers, writing pixels. Kept thin on purpose: the tests run it against a simulated host
 * that follows @types/photoshop, so what only real Photoshop can prove stays in this file.
 */
import { action, app, constants, core, imaging } from 'photoshop';
import { UpbridgeError } from '../../../core/errors';
import { BitDepth, ChannelCount, Raster } from '../../../core/raster';
import { fullRangeToPhotoshop, photoshopToFullRange } from './depth';

export interface Rect {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface LayerInfo {
  id: number;
  name: string;
  /** Constants.LayerKind value: "pixel", "text", "smartObject", "group", adjustment kinds… */
  kind: string;
  isBackground: boolean;
  bounds: Rect;
}

export interface DocumentInfo {
  id: number;
  title: string;
  width: number;
  height: number;
  resolution: number;
  /** Constants.DocumentMode value, e.g. "RGBColorMode". */
  mode: string;
  /** Constants.BitsPerChannelType value, e.g. "bitDepth8". */
  bits: string;
  /** "None" for an untagged document (Photoshop's own wording). */
  profile: string;
  activeLayers: LayerInfo[];
  /** Every layer, groups' children included, top to bottom. */
  layers: LayerInfo[];
  /** Bounding box of the selection (may exceed the canvas), undefined when nothing is selected. */
  selection?: Rect;
  /** The active history state when read: any edit (a stroke, an undo) moves it. */
  historyStateId?: number;
}

export interface PixelSource {
  /** Omitted: the composite (what the user sees, flattened). */
  layerId?: number;
  /** Omitted: the whole layer or canvas. */
  bounds?: Rect;
}

type PsDocument = typeof app.activeDocument;
type PsLayer = PsDocument['layers'][number];

function rect(b: { left: number; top: number; right: number; bottom: number }): Rect {
  return { left: b.left, top: b.top, right: b.right, bottom: b.bottom };
}

function layerInfo(layer: PsLayer): LayerInfo {
  return { id: layer.id, name: layer.name, kind: String(layer.kind), isBackground: layer.isBackgroundLayer, bounds: rect(layer.boundsNoEffects) };
}

function allLayers(layers: ArrayLike<PsLayer>, into: LayerInfo[] = []): LayerInfo[] {
  for (let i = 0; i < layers.length; i++) {
    into.push(layerInfo(layers[i]));
    const children = layers[i].layers;
    if (children) allLayers(children, into);
  }
  return into;
}

/** `doc.selection` arrived in Photoshop 25.0; before it, the selection is read through batchPlay. */
async function selectionBounds(doc: PsDocument): Promise<Rect | undefined> {
  if (doc.selection && 'bounds' in doc.selection) {
    const b = doc.selection.bounds;
    return b ? rect(b) : undefined;
  }
  const [result] = (await action.batchPlay([{ _obj: 'get', _target: [{ _property: 'selection' }, { _ref: 'document', _id: doc.id }] }], {})) as Array<{
    selection?: Record<'left' | 'top' | 'right' | 'bottom', { _value: number }>;
  }>;
  const s = result?.selection;
  return s ? { left: s.left._value, top: s.top._value, right: s.right._value, bottom: s.bottom._value } : undefined;
}

export async function activeDocument(): Promise<DocumentInfo | undefined> {
  if (app.documents.length === 0) return undefined;
  const doc = app.activeDocument;
  if (!doc) return undefined;
  return {
    id: doc.id,
    title: doc.title,
    width: doc.width,
    height: doc.height,
    resolution: doc.resolution,
    mode: String(doc.mode),
    bits: String(doc.bitsPerChannel),
    profile: doc.colorProfileName,
    activeLayers: Array.from({ length: doc.activeLayers.length }, (_, i) => layerInfo(doc.activeLayers[i])),
    layers: allLayers(doc.layers),
    selection: await selectionBounds(doc),
    historyStateId: doc.activeHistoryState?.id,
  };
}

function documentById(id: number): PsDocument {
  for (let i = 0; i < app.documents.length; i++) if (app.documents[i].id === id) return app.documents[i];
  throw new Error(`document ${id} is no longer open`);
}

/**
 * Reads pixels at the document's depth in its own colour space and profile (no conversion),
 * alpha kept. Returns the bounds Photoshop actually read (a layer's are trimmed to its pixels).
 */
export async function readPixels(documentId: number, sources: PixelSource[], depth: BitDepth): Promise<Array<{ raster: Raster; bounds: Rect }>> {
  return core.executeAsModal(
    async () => {
      const out: Array<{ raster: Raster; bounds: Rect }> = [];
      for (const source of sources) {
        const { imageData, sourceBounds } = await imaging.getPixels({ documentID: documentId, layerID: source.layerId, sourceBounds: source.bounds, componentSize: depth });
        try {
          const data = await imageData.getData({ chunky: true });
          const raster: Raster = {
            width: imageData.width,
            height: imageData.height,
            channels: imageData.components as ChannelCount,
            depth,
            data: depth === 16 ? photoshopToFullRange(data as Uint16Array) : (data as Uint8Array),
          };
          out.push({ raster, bounds: rect(sourceBounds) });
        } finally {
          await imageData.dispose();
        }
      }
      return out;
    },
    { commandName: 'upbridge: read pixels' },
  );
}

async function writePixels(documentId: number, layerId: number, raster: Raster, at: { left: number; top: number }): Promise<void> {
  const data = raster.depth === 16 ? fullRangeToPhotoshop(raster.data as Uint16Array) : raster.data;
  // No colorProfile: "the profile of the target document is used", so values land unconverted.
  const imageData = await imaging.createImageDataFromBuffer(data, {
    width: raster.width,
    height: raster.height,
    components: raster.channels,
    colorSpace: raster.channels <= 2 ? 'Grayscale' : 'RGB',
    chunky: true,
  });
  try {
    await imaging.putPixels({ documentID: documentId, layerID: layerId, imageData, replace: true, targetBounds: { left: at.left, top: at.top, width: raster.width, height: raster.height } });
  } finally {
    await imageData.dispose();
  }
}

export interface Placement {
  raster: Raster;
  at: { left: number; top: number };
  /** Replace this layer's pixels (layer by layer); otherwise a new layer named `name`. */
  layerId?: number;
  name?: string;
}

/**
 * Resizes the document (Photoshop resamples every layer) and writes the placements, all as one
 * history state: one undo puts the document back as it was.
 */
export async function upscaleDocumentInPlace(source: DocumentInfo, size: { width: number; height: number }, placements: Placement[], historyName: string): Promise<void> {
  await core.executeAsModal(
    async (context) => {
      const doc = documentById(source.id);
      // The user keeps working while the bridge runs: results of pixels read before an edit would
      // overwrite it (and a canvas resized meanwhile would be resized again to a stale size).
      const now = doc.activeHistoryState?.id;
      if (source.historyStateId !== undefined && now !== source.historyStateId) {
        throw new UpbridgeError('UPB_DOCUMENT_CHANGED', `"${source.title}" was changed while it was being upscaled (its history is now at "${doc.activeHistoryState.name}"); nothing was written: run the upscale again`);
      }
      const suspension = await context.hostControl.suspendHistory({ documentID: source.id, name: historyName });
      await doc.resizeImage(size.width, size.height, undefined, constants.ResampleMethod.AUTOMATIC);
      for (const placement of placements) {
        let layerId = placement.layerId;
        if (layerId === undefined) {
          const layer = await doc.createPixelLayer({ name: placement.name });
          if (!layer) throw new Error('Photoshop did not create the result layer');
          layerId = layer.id;
        }
        await writePixels(source.id, layerId, placement.raster, placement.at);
      }
      // Thrown before here, Photoshop cancels the suspended state: nothing half-done stays.
      await context.hostControl.resumeHistory(suspension, true);
    },
    { commandName: historyName },
  );
}

/** A new document with the result: the source document is not touched. */
export async function placeInNewDocument(source: DocumentInfo, raster: Raster, names: { document: string; layer: string }, historyName: string): Promise<number> {
  return core.executeAsModal(
    async (context) => {
      const doc = await app.createDocument({
        name: names.document,
        width: raster.width,
        height: raster.height,
        resolution: source.resolution,
        mode: raster.channels <= 2 ? constants.NewDocumentMode.GRAYSCALE : constants.NewDocumentMode.RGB,
        depth: raster.depth,
        fill: constants.DocumentFill.TRANSPARENT,
        ...(source.profile && source.profile !== 'None' ? { profile: source.profile } : {}),
      });
      if (!doc) throw new Error('Photoshop did not create the new document');
      // Closed without saving if anything below throws ("Automatic document closing",
      // executeasmodal.md): a failed write leaves no empty half-made document behind.
      await context.hostControl.registerAutoCloseDocument(doc.id);
      const suspension = await context.hostControl.suspendHistory({ documentID: doc.id, name: historyName });
      const first = doc.layers.length > 0 ? doc.layers[0] : undefined;
      const layer = first && !first.isBackgroundLayer && String(first.kind) === String(constants.LayerKind.NORMAL) ? first : await doc.createPixelLayer({ name: names.layer });
      if (!layer) throw new Error('Photoshop did not create the result layer');
      layer.name = names.layer;
      await writePixels(doc.id, layer.id, raster, { left: 0, top: 0 });
      await context.hostControl.resumeHistory(suspension, true);
      await context.hostControl.unregisterAutoCloseDocument(doc.id);
      return doc.id;
    },
    { commandName: historyName },
  );
}
