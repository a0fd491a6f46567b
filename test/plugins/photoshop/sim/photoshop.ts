/**
 * A simulated `photoshop` module: jest maps `photoshop` here (jest.config.js moduleNameMapper), so
 * the plugin's real code (plugins/photoshop/src/document.ts) runs against it. It follows the typed
 * API of @types/photoshop 25.0.4 and Adobe's reference pages (PSDOCS = AdobeDocs/uxp-photoshop,
 * summarised in plugins/photoshop/RESEARCH.md §3–4), and records every call in order.
 *
 * Pure TypeScript: no Node modules, no Buffer. It is also bundled into a browser page.
 *
 * What is documented and what is assumed is said next to each behaviour. In short:
 * - Documented (followed): getPixels returns a layer's pixels (layerID) or the composite (none),
 *   trimmed to the pixels inside `sourceBounds`, and the returned `sourceBounds` says what was
 *   read; `components` depends on whether the source has alpha; 16-bit values are 0..32768;
 *   putPixels needs a pixel layer, `replace` (default true) discards the layer's pixels, pixels
 *   land at `targetBounds.left/top` (default 0,0); createImageDataFromBuffer's element count is
 *   width × height × components and its array type sets the component size; modifying documents
 *   needs `core.executeAsModal`, and only one plugin can be modal at a time; suspendHistory /
 *   resumeHistory(commit) coalesce the changes into one named history state (only when the
 *   document changed), roll back on `commit: false`, and when the target function throws the
 *   suspended states are cancelled; registerAutoCloseDocument closes a document when the scope ends.
 * - Assumed (Photoshop does not document it, or the sim simplifies): compositing is normal blend
 *   with alpha only (no opacity, blend modes, masks or effects); resizeImage resamples with a
 *   plain bilinear filter (nearest for NEARESTNEIGHBOR), not Photoshop's bicubic; text and smart
 *   object layers are stored as the pixels they render and resampled like pixel layers; the
 *   background layer's kind reads "pixel"; a new pixel layer goes above the (first) active layer
 *   and becomes the active one; every change outside a suspension is one history state; the
 *   history list leaves out the state a document starts with ("Open"/"New"); overlapping
 *   executeAsModal calls are refused even from the same plugin (Photoshop allows nested scopes
 *   from inside a target function, which this plugin never uses); error texts are the sim's own.
 * - Refused as "not simulated" rather than guessed: colour conversion, component-size conversion,
 *   `fullRange`, `targetSize`, `applyAlpha`, Lab image data, 32-bit pixels, CMYK/Lab pixels.
 */
import type { ActionDescriptor, ExecuteAsModalOptions, ExecutionContext, HistoryStateInfo, HistorySuspension, ResumeHistorySuspensionOptions } from 'photoshop/dom/CoreModules';
import type { imaging as PsImaging } from 'photoshop/dom/ImagingModule';

// ─── Constants: the string enums of @types/photoshop dom/Constants.d.ts (same keys and values) ───

const DocumentMode = {
  BITMAP: 'bitmapMode',
  CMYK: 'CMYKColorMode',
  DUOTONE: 'duotoneMode',
  GRAYSCALE: 'grayscaleMode',
  INDEXEDCOLOR: 'indexedColorMode',
  LAB: 'labColorMode',
  MULTICHANNEL: 'multichannelMode',
  RGB: 'RGBColorMode',
} as const;

const BitsPerChannelType = { ONE: 'bitDepth1', EIGHT: 'bitDepth8', SIXTEEN: 'bitDepth16', THIRTYTWO: 'bitDepth32' } as const;

const NewDocumentMode = { BITMAP: 'bitmapMode', GRAYSCALE: 'grayscaleMode', RGB: 'RGBColorMode', CMYK: 'CMYKColorMode', LAB: 'labColorMode' } as const;

const DocumentFill = { WHITE: 'white', BLACK: 'black', BACKGROUNDCOLOR: 'backgroundColor', TRANSPARENT: 'transparent', COLOR: 'color' } as const;

const LayerKind = {
  BLACKANDWHITE: 'blackAndWhite',
  BRIGHTNESSCONTRAST: 'brightnessContrast',
  CHANNELMIXER: 'channelMixer',
  COLORBALANCE: 'colorBalance',
  CURVES: 'curves',
  EXPOSURE: 'exposure',
  GRADIENTFILL: 'gradientFill',
  GRADIENTMAP: 'gradientMap',
  HUESATURATION: 'hueSaturation',
  INVERSION: 'inversion',
  LEVELS: 'levels',
  NORMAL: 'pixel',
  PATTERNFILL: 'pattern',
  PHOTOFILTER: 'photoFilter',
  POSTERIZE: 'posterize',
  SELECTIVECOLOR: 'selectiveColor',
  SMARTOBJECT: 'smartObject',
  SOLIDFILL: 'solidColor',
  TEXT: 'text',
  THRESHOLD: 'threshold',
  LAYER3D: 'threeD',
  VIBRANCE: 'vibrance',
  VIDEO: 'video',
  GROUP: 'group',
  COLORLOOKUP: 'colorLookup',
} as const;

const ResampleMethod = {
  AUTOMATIC: 'bicubicAutomatic',
  BICUBIC: 'bicubic',
  BICUBICSHARPER: 'bicubicSharper',
  BICUBICSMOOTHER: 'bicubicSmoother',
  BILINEAR: 'bilinear',
  NEARESTNEIGHBOR: 'nearestNeighbor',
  PRESERVEDETAILS: 'preserveDetailsUpscale',
  DEEPUPSCALE: 'deepUpscale',
  NONE: 'none',
} as const;

export const constants = { DocumentMode, BitsPerChannelType, NewDocumentMode, DocumentFill, LayerKind, ResampleMethod };

// ─── State ───

export interface Rect {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export type Pixels = Uint8Array | Uint16Array;

interface LayerState {
  id: number;
  name: string;
  kind: string;
  background: boolean;
  visible: boolean;
  /** The area `data` covers, in canvas pixels (may reach past the canvas, as layers can). */
  extent: Rect;
  /** Chunky: the colour components, then alpha unless this is the background layer. Never mutated in place. */
  data: Pixels | null;
  /** Groups only: children, top to bottom. */
  children: LayerState[] | null;
}

interface DocState {
  id: number;
  title: string;
  width: number;
  height: number;
  resolution: number;
  mode: string;
  bits: string;
  profile: string;
  /** Top to bottom. */
  layers: LayerState[];
  active: number[];
  selection: Rect | null;
  /** History states added since the document was opened or created (its first state is not listed). */
  history: string[];
  /** The active history state's id: a new one for every state recorded (ids are unique across documents, as Photoshop's). */
  historyId: number;
  nextLayerId: number;
  nextLayerNumber: number;
}

interface Suspension {
  handle: HistorySuspension & { finalName?: string };
  docId: number;
  name: string;
  before: DocState;
  changed: boolean;
}

interface ModalScope {
  commandName: string;
  suspensions: Suspension[];
  autoClose: Set<number>;
  ended: boolean;
}

export interface SimCall {
  name: string;
  args: unknown;
  /** Whether a modal scope (executeAsModal) was active. */
  modal: boolean;
}

const EMPTY: Rect = { left: 0, top: 0, right: 0, bottom: 0 };

const state = {
  docs: [] as DocState[],
  activeId: null as number | null,
  nextDocId: 1,
  nextUntitled: 1,
  nextSuspensionId: 1,
  nextHistoryId: 1,
  calls: [] as SimCall[],
  modal: null as ModalScope | null,
  /** Another plugin holding the modal state (sim.holdModal). */
  foreignModal: null as string | null,
  imageData: [] as SimImageData[],
  failures: [] as Array<{ name: string; error: Error }>,
  /** false: Document.selection is missing, as before Photoshop 25.0 (RESEARCH.md §4.3). */
  selectionApi: true,
};

// ─── Helpers ───

function summarize(value: unknown, depth = 0): unknown {
  if (value instanceof Uint8Array || value instanceof Uint16Array || value instanceof Float32Array) return `${value.constructor.name}(${value.length})`;
  if (value instanceof SimImageData) return `imageData#${value.serial}`;
  if (typeof value === 'function') return 'function';
  if (Array.isArray(value)) return depth > 4 ? '[…]' : value.map((v) => summarize(v, depth + 1));
  if (value && typeof value === 'object') {
    if (depth > 4) return '{…}';
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = summarize(v, depth + 1);
    return out;
  }
  return value;
}

/** Records the call, then throws a failure queued for it by `sim.failNext`. */
function record(name: string, args: unknown): void {
  state.calls.push({ name, args: summarize(args), modal: state.modal !== null });
  const at = state.failures.findIndex((f) => f.name === name);
  if (at >= 0) {
    const [failure] = state.failures.splice(at, 1);
    throw failure.error;
  }
}

function notSimulated(what: string): Error {
  return new Error(`photoshop sim: ${what} is not simulated`);
}

/**
 * "Operations requiring a modal state include creating or modifying documents" (PSDOCS
 * executeasmodal.md). Photoshop's own error text differs; what matters is that it throws.
 */
function requireModal(name: string): ModalScope {
  if (!state.modal) throw new Error(`${name} modifies the document: Photoshop only allows that inside a modal scope (core.executeAsModal)`);
  return state.modal;
}

function pixelDepth(doc: DocState): 8 | 16 | undefined {
  return doc.bits === BitsPerChannelType.EIGHT ? 8 : doc.bits === BitsPerChannelType.SIXTEEN ? 16 : undefined;
}

function colourComponents(doc: DocState): 1 | 3 | undefined {
  return doc.mode === DocumentMode.RGB ? 3 : doc.mode === DocumentMode.GRAYSCALE ? 1 : undefined;
}

function colourSpace(doc: DocState): 'RGB' | 'Grayscale' | undefined {
  return doc.mode === DocumentMode.RGB ? 'RGB' : doc.mode === DocumentMode.GRAYSCALE ? 'Grayscale' : undefined;
}

/** PSDOCS imaging.md: "8 → 0..255; 16 → 0..32768". */
function maxValue(depth: 8 | 16): number {
  return depth === 16 ? 32768 : 255;
}

/** Depth and colour components, or a refusal for documents whose pixels the sim does not hold. */
function pixelFormat(doc: DocState): { depth: 8 | 16; colour: 1 | 3 } {
  const depth = pixelDepth(doc);
  const colour = colourComponents(doc);
  if (!depth || !colour) throw notSimulated(`pixel data of ${doc.mode} ${doc.bits} documents`);
  return { depth, colour };
}

function layerComponents(doc: DocState, layer: LayerState): number {
  return pixelFormat(doc).colour + (layer.background ? 0 : 1);
}

function alloc(depth: 8 | 16, length: number): Pixels {
  return depth === 16 ? new Uint16Array(length) : new Uint8Array(length);
}

const widthOf = (r: Rect) => Math.max(0, r.right - r.left);
const heightOf = (r: Rect) => Math.max(0, r.bottom - r.top);
const isEmpty = (r: Rect) => widthOf(r) === 0 || heightOf(r) === 0;

function intersect(a: Rect, b: Rect): Rect {
  const r = { left: Math.max(a.left, b.left), top: Math.max(a.top, b.top), right: Math.min(a.right, b.right), bottom: Math.min(a.bottom, b.bottom) };
  return isEmpty(r) ? { ...EMPTY } : r;
}

function union(a: Rect, b: Rect): Rect {
  if (isEmpty(a)) return { ...b };
  if (isEmpty(b)) return { ...a };
  return { left: Math.min(a.left, b.left), top: Math.min(a.top, b.top), right: Math.max(a.right, b.right), bottom: Math.max(a.bottom, b.bottom) };
}

/** `{left, top, right, bottom}` or `{left, top, width, height}`, right/bottom exclusive (PSDOCS imaging.md). */
function toRect(b: { left: number; top: number; right?: number; bottom?: number; width?: number; height?: number }, what: string): Rect {
  const right = b.right ?? (b.width !== undefined ? b.left + b.width : undefined);
  const bottom = b.bottom ?? (b.height !== undefined ? b.top + b.height : undefined);
  for (const v of [b.left, b.top, right, bottom]) if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${what}: bounds need integer left, top and right/bottom or width/height`);
  return { left: b.left, top: b.top, right: right!, bottom: bottom! };
}

function cloneLayer(layer: LayerState): LayerState {
  return { ...layer, extent: { ...layer.extent }, children: layer.children ? layer.children.map(cloneLayer) : null };
}

/** Pixel buffers are shared: nothing mutates one in place, every change makes a new one. */
function cloneDoc(doc: DocState): DocState {
  return { ...doc, layers: doc.layers.map(cloneLayer), active: [...doc.active], selection: doc.selection ? { ...doc.selection } : null, history: [...doc.history] };
}

function docById(id: number | undefined, what: string): DocState {
  const doc = id === undefined || id < 0 ? state.docs.find((d) => d.id === state.activeId) : state.docs.find((d) => d.id === id);
  if (!doc) throw new Error(id === undefined || id < 0 ? `${what}: no document is open` : `${what}: no open document has id ${id}`);
  return doc;
}

function findLayer(layers: LayerState[], id: number, parent: LayerState | null = null): { layer: LayerState; list: LayerState[]; index: number; parent: LayerState | null } | undefined {
  for (let i = 0; i < layers.length; i++) {
    if (layers[i].id === id) return { layer: layers[i], list: layers, index: i, parent };
    const inner = layers[i].children ? findLayer(layers[i].children!, id, layers[i]) : undefined;
    if (inner) return inner;
  }
  return undefined;
}

function layerById(doc: DocState, id: number, what: string): LayerState {
  const found = findLayer(doc.layers, id);
  if (!found) throw new Error(`${what}: document ${doc.id} has no layer with id ${id}`);
  return found.layer;
}

function eachLayer(layers: LayerState[], fn: (layer: LayerState) => void): void {
  for (const layer of layers) {
    fn(layer);
    if (layer.children) eachLayer(layer.children, fn);
  }
}

/**
 * A layer's bounds: where it has pixels that are not fully transparent ("trimmed to only that
 * region that contains pixel data", PSDOCS imaging.md); a group's are its children's together.
 */
function pixelBounds(doc: DocState, layer: LayerState): Rect {
  if (layer.children) return layer.children.reduce((acc, child) => union(acc, pixelBounds(doc, child)), { ...EMPTY });
  if (!layer.data || isEmpty(layer.extent)) return { ...EMPTY };
  if (layer.background) return { ...layer.extent };
  const comps = layerComponents(doc, layer);
  const w = widthOf(layer.extent);
  const h = heightOf(layer.extent);
  let left = w, top = h, right = -1, bottom = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (layer.data[(y * w + x) * comps + comps - 1] === 0) continue;
      if (x < left) left = x;
      if (x > right) right = x;
      if (y < top) top = y;
      if (y > bottom) bottom = y;
    }
  }
  if (right < 0) return { ...EMPTY };
  return { left: layer.extent.left + left, top: layer.extent.top + top, right: layer.extent.left + right + 1, bottom: layer.extent.top + bottom + 1 };
}

/** The pixels of `data` (covering `extent`) inside `region`; zeros where `extent` has none. */
function cropPixels(data: Pixels, extent: Rect, comps: number, region: Rect, depth: 8 | 16): Pixels {
  const w = widthOf(region);
  const h = heightOf(region);
  const out = alloc(depth, w * h * comps);
  const ew = widthOf(extent);
  const inside = intersect(extent, region);
  for (let y = inside.top; y < inside.bottom; y++) {
    const from = ((y - extent.top) * ew + (inside.left - extent.left)) * comps;
    const to = ((y - region.top) * w + (inside.left - region.left)) * comps;
    out.set(data.subarray(from, from + widthOf(inside) * comps), to);
  }
  return out;
}

/**
 * The composite of the visible layers inside `region` (documented: "pixels from the composite
 * document image"). How Photoshop composites is not the subject here: the sim does normal blend
 * with alpha ("over", unpremultiplied components), groups as pass-through, hidden layers left out.
 * With a visible background layer the result is opaque and has no alpha component.
 */
function composite(doc: DocState, region: Rect): { data: Pixels; components: number } {
  const { depth, colour } = pixelFormat(doc);
  const max = maxValue(depth);
  const w = widthOf(region);
  const h = heightOf(region);
  const n = w * h;
  const colourAcc = new Float64Array(n * colour);
  const alphaAcc = new Float64Array(n);
  let opaque = false;
  const paint = (layers: LayerState[]) => {
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i];
      if (!layer.visible) continue;
      if (layer.children) {
        paint(layer.children);
        continue;
      }
      if (!layer.data) continue;
      if (layer.background) opaque = true;
      const comps = colour + (layer.background ? 0 : 1);
      const inside = intersect(layer.extent, region);
      const ew = widthOf(layer.extent);
      for (let y = inside.top; y < inside.bottom; y++) {
        for (let x = inside.left; x < inside.right; x++) {
          const s = ((y - layer.extent.top) * ew + (x - layer.extent.left)) * comps;
          const d = (y - region.top) * w + (x - region.left);
          const sa = layer.background ? 1 : layer.data[s + colour] / max;
          if (sa === 0) continue;
          const da = alphaAcc[d];
          const oa = sa + da * (1 - sa);
          for (let c = 0; c < colour; c++) {
            const sc = layer.data[s + c] / max;
            colourAcc[d * colour + c] = da === 0 ? sc : (sc * sa + colourAcc[d * colour + c] * da * (1 - sa)) / oa;
          }
          alphaAcc[d] = oa;
        }
      }
    }
  };
  paint(doc.layers);
  const components = colour + (opaque ? 0 : 1);
  const data = alloc(depth, n * components);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < colour; c++) data[i * components + c] = Math.round(colourAcc[i * colour + c] * max);
    if (!opaque) data[i * components + colour] = Math.round(alphaAcc[i] * max);
  }
  return { data, components };
}

/**
 * Resamples a layer's pixels for resizeImage: the extent scales with the canvas (edges rounded),
 * each output pixel centre maps back to the source, bilinear between the 4 nearest pixels
 * (edge-clamped, each component on its own), or the nearest one for NEARESTNEIGHBOR. Photoshop
 * uses bicubic variants: the sim only needs every layer to move and scale with the canvas.
 */
function resampleLayer(data: Pixels, comps: number, extent: Rect, sx: number, sy: number, nearest: boolean, depth: 8 | 16): { extent: Rect; data: Pixels } {
  const next = { left: Math.round(extent.left * sx), top: Math.round(extent.top * sy), right: Math.round(extent.right * sx), bottom: Math.round(extent.bottom * sy) };
  const w = widthOf(extent);
  const h = heightOf(extent);
  const nw = widthOf(next);
  const nh = heightOf(next);
  const out = alloc(depth, nw * nh * comps);
  if (w === 0 || h === 0) return { extent: next, data: out };
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let dy = 0; dy < nh; dy++) {
    const v = clamp((next.top + dy + 0.5) / sy - 0.5 - extent.top, h - 1);
    const y0 = Math.floor(v);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = v - y0;
    for (let dx = 0; dx < nw; dx++) {
      const u = clamp((next.left + dx + 0.5) / sx - 0.5 - extent.left, w - 1);
      const o = (dy * nw + dx) * comps;
      if (nearest) {
        const s = (Math.round(v) * w + Math.round(u)) * comps;
        for (let c = 0; c < comps; c++) out[o + c] = data[s + c];
        continue;
      }
      const x0 = Math.floor(u);
      const x1 = Math.min(x0 + 1, w - 1);
      const fx = u - x0;
      for (let c = 0; c < comps; c++) {
        const top = data[(y0 * w + x0) * comps + c] * (1 - fx) + data[(y0 * w + x1) * comps + c] * fx;
        const bottom = data[(y1 * w + x0) * comps + c] * (1 - fx) + data[(y1 * w + x1) * comps + c] * fx;
        out[o + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { extent: next, data: out };
}

function openSuspension(docId: number): Suspension | undefined {
  return state.modal?.suspensions.find((s) => s.docId === docId);
}

/**
 * A change to a document: inside a history suspension it is coalesced into the suspension's
 * state (PSDOCS executeasmodal.md, "History state suspension"); outside one, Photoshop records
 * each command as its own state (assumed: one state per call, named after the command).
 */
function changed(doc: DocState, historyName: string): void {
  const suspension = openSuspension(doc.id);
  if (suspension) suspension.changed = true;
  else pushHistory(doc, historyName);
}

function pushHistory(doc: DocState, name: string): void {
  doc.history.push(name);
  doc.historyId = state.nextHistoryId++;
}

function restore(snapshot: DocState): void {
  const at = state.docs.findIndex((d) => d.id === snapshot.id);
  if (at >= 0) state.docs[at] = cloneDoc(snapshot);
}

function closeDocument(id: number): void {
  state.docs = state.docs.filter((d) => d.id !== id);
  if (state.activeId === id) state.activeId = state.docs.length ? state.docs[state.docs.length - 1].id : null;
}

function checkRange(data: Pixels, depth: 8 | 16, what: string): void {
  if (depth !== 16) return;
  for (let i = 0; i < data.length; i++) {
    if (data[i] > 32768) throw new Error(`${what}: 16-bit value ${data[i]} at index ${i} is outside Photoshop's 0..32768 (the sim is strict here; Photoshop documents the range, not what it does outside it)`);
  }
}

// ─── DOM handles: like Photoshop's, they hold ids and read the live state on every access ───

class SimBounds {
  constructor(readonly left: number, readonly top: number, readonly right: number, readonly bottom: number) {}
  get width(): number {
    return this.right - this.left;
  }
  get height(): number {
    return this.bottom - this.top;
  }
  get typename(): 'Bounds' {
    return 'Bounds';
  }
}

const bounds = (r: Rect) => new SimBounds(r.left, r.top, r.right, r.bottom);

export class SimLayer {
  constructor(
    readonly _id: number,
    readonly _docId: number,
  ) {}

  private get doc(): DocState {
    return docById(this._docId, `layer ${this._id}`);
  }

  private get state(): LayerState {
    return layerById(this.doc, this._id, 'Layer');
  }

  get typename(): 'Layer' {
    return 'Layer';
  }
  get id(): number {
    this.state;
    return this._id;
  }
  get name(): string {
    return this.state.name;
  }
  /** Renaming is a document change: modal only, one history state. */
  set name(name: string) {
    record('Layer.name=', { layer: this._id, name });
    requireModal('Layer.name');
    const doc = this.doc;
    layerById(doc, this._id, 'Layer.name').name = String(name);
    changed(doc, 'Rename Layer');
  }
  get kind(): string {
    return this.state.kind;
  }
  get isBackgroundLayer(): boolean {
    return this.state.background;
  }
  get visible(): boolean {
    return this.state.visible;
  }
  get bounds(): SimBounds {
    return bounds(pixelBounds(this.doc, this.state));
  }
  /** No effects are simulated, so the same as `bounds`. */
  get boundsNoEffects(): SimBounds {
    return bounds(pixelBounds(this.doc, this.state));
  }
  /** Group layers only (layer.md: "The layers inside this group layer"); null otherwise, as @types types it. */
  get layers(): SimLayer[] | null {
    const children = this.state.children;
    return children ? children.map((c) => new SimLayer(c.id, this._docId)) : null;
  }
  get parent(): SimLayer | null {
    const found = findLayer(this.doc.layers, this._id);
    return found?.parent ? new SimLayer(found.parent.id, this._docId) : null;
  }
  get document(): SimDocument {
    return new SimDocument(this._docId);
  }
}

export class SimSelection {
  constructor(readonly docId: number) {}
  get typename(): 'Selection' {
    return 'Selection';
  }
  /** selection.md (25.0): the bounding rectangle, null without a selection; may exceed the canvas. */
  get bounds(): SimBounds | null {
    const s = docById(this.docId, 'Selection').selection;
    return s ? bounds(s) : null;
  }
  get solid(): boolean {
    return docById(this.docId, 'Selection').selection !== null;
  }
}

export class SimDocument {
  constructor(readonly _id: number) {}

  private get state(): DocState {
    return docById(this._id, `document ${this._id}`);
  }

  get typename(): 'Document' {
    return 'Document';
  }
  get id(): number {
    this.state;
    return this._id;
  }
  get title(): string {
    return this.state.title;
  }
  get name(): string {
    return this.state.title;
  }
  get width(): number {
    return this.state.width;
  }
  /** The state the document is at (PSDOCS Document.activeHistoryState): a new id after every recorded change. */
  get activeHistoryState(): { typename: 'HistoryState'; id: number; docId: number; name: string; snapshot: boolean } {
    const doc = this.state;
    return { typename: 'HistoryState', id: doc.historyId, docId: doc.id, name: doc.history.at(-1) ?? 'Open', snapshot: false };
  }
  get height(): number {
    return this.state.height;
  }
  get resolution(): number {
    return this.state.resolution;
  }
  get mode(): string {
    return this.state.mode;
  }
  get bitsPerChannel(): string {
    return this.state.bits;
  }
  get colorProfileName(): string {
    return this.state.profile;
  }
  get layers(): SimLayer[] {
    return this.state.layers.map((l) => new SimLayer(l.id, this._id));
  }
  get activeLayers(): SimLayer[] {
    return this.state.active.map((id) => new SimLayer(id, this._id));
  }
  get backgroundLayer(): SimLayer | null {
    const bottom = this.state.layers[this.state.layers.length - 1];
    return bottom?.background ? new SimLayer(bottom.id, this._id) : null;
  }
  /** Document.selection arrived in 25.0; `sim.reset({selectionApi: false})` hides it like older versions. */
  get selection(): SimSelection | undefined {
    this.state;
    return state.selectionApi ? new SimSelection(this._id) : undefined;
  }

  /**
   * document.md resizeImage(width?, height?, resolution?, resampleMethod?, amount?): every layer is
   * resampled to the new size (the sim: bilinear, see resampleLayer); the selection scales too.
   */
  async resizeImage(width?: number, height?: number, resolution?: number, resampleMethod?: string, amount?: number): Promise<void> {
    record('Document.resizeImage', { document: this._id, width, height, resolution, resampleMethod, amount });
    requireModal('Document.resizeImage');
    const doc = this.state;
    const { depth } = pixelFormat(doc);
    const w = width ?? (height !== undefined ? Math.round((doc.width * height) / doc.height) : doc.width);
    const h = height ?? (width !== undefined ? Math.round((doc.height * width) / doc.width) : doc.height);
    if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new Error(`Document.resizeImage: invalid size ${w}×${h}`);
    if (resampleMethod !== undefined && !(Object.values(ResampleMethod) as string[]).includes(resampleMethod)) throw new Error(`Document.resizeImage: unknown resample method ${resampleMethod}`);
    const sx = w / doc.width;
    const sy = h / doc.height;
    eachLayer(doc.layers, (layer) => {
      if (!layer.data) return;
      const next = resampleLayer(layer.data, layerComponents(doc, layer), layer.extent, sx, sy, resampleMethod === ResampleMethod.NEARESTNEIGHBOR, depth);
      layer.extent = layer.background ? { left: 0, top: 0, right: w, bottom: h } : next.extent;
      layer.data = next.data;
    });
    if (doc.selection) {
      const s = doc.selection;
      doc.selection = { left: Math.round(s.left * sx), top: Math.round(s.top * sy), right: Math.round(s.right * sx), bottom: Math.round(s.bottom * sy) };
    }
    doc.width = w;
    doc.height = h;
    if (resolution !== undefined) doc.resolution = resolution;
    changed(doc, 'Image Size');
  }

  /** document.md createPixelLayer (24.1): an empty pixel layer, above the active layer (assumed), made active. */
  async createPixelLayer(options: { name?: string; opacity?: number; blendMode?: string; fillNeutral?: boolean } = {}): Promise<SimLayer | null> {
    record('Document.createPixelLayer', { document: this._id, ...options });
    requireModal('Document.createPixelLayer');
    const doc = this.state;
    pixelFormat(doc);
    const layer: LayerState = {
      id: doc.nextLayerId++,
      name: options.name ?? `Layer ${doc.nextLayerNumber}`,
      kind: LayerKind.NORMAL,
      background: false,
      visible: true,
      extent: { ...EMPTY },
      data: null,
      children: null,
    };
    doc.nextLayerNumber++;
    const above = doc.active.length ? findLayer(doc.layers, doc.active[0]) : undefined;
    if (above) above.list.splice(above.index, 0, layer);
    else doc.layers.unshift(layer);
    doc.active = [layer.id];
    changed(doc, 'New Layer');
    return new SimLayer(layer.id, this._id);
  }

  createLayer(options?: { name?: string }): Promise<SimLayer | null> {
    return this.createPixelLayer(options);
  }
}

// ─── app ───

const WORKING_PROFILE: Record<string, string> = { RGBColorMode: 'sRGB IEC61966-2.1', grayscaleMode: 'Dot Gain 20%' };

export const app = {
  get typename(): 'Photoshop' {
    return 'Photoshop';
  },
  get documents(): SimDocument[] {
    return state.docs.map((d) => new SimDocument(d.id));
  },
  /** null without an open document. */
  get activeDocument(): SimDocument {
    return (state.activeId === null ? null : new SimDocument(state.activeId)) as SimDocument;
  },
  set activeDocument(doc: SimDocument) {
    record('app.activeDocument=', { document: doc.id });
    state.activeId = docById(doc.id, 'app.activeDocument').id;
  },

  /**
   * photoshop.md createDocument(options) (23.0), modal only. The new document becomes the active
   * one. `fill: transparent` gives one empty pixel layer "Layer 1"; other fills a Background.
   * Without `profile` the working space's profile is assumed (sRGB / Dot Gain 20%).
   */
  async createDocument(options: { name?: string; width?: number; height?: number; resolution?: number; mode?: string; fill?: string; depth?: number; profile?: string; fillColor?: unknown; preset?: string } = {}): Promise<SimDocument | null> {
    record('app.createDocument', options);
    requireModal('app.createDocument');
    if (options.preset !== undefined) throw notSimulated('createDocument presets');
    const mode = options.mode ?? NewDocumentMode.RGB;
    if (mode !== NewDocumentMode.RGB && mode !== NewDocumentMode.GRAYSCALE) throw notSimulated(`creating ${mode} documents`);
    const depth = options.depth ?? 8;
    if (depth !== 8 && depth !== 16) throw notSimulated(`creating ${depth}-bit documents`);
    const { width, height } = options;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width! < 1 || height! < 1) throw new Error(`app.createDocument: width and height must be positive integers (got ${width}×${height})`);
    const fill = options.fill ?? DocumentFill.WHITE;
    const doc: DocState = {
      id: state.nextDocId++,
      title: options.name ?? `Untitled-${state.nextUntitled++}`,
      width: width!,
      height: height!,
      resolution: options.resolution ?? 72,
      mode,
      bits: depth === 16 ? BitsPerChannelType.SIXTEEN : BitsPerChannelType.EIGHT,
      profile: options.profile ?? WORKING_PROFILE[mode],
      layers: [],
      active: [],
      selection: null,
      history: [],
      historyId: state.nextHistoryId++,
      nextLayerId: 1,
      nextLayerNumber: 1,
    };
    const canvas = { left: 0, top: 0, right: doc.width, bottom: doc.height };
    if (fill === DocumentFill.TRANSPARENT) {
      doc.layers.push({ id: doc.nextLayerId++, name: `Layer ${doc.nextLayerNumber++}`, kind: LayerKind.NORMAL, background: false, visible: true, extent: { ...EMPTY }, data: null, children: null });
    } else if (fill === DocumentFill.WHITE || fill === DocumentFill.BLACK || fill === DocumentFill.BACKGROUNDCOLOR) {
      const comps = mode === NewDocumentMode.RGB ? 3 : 1;
      const data = alloc(depth, doc.width * doc.height * comps);
      // The default background colour is white.
      data.fill(fill === DocumentFill.BLACK ? 0 : maxValue(depth));
      doc.layers.push({ id: doc.nextLayerId++, name: 'Background', kind: LayerKind.NORMAL, background: true, visible: true, extent: canvas, data, children: null });
    } else {
      throw notSimulated(`fill ${fill}`);
    }
    doc.active = [doc.layers[0].id];
    state.docs.push(doc);
    state.activeId = doc.id;
    return new SimDocument(doc.id);
  },
};

// ─── core ───

class ModalError extends Error {
  /** PSDOCS executeasmodal.md: `e.number == 9` when another plugin is modal. */
  readonly number = 9;
}

async function executeAsModal<T>(targetFunction: (executionContext: ExecutionContext, descriptor?: object) => Promise<T>, options: ExecuteAsModalOptions): Promise<T> {
  record('core.executeAsModal', { commandName: options?.commandName });
  if (!options || typeof options.commandName !== 'string' || options.commandName === '') throw new Error('executeAsModal: options.commandName is required');
  // "Only one plugin can be modal at any given time … executeAsModal would immediately throw an
  // error, declaring 'host is in a modal state'" (before 25.10, which retries for `timeOut`).
  if (state.foreignModal) throw new ModalError(`host is in a modal state (Plugin: ${state.foreignModal} is running a modal command)`);
  if (state.modal) throw new ModalError(`host is in a modal state: "${state.modal.commandName}" is still running (the sim refuses overlapping scopes; nothing in this plugin should nest them)`);
  const scope: ModalScope = { commandName: options.commandName, suspensions: [], autoClose: new Set(), ended: false };
  state.modal = scope;
  const live = () => {
    if (scope.ended) throw new Error('the modal scope has ended');
  };
  const context: ExecutionContext = {
    isCancelled: false,
    onCancel: undefined,
    reportProgress: (params) => {
      record('executionContext.reportProgress', params);
    },
    hostControl: {
      async suspendHistory(params: HistoryStateInfo): Promise<HistorySuspension> {
        record('hostControl.suspendHistory', params);
        live();
        const doc = docById(params?.documentID, 'suspendHistory');
        if (typeof params.documentID !== 'number') throw new Error('suspendHistory: documentID is required');
        if (typeof params.name !== 'string') throw new Error('suspendHistory: name is required');
        if (openSuspension(doc.id)) throw notSimulated('a second suspension of the same document');
        const handle = { historySuspensionID: state.nextSuspensionId++ };
        scope.suspensions.push({ handle, docId: doc.id, name: params.name, before: cloneDoc(doc), changed: false });
        return handle;
      },
      async resumeHistory(params: ResumeHistorySuspensionOptions, commit = true): Promise<void> {
        record('hostControl.resumeHistory', { ...params, commit });
        live();
        const at = scope.suspensions.findIndex((s) => s.handle.historySuspensionID === params?.historySuspensionID);
        if (at < 0) throw new Error(`resumeHistory: no open suspension ${params?.historySuspensionID}`);
        const [suspension] = scope.suspensions.splice(at, 1);
        finish(suspension, commit, params.finalName);
      },
      async registerAutoCloseDocument(documentID: number): Promise<void> {
        record('hostControl.registerAutoCloseDocument', { documentID });
        live();
        scope.autoClose.add(docById(documentID, 'registerAutoCloseDocument').id);
      },
      async unregisterAutoCloseDocument(documentID: number): Promise<void> {
        record('hostControl.unregisterAutoCloseDocument', { documentID });
        live();
        scope.autoClose.delete(documentID);
      },
    },
  };
  let result: T;
  try {
    result = await targetFunction(context, options.descriptor);
  } catch (error) {
    end(scope, false);
    throw error;
  }
  end(scope, true);
  return result;
}

/** One named state if the document changed (commit), or the document as it was (roll back). */
function finish(suspension: Suspension, commit: boolean, finalName?: string): void {
  const doc = state.docs.find((d) => d.id === suspension.docId);
  if (!doc) return;
  if (!commit) return restore(suspension.before);
  if (suspension.changed) pushHistory(doc, finalName ?? suspension.handle.finalName ?? suspension.name);
}

/**
 * "When the modal scope ends, Photoshop will auto-resume history on any document that is still in
 * a suspended state. If the target function … returns normally, then all unsuspended states are
 * committed. If [it] exits via an exception, then all unsuspended history states are cancelled."
 * Then documents registered for auto-close are closed without saving.
 */
function end(scope: ModalScope, committed: boolean): void {
  for (const suspension of scope.suspensions.splice(0)) finish(suspension, committed);
  for (const id of scope.autoClose) closeDocument(id);
  scope.ended = true;
  state.modal = null;
}

export const core = {
  apiVersion: 2,
  executeAsModal,
  isModal(): boolean {
    return state.modal !== null || state.foreignModal !== null;
  },
};

// ─── action ───

type Descriptor = ActionDescriptor;

/**
 * Only the descriptor the plugin uses before Photoshop 25: get the selection of a document
 * (RESEARCH.md §4.3). The answer holds `selection: {_obj: 'rectangle', top/left/bottom/right:
 * {_unit: 'pixelsUnit', _value}}`, and no `selection` key when nothing is selected.
 */
async function batchPlay(commands: Descriptor[], options?: object): Promise<Descriptor[]> {
  record('action.batchPlay', { commands, options });
  return commands.map((command) => {
    const target = command._target as Array<Record<string, unknown>> | undefined;
    const property = target?.find((t) => '_property' in t)?._property;
    const docRef = target?.find((t) => t._ref === 'document');
    if (command._obj !== 'get' || property !== 'selection' || !docRef) throw notSimulated(`batchPlay descriptor ${JSON.stringify(command)}`);
    const doc = typeof docRef._id === 'number' ? docById(docRef._id, 'batchPlay') : docRef._enum === 'ordinal' ? docById(undefined, 'batchPlay') : undefined;
    if (!doc) throw notSimulated(`batchPlay document reference ${JSON.stringify(docRef)}`);
    const s = doc.selection;
    if (!s) return {} as Descriptor;
    const px = (v: number) => ({ _unit: 'pixelsUnit', _value: v });
    return { selection: { _obj: 'rectangle', top: px(s.top), left: px(s.left), bottom: px(s.bottom), right: px(s.right) } } as unknown as Descriptor;
  });
}

export const action = { batchPlay };

// ─── imaging ───

type ImageDataShape = PsImaging.PhotoshopImageData;
type PixelFormat = PsImaging.PixelFormat;

let imageDataSerial = 0;

export class SimImageData implements ImageDataShape {
  readonly serial = ++imageDataSerial;
  disposed = false;
  readonly hasAlpha: boolean;
  readonly pixelFormat: PixelFormat;
  readonly chunky = true;
  /** The docs' name for `chunky`. */
  readonly isChunky = true;
  readonly type = 'image/uncompressed' as const;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly components: number,
    readonly componentSize: 8 | 16 | 32,
    readonly colorSpace: 'RGB' | 'Grayscale' | 'Lab',
    readonly colorProfile: string,
    /** Chunky. */
    readonly pixels: Uint8Array | Uint16Array | Float32Array,
    readonly origin: string,
  ) {
    const colour = colorSpace === 'Grayscale' ? 1 : 3;
    this.hasAlpha = components === colour + 1;
    const base = colorSpace === 'Grayscale' ? 'Grayscale' : colorSpace === 'Lab' ? 'LAB' : 'RGB';
    this.pixelFormat = (this.hasAlpha ? (base === 'RGB' ? 'RGBA' : `${base}Alpha`) : base) as PixelFormat;
    state.imageData.push(this);
  }

  /** imaging.md getData({chunky = true, fullRange = false}): a new typed array per the component size. */
  getData = async (options: PsImaging.GetDataOptions = {}): Promise<Uint8Array | Uint16Array | Float32Array> => {
    record('imageData.getData', { imageData: this.serial, ...options });
    if (this.disposed) throw new Error('getData: this image data was disposed');
    if (options?.fullRange && this.componentSize === 16) throw notSimulated('getData({fullRange: true})');
    if (options?.chunky === false) return toPlanar(this.pixels, this.components);
    return this.pixels.slice();
  };

  /** imaging.md: releases the pixel memory at once (typed `Promise<void>`). */
  dispose = async (): Promise<void> => {
    record('imageData.dispose', { imageData: this.serial });
    this.disposed = true;
  };
}

function toPlanar<T extends Uint8Array | Uint16Array | Float32Array>(data: T, comps: number): T {
  const n = data.length / comps;
  const out = data.slice() as T;
  for (let i = 0; i < n; i++) for (let c = 0; c < comps; c++) out[c * n + i] = data[i * comps + c];
  return out;
}

function toChunky<T extends Uint8Array | Uint16Array | Float32Array>(data: T, comps: number): T {
  const n = data.length / comps;
  const out = data.slice() as T;
  for (let i = 0; i < n; i++) for (let c = 0; c < comps; c++) out[i * comps + c] = data[c * n + i];
  return out;
}

async function getPixels(options: PsImaging.GetPixelsOptions): Promise<PsImaging.GetPixelsResult> {
  record('imaging.getPixels', options);
  const doc = docById(options?.documentID, 'getPixels');
  const { depth, colour } = pixelFormat(doc);
  const size = options.componentSize;
  if (size !== undefined && size !== -1 && size !== depth) throw notSimulated(`getPixels componentSize ${size} from a ${depth}-bit document (conversion)`);
  if (options.targetSize) throw notSimulated('getPixels targetSize (scaled reads)');
  if (options.applyAlpha) throw notSimulated('getPixels applyAlpha');
  if (options.colorSpace !== undefined && options.colorSpace !== colourSpace(doc)) throw notSimulated(`getPixels colour conversion to ${options.colorSpace}`);
  if (options.colorProfile !== undefined && options.colorProfile !== doc.profile) throw notSimulated(`getPixels profile conversion to ${options.colorProfile}`);
  const requested = options.sourceBounds ? toRect(options.sourceBounds, 'getPixels sourceBounds') : undefined;
  let region: Rect;
  let data: Pixels;
  let components: number;
  if (options.layerID !== undefined) {
    const layer = layerById(doc, options.layerID, 'getPixels');
    if (layer.children) throw notSimulated('getPixels of a group layer');
    const trimmed = pixelBounds(doc, layer);
    region = requested ? intersect(trimmed, requested) : trimmed;
    if (isEmpty(region)) throw new Error(`getPixels: layer ${layer.id} has no pixels in the requested area`);
    components = layerComponents(doc, layer);
    data = cropPixels(layer.data!, layer.extent, components, region, depth);
  } else {
    const canvas = { left: 0, top: 0, right: doc.width, bottom: doc.height };
    region = requested ? intersect(canvas, requested) : canvas;
    if (isEmpty(region)) throw new Error('getPixels: the requested area is outside the canvas');
    ({ data, components } = composite(doc, region));
  }
  const imageData = new SimImageData(widthOf(region), heightOf(region), components, depth, colour === 3 ? 'RGB' : 'Grayscale', doc.profile, data, `getPixels(document ${doc.id})`);
  return { imageData, sourceBounds: bounds(region), level: 0 };
}

/**
 * imaging.md createImageDataFromBuffer(typedArray, {width, height, components, colorSpace,
 * chunky = true, colorProfile, fullRange = false}): the array type sets the component size
 * (Uint8Array 8, Uint16Array 16, Float32Array 32); the element count must be
 * width × height × components. The data is copied.
 */
async function createImageDataFromBuffer(arrayBuffer: Uint8Array | Uint16Array | Float32Array, options: PsImaging.CreateImageDataFromBufferOptions): Promise<SimImageData> {
  record('imaging.createImageDataFromBuffer', { arrayBuffer, ...options });
  const componentSize = arrayBuffer instanceof Uint8Array ? 8 : arrayBuffer instanceof Uint16Array ? 16 : arrayBuffer instanceof Float32Array ? 32 : undefined;
  if (!componentSize) throw new TypeError('createImageDataFromBuffer: the data must be a Uint8Array, Uint16Array or Float32Array');
  const { width, height, components, colorSpace } = options ?? ({} as PsImaging.CreateImageDataFromBufferOptions);
  for (const [k, v] of Object.entries({ width, height, components })) if (!Number.isInteger(v) || v < 1) throw new Error(`createImageDataFromBuffer: ${k} must be a positive integer (got ${v})`);
  if (colorSpace === 'Lab') throw notSimulated('Lab image data');
  if (colorSpace !== 'RGB' && colorSpace !== 'Grayscale') throw new Error(`createImageDataFromBuffer: unknown colorSpace ${colorSpace}`);
  const allowed = colorSpace === 'RGB' ? [3, 4] : [1, 2];
  if (!allowed.includes(components)) throw new Error(`createImageDataFromBuffer: ${components} components do not fit ${colorSpace}`);
  if (arrayBuffer.length !== width * height * components) {
    throw new Error(`createImageDataFromBuffer: the buffer has ${arrayBuffer.length} elements; width × height × components = ${width * height * components}`);
  }
  if (options.fullRange && componentSize === 16) throw notSimulated('createImageDataFromBuffer({fullRange: true})');
  const pixels = options.chunky === false ? toChunky(arrayBuffer, components) : arrayBuffer.slice();
  if (componentSize !== 32) checkRange(pixels as Pixels, componentSize, 'createImageDataFromBuffer');
  return new SimImageData(width, height, components, componentSize, colorSpace, options.colorProfile ?? '', pixels, 'createImageDataFromBuffer');
}

/**
 * imaging.md putPixels({documentID, layerID, imageData, replace = true, targetBounds}): the target
 * "must be a pixel layer"; `replace` discards the layer's pixels first (false: the new pixels are
 * written over the existing ones, assumed); pixels land at targetBounds.left/top ("width/height
 * are not used"), default (0, 0). Modal only. RGB data into a layer with transparency is opaque.
 */
async function putPixels(options: PsImaging.PutPixelsOptions): Promise<void> {
  record('imaging.putPixels', options);
  requireModal('imaging.putPixels');
  const doc = docById(options?.documentID, 'putPixels');
  const { depth, colour } = pixelFormat(doc);
  const layer = layerById(doc, options.layerID, 'putPixels');
  if (layer.kind !== LayerKind.NORMAL || layer.children) throw new Error(`putPixels: the target layer must be a pixel layer ("${layer.name}" is ${layer.kind})`);
  const image = options.imageData;
  if (!(image instanceof SimImageData)) throw new TypeError('putPixels: imageData must come from the imaging API');
  if (image.disposed) throw new Error('putPixels: the image data was disposed');
  if (image.colorSpace !== colourSpace(doc)) throw notSimulated(`putPixels colour conversion from ${image.colorSpace} into a ${doc.mode} document`);
  if (image.colorProfile !== '' && image.colorProfile !== doc.profile) throw notSimulated(`putPixels profile conversion from ${image.colorProfile} to ${doc.profile}`);
  if (image.componentSize !== depth) throw notSimulated(`putPixels of ${image.componentSize}-bit data into a ${depth}-bit document (conversion)`);
  const at = options.targetBounds ?? { left: 0, top: 0 };
  if (!Number.isInteger(at.left) || !Number.isInteger(at.top)) throw new Error('putPixels: targetBounds.left/top must be integers');
  const rect = { left: at.left, top: at.top, right: at.left + image.width, bottom: at.top + image.height };
  const replace = options.replace ?? true;
  const comps = colour + (layer.background ? 0 : 1);
  if (layer.background && image.hasAlpha) throw notSimulated('putPixels of pixels with alpha into the background layer');
  if (layer.background && replace && (rect.left !== 0 || rect.top !== 0 || rect.right !== doc.width || rect.bottom !== doc.height)) {
    throw notSimulated('replacing part of the background layer (it cannot be transparent)');
  }
  const max = maxValue(depth);
  const n = image.width * image.height;
  const incoming = alloc(depth, n * comps);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < colour; c++) incoming[i * comps + c] = image.pixels[i * image.components + c];
    if (comps > colour) incoming[i * comps + colour] = image.hasAlpha ? image.pixels[i * image.components + colour] : max;
  }
  if (replace || !layer.data) {
    layer.extent = rect;
    layer.data = incoming;
  } else {
    const extent = union(layer.extent, rect);
    const merged = cropPixels(layer.data, layer.extent, comps, extent, depth);
    const w = widthOf(extent);
    for (let y = 0; y < image.height; y++) merged.set(incoming.subarray(y * image.width * comps, (y + 1) * image.width * comps), ((rect.top - extent.top + y) * w + (rect.left - extent.left)) * comps);
    layer.extent = extent;
    layer.data = merged;
  }
  changed(doc, options.commandName ?? 'Put Pixels');
}

export const imaging = { getPixels, putPixels, createImageDataFromBuffer };

// ─── Test control ───

export interface SimLayerSpec {
  name: string;
  /** A LayerKind value; default "pixel". Text and smart objects hold the pixels they render. */
  kind?: string;
  /** The Background layer: opaque (no alpha component), covers the canvas, bottom of the stack. */
  background?: boolean;
  visible?: boolean;
  /** Where `pixels` sit; default the canvas. */
  rect?: Rect;
  /** Chunky, colour components then alpha (none for the background), 16-bit values 0..32768. */
  pixels?: Pixels;
  /** A group: its layers, top to bottom. */
  children?: SimLayerSpec[];
}

export interface SimDocumentSpec {
  title: string;
  width: number;
  height: number;
  resolution?: number;
  /** A DocumentMode value; default RGB. */
  mode?: string;
  /** A BitsPerChannelType value; default 8 bits. */
  bits?: string;
  /** Default sRGB IEC61966-2.1; "None" for an untagged document (document.md colorProfileName). */
  profile?: string;
  /** Top to bottom. */
  layers: SimLayerSpec[];
  /** Names of the active layers; default the top layer. */
  active?: string[];
  selection?: Rect | null;
}

export interface SimLayerView {
  id: number;
  name: string;
  kind: string;
  background: boolean;
  visible: boolean;
  /** Where the stored pixels sit. */
  extent: Rect;
  /** Where the pixels are not fully transparent. */
  bounds: Rect;
  parentId: number | null;
}

function buildLayer(doc: DocState, spec: SimLayerSpec): LayerState {
  const children = spec.children ? spec.children.map((c) => buildLayer(doc, c)) : null;
  const layer: LayerState = {
    id: doc.nextLayerId++,
    name: spec.name,
    kind: spec.children ? LayerKind.GROUP : (spec.kind ?? LayerKind.NORMAL),
    background: spec.background ?? false,
    visible: spec.visible ?? true,
    extent: { ...EMPTY },
    data: null,
    children,
  };
  doc.nextLayerNumber++;
  if (spec.pixels) {
    const { depth } = pixelFormat(doc);
    const extent = spec.rect ?? { left: 0, top: 0, right: doc.width, bottom: doc.height };
    if (layer.background && (extent.left !== 0 || extent.top !== 0 || extent.right !== doc.width || extent.bottom !== doc.height)) throw new Error(`sim: the background layer covers the canvas`);
    const comps = layerComponents(doc, layer);
    if ((depth === 16) !== spec.pixels instanceof Uint16Array) throw new Error(`sim: layer "${spec.name}": ${depth}-bit documents hold ${depth === 16 ? 'Uint16Array' : 'Uint8Array'} pixels`);
    if (spec.pixels.length !== widthOf(extent) * heightOf(extent) * comps) throw new Error(`sim: layer "${spec.name}" needs ${widthOf(extent) * heightOf(extent) * comps} values (${comps} a pixel)`);
    checkRange(spec.pixels, depth, `sim: layer "${spec.name}"`);
    layer.extent = { ...extent };
    layer.data = spec.pixels.slice();
  }
  return layer;
}

function allStates(layers: LayerState[], parentId: number | null = null, into: Array<{ layer: LayerState; parentId: number | null }> = []) {
  for (const layer of layers) {
    into.push({ layer, parentId });
    if (layer.children) allStates(layer.children, layer.id, into);
  }
  return into;
}

function addDocument(spec: SimDocumentSpec): number {
  const doc: DocState = {
    id: state.nextDocId++,
    title: spec.title,
    width: spec.width,
    height: spec.height,
    resolution: spec.resolution ?? 72,
    mode: spec.mode ?? DocumentMode.RGB,
    bits: spec.bits ?? BitsPerChannelType.EIGHT,
    profile: spec.profile ?? 'sRGB IEC61966-2.1',
    layers: [],
    active: [],
    selection: spec.selection ? { ...spec.selection } : null,
    history: [],
    historyId: state.nextHistoryId++,
    nextLayerId: 1,
    nextLayerNumber: 1,
  };
  // Photoshop numbers layers as they are made; a document is built bottom up.
  doc.layers = [...spec.layers].reverse().map((l) => buildLayer(doc, l)).reverse();
  const bg = doc.layers.findIndex((l) => l.background);
  if (bg >= 0 && bg !== doc.layers.length - 1) throw new Error('sim: the background layer is the bottom layer');
  const byName = new Map(allStates(doc.layers).map(({ layer }) => [layer.name, layer.id]));
  doc.active = (spec.active ?? (doc.layers.length ? [doc.layers[0].name] : [])).map((name) => {
    const id = byName.get(name);
    if (id === undefined) throw new Error(`sim: no layer named "${name}"`);
    return id;
  });
  state.docs.push(doc);
  state.activeId = doc.id;
  return doc.id;
}

function docState(id: number): DocState {
  const doc = state.docs.find((d) => d.id === id);
  if (!doc) throw new Error(`sim: no open document ${id}`);
  return doc;
}

/** Deep copy of a document (pixel buffers copied), for before/after equality. */
export type SimDocumentSnapshot = ReturnType<typeof cloneDoc>;

export const sim = {
  /** Closes everything and forgets all calls; then opens `documents` (the last one active). */
  reset(options: { documents?: SimDocumentSpec[]; selectionApi?: boolean } = {}): number[] {
    state.docs = [];
    state.activeId = null;
    state.calls = [];
    state.modal = null;
    state.foreignModal = null;
    state.imageData = [];
    state.failures = [];
    state.selectionApi = options.selectionApi ?? true;
    return (options.documents ?? []).map(addDocument);
  },
  addDocument,
  get calls(): readonly SimCall[] {
    return state.calls;
  },
  callNames(): string[] {
    return state.calls.map((c) => c.name);
  },
  documentIds(): number[] {
    return state.docs.map((d) => d.id);
  },
  activeDocumentId(): number | null {
    return state.activeId;
  },
  /** Title, size, mode… of an open document (no layers). */
  info(id: number) {
    const { title, width, height, resolution, mode, bits, profile, selection, active } = docState(id);
    return { title, width, height, resolution, mode, bits, profile, selection: selection ? { ...selection } : null, active: [...active] };
  },
  /** History states added since the document was opened or created, oldest first. */
  history(id: number): string[] {
    return [...docState(id).history];
  },
  snapshot(id: number): SimDocumentSnapshot {
    const copy = cloneDoc(docState(id));
    eachLayer(copy.layers, (l) => (l.data = l.data ? l.data.slice() : null));
    return copy;
  },
  /** Every layer, groups' children after their group, top to bottom. */
  layers(id: number): SimLayerView[] {
    const doc = docState(id);
    return allStates(doc.layers).map(({ layer, parentId }) => ({
      id: layer.id,
      name: layer.name,
      kind: layer.kind,
      background: layer.background,
      visible: layer.visible,
      extent: { ...layer.extent },
      bounds: pixelBounds(doc, layer),
      parentId,
    }));
  },
  layer(id: number, name: string): SimLayerView {
    const found = sim.layers(id).filter((l) => l.name === name);
    if (found.length !== 1) throw new Error(`sim: ${found.length} layers named "${name}" in document ${id}`);
    return found[0];
  },
  /** A layer's stored pixels (a copy): colour components, then alpha unless it is the background. */
  layerPixels(id: number, layerId: number): { extent: Rect; channels: number; depth: 8 | 16; data: Pixels } {
    const doc = docState(id);
    const layer = layerById(doc, layerId, 'sim.layerPixels');
    const { depth } = pixelFormat(doc);
    return { extent: { ...layer.extent }, channels: layerComponents(doc, layer), depth, data: layer.data ? layer.data.slice() : alloc(depth, 0) };
  },
  /** A change the user makes meanwhile (a brush stroke, an undo): a new history state; not a plugin call, so not recorded. */
  userEdit(id: number, name = 'Brush Tool'): void {
    pushHistory(docState(id), name);
  },
  /** Sets the selection rectangle, as the user's marquee would (not a plugin call: not recorded). */
  setSelection(id: number, selection: Rect | null): void {
    docState(id).selection = selection ? { ...selection } : null;
  },
  imageDataCreated(): number {
    return state.imageData.length;
  },
  undisposedImageData(): string[] {
    return state.imageData.filter((d) => !d.disposed).map((d) => `imageData#${d.serial} from ${d.origin}`);
  },
  /** The next call named `name` (e.g. "imaging.putPixels") throws `error` after being recorded. */
  failNext(name: string, error: Error = new Error(`simulated failure in ${name}`)): void {
    state.failures.push({ name, error });
  },
  /** Another plugin holds the modal state until `releaseModal()`. */
  holdModal(pluginId: string): void {
    state.foreignModal = pluginId;
  },
  releaseModal(): void {
    state.foreignModal = null;
  },
  isModal(): boolean {
    return state.modal !== null;
  },
};
