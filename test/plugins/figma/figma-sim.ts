/**
 * A small simulated Figma host for the plugin's main thread, following @figma/plugin-typings for
 * the parts the plugin uses: the page and its selection, rectangles/ellipses/frames/groups/text
 * with fills, images by hash (createImage, getImageByHash, getBytesAsync, getSizeAsync),
 * exportAsync, showUI and UI messaging, clientStorage, notify, commitUndo and the undo history.
 *
 * It checks what Figma checks and records what a test needs to see:
 * - createImage takes PNG, JPEG or GIF of at most 4096 px a side, else throws (as documented);
 * - paints and fills arrays come back frozen, so the plugin must build new ones;
 * - messages between the main thread and the UI must hold only what Figma's postMessage carries
 *   (plain objects, arrays, primitives, Date, Uint8Array) and arrive as structured clones,
 *   asynchronously;
 * - every document change is recorded with its inverse; commitUndo closes an undo step, and
 *   `undo()` reverts the last step as a designer's Ctrl+Z would;
 * - any member of `figma` the simulation does not implement throws when read, so the plugin
 *   cannot silently rely on something untested.
 * Frames have no renderer: a test gives a node the PNG its export returns (`rendering`).
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';

export const FIGMA_IMAGE_LIMIT = 4096;

type Inverse = () => void;

export interface ExportCall {
  node: string;
  settings: unknown;
}

export class FigmaSim {
  readonly mixed: symbol = Symbol('figma.mixed');
  readonly notifications: Array<{ message: string; error: boolean }> = [];
  readonly storage = new Map<string, unknown>();
  readonly images = new Map<string, SimImage>();
  readonly exportCalls: ExportCall[] = [];
  readonly scrolledTo: string[][] = [];
  /** Committed undo steps, oldest first; each holds the inverses of its changes. */
  readonly undoSteps: Inverse[][] = [];
  /** The document's first page, where tests build; `pages` holds every page, `current` the one shown. */
  readonly page: SimPage;
  readonly pages: SimPage[] = [];
  current: SimPage;
  /** True inside setUp(): the document a test starts from may have unloaded pages with children. */
  building = false;
  /** The UI side: receives what the main thread posts. */
  onUiMessage?: (message: unknown) => void;
  ui: { html?: string; options?: ShowUIOptions; onmessage?: (message: unknown, props: OnMessageProperties) => void } = {};
  readonly api: PluginAPI;
  private pending: Inverse[] = [];
  private nextId = 1;
  private readonly selectionListeners: Array<() => void> = [];

  constructor() {
    this.page = this.addPage('Page 1');
    this.current = this.page;
    this.page.loaded = true;
    this.api = strict('figma', this.buildApi()) as unknown as PluginAPI;
  }

  /** Document changes made since the last commitUndo. */
  get uncommitted(): number {
    return this.pending.length;
  }

  newId(): string {
    return `${this.nextId++}:1`;
  }

  record(inverse: Inverse): void {
    this.pending.push(inverse);
  }

  /** The designer presses Undo: the last committed step is reverted. */
  undo(): void {
    const step = this.undoSteps.pop();
    if (!step) throw new Error('nothing to undo');
    for (const inverse of [...step].reverse()) inverse();
    this.pending = [];
  }

  addPage(name: string): SimPage {
    const page = new SimPage(this, `0:${this.pages.length + 1}`, name);
    this.pages.push(page);
    return page;
  }

  /** The designer opens another page (not an undoable change, as in Figma). */
  switchPage(page: SimPage): void {
    this.current = page;
    page.loaded = true;
    this.selectionChanged();
  }

  /** The designer uses "Move to page": the node goes to `page`, which this does not load for the plugin. */
  moveToPage(node: SimNode, page: SimPage): void {
    insertChild(this, page, node);
  }

  /** What the UI sends (parent.postMessage({pluginMessage})) reaches figma.ui.onmessage. */
  sendFromUi(message: unknown): void {
    assertPostable(message, 'pluginMessage');
    const copy = structuredClone(message);
    setImmediate(() => this.ui.onmessage?.(copy, { origin: 'null' } as OnMessageProperties));
  }

  selectionChanged(): void {
    for (const listener of this.selectionListeners) setImmediate(listener);
  }

  /** An image as createImage would store it; used to set up a document. */
  addImage(bytes: Uint8Array): SimImage {
    const size = headerSize(bytes);
    if (!size) throw new Error('figma.createImage: the data is not a PNG, JPEG or GIF image');
    if (size.width > FIGMA_IMAGE_LIMIT || size.height > FIGMA_IMAGE_LIMIT) {
      throw new Error(`figma.createImage: image is ${size.width}×${size.height}; images are at most ${FIGMA_IMAGE_LIMIT}×${FIGMA_IMAGE_LIMIT}`);
    }
    const hash = createHash('sha1').update(bytes).digest('hex');
    const existing = this.images.get(hash);
    if (existing) return existing;
    const image = new SimImage(hash, new Uint8Array(bytes), size);
    this.images.set(hash, image);
    return image;
  }

  private buildApi(): Record<string, unknown> {
    const sim = this;
    const ui = strict('figma.ui', {
      postMessage(message: unknown) {
        assertPostable(message, 'pluginMessage');
        const copy = structuredClone(message);
        setImmediate(() => sim.onUiMessage?.(copy));
      },
      get onmessage() {
        return sim.ui.onmessage;
      },
      set onmessage(handler) {
        sim.ui.onmessage = handler;
      },
    });
    const clientStorage = strict('figma.clientStorage', {
      async getAsync(key: string) {
        return structuredClone(sim.storage.get(key));
      },
      async setAsync(key: string, value: unknown) {
        sim.storage.set(key, structuredClone(value));
      },
      async deleteAsync(key: string) {
        sim.storage.delete(key);
      },
      async keysAsync() {
        return [...sim.storage.keys()];
      },
    });
    const viewport = strict('figma.viewport', {
      scrollAndZoomIntoView(nodes: readonly SimNode[]) {
        sim.scrolledTo.push(nodes.map((n) => n.id));
      },
    });
    return {
      mixed: this.mixed,
      ui,
      clientStorage,
      viewport,
      get currentPage() {
        return sim.current;
      },
      showUI(html: string, options?: ShowUIOptions) {
        if (typeof html !== 'string') throw new Error('figma.showUI: html must be a string');
        sim.ui.html = html;
        sim.ui.options = options;
      },
      on(type: string, callback: () => void) {
        if (type !== 'selectionchange') throw new Error(`the simulation has no "${type}" event`);
        sim.selectionListeners.push(callback);
      },
      notify(message: string, options?: NotificationOptions) {
        sim.notifications.push({ message, error: options?.error === true });
        return { cancel() {} };
      },
      commitUndo() {
        if (sim.pending.length) sim.undoSteps.push(sim.pending);
        sim.pending = [];
      },
      createImage(data: Uint8Array) {
        if (!(data instanceof Uint8Array)) throw new Error('figma.createImage: data must be a Uint8Array');
        return sim.addImage(data);
      },
      getImageByHash(hash: string) {
        return sim.images.get(hash) ?? null;
      },
      createRectangle() {
        const rect = new SimRectangle(sim, 'RECTANGLE');
        rect.setFillsQuietly([{ type: 'SOLID', color: { r: 0.85, g: 0.85, b: 0.85 } }]);
        // "parented under figma.currentPage" (plugin-api.d.ts).
        sim.current.appendChild(rect);
        return rect;
      },
      group(nodes: readonly SimNode[], parent: SimParent) {
        if (nodes.length === 0) throw new Error('figma.group: at least one node is needed');
        const group = new SimContainer(sim, 'GROUP');
        parent.appendChild(group);
        for (const node of nodes) group.appendChild(node);
        return group;
      },
    };
  }
}

/** Reading a member the simulation lacks fails loudly instead of returning undefined. */
function strict<T extends object>(name: string, target: T): T {
  return new Proxy(target, {
    get(obj, key, receiver) {
      if (typeof key === 'string' && !(key in obj) && key !== 'then' && key !== 'toJSON') {
        throw new Error(`the Figma simulation does not implement ${name}.${key}`);
      }
      return Reflect.get(obj, key, receiver);
    },
  });
}

/**
 * What Figma's postMessage documents it carries; anything else would not arrive intact. Checked
 * by tag, not instanceof, so values from another realm (the bundle run in a vm) are judged alike.
 */
function assertPostable(value: unknown, path: string): void {
  if (value === null || value === undefined || ['string', 'number', 'boolean'].includes(typeof value)) return;
  const tag = Object.prototype.toString.call(value);
  if (tag === '[object Date]') return;
  if (tag === '[object Uint8Array]') {
    if ((value as object).constructor?.name !== 'Uint8Array') throw new Error(`${path} is a ${(value as object).constructor?.name}; send a plain Uint8Array`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => assertPostable(v, `${path}[${i}]`));
    return;
  }
  const proto = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (tag === '[object Object]' && (proto === null || Object.getPrototypeOf(proto) === null)) {
    for (const [key, v] of Object.entries(value as object)) assertPostable(v, `${path}.${key}`);
    return;
  }
  const kind = typeof value === 'object' ? (value as object).constructor?.name : typeof value;
  throw new Error(`figma's postMessage cannot carry ${path} (${kind}): only plain objects, arrays, primitives, Date and Uint8Array`);
}

/** Width and height from a PNG, GIF or JPEG header, read synchronously as createImage must. */
export function headerSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (bytes.length >= 10 && bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46) {
    return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 < bytes.length && bytes[at] === 0xff) {
      const marker = bytes[at + 1];
      const length = view.getUint16(at + 2);
      // SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: view.getUint16(at + 7), height: view.getUint16(at + 5) };
      }
      at += 2 + length;
    }
  }
  return undefined;
}

export class SimImage {
  constructor(
    readonly hash: string,
    readonly bytes: Uint8Array,
    readonly headerSize: { width: number; height: number },
  ) {}

  async getBytesAsync(): Promise<Uint8Array> {
    return new Uint8Array(this.bytes);
  }

  /** From the decoder, not the header reader, so the plugin's own header logic is checked against it. */
  async getSizeAsync(): Promise<{ width: number; height: number }> {
    const meta = await sharp(this.bytes).metadata();
    return { width: meta.width!, height: meta.height! };
  }
}

type SimNode = SimSceneNode;
type SimParent = SimContainer | SimPage;

function freezePaints(paints: readonly Paint[]): readonly Paint[] {
  return Object.freeze(paints.map((p) => Object.freeze(structuredClone(p))));
}

export class SimSceneNode {
  readonly id: string;
  parent: SimParent | null = null;
  /** What exportAsync({format: 'PNG', constraint: SCALE 1}) returns for this node. */
  rendering?: Uint8Array;
  private props = { name: '', x: 0, y: 0, width: 100, height: 100, rotation: 0 };
  private paints: readonly Paint[] | symbol = Object.freeze([]);

  constructor(
    protected readonly sim: FigmaSim,
    readonly type: NodeType,
  ) {
    this.id = sim.newId();
    this.props.name = `${type[0]}${type.slice(1).toLowerCase()} ${this.id}`;
  }

  private change<K extends keyof SimSceneNode['props']>(key: K, value: SimSceneNode['props'][K]): void {
    const before = this.props[key];
    if (before === value) return;
    this.props[key] = value;
    this.sim.record(() => (this.props[key] = before));
  }

  get name() {
    return this.props.name;
  }
  set name(value: string) {
    this.change('name', value);
  }
  get x() {
    return this.props.x;
  }
  set x(value: number) {
    this.change('x', value);
  }
  get y() {
    return this.props.y;
  }
  set y(value: number) {
    this.change('y', value);
  }
  get width() {
    return this.props.width;
  }
  get height() {
    return this.props.height;
  }
  get rotation() {
    return this.props.rotation;
  }
  set rotation(value: number) {
    this.change('rotation', value);
  }

  resize(width: number, height: number): void {
    if (!(width >= 0.01 && height >= 0.01)) throw new Error(`resize: width and height must be at least 0.01, got ${width}×${height}`);
    this.change('width', width);
    this.change('height', height);
  }

  /** BaseNode.removed: true once the node is no longer in the document (deleted, or inside a deleted parent). */
  get removed(): boolean {
    return pageOf(this) === null;
  }

  get fills(): readonly Paint[] | symbol {
    return this.paints;
  }
  set fills(value: readonly Paint[] | symbol) {
    // Figma refuses changes to a removed node.
    if (this.removed) throw new Error(`The node with id "${this.id}" does not exist`);
    if (typeof value === 'symbol') throw new Error('fills cannot be set to figma.mixed');
    for (const paint of value) {
      if (paint.type === 'IMAGE' && paint.imageHash && !this.sim.images.has(paint.imageHash)) throw new Error(`fills: no image with hash ${paint.imageHash}`);
    }
    const before = this.paints;
    this.paints = freezePaints(value);
    this.sim.record(() => (this.paints = before));
  }

  /** Document set-up in tests: no undo record. */
  setFillsQuietly(value: readonly Paint[] | symbol): void {
    this.paints = typeof value === 'symbol' ? value : freezePaints(value);
  }

  /** Position relative to the page; groups add no offset of their own, as in Figma. */
  get absoluteTransformOrigin(): { x: number; y: number } {
    let x = this.x;
    let y = this.y;
    for (let p = this.parent; p && p instanceof SimContainer; p = p.parent) {
      if (p.type !== 'GROUP') {
        x += p.x;
        y += p.y;
      }
    }
    return { x, y };
  }

  get absoluteBoundingBox(): Rect {
    // Figma throws on reading most properties of a removed node; this one is what the plugin reads late.
    if (this.removed) throw new Error(`The node with id "${this.id}" does not exist`);
    const { x, y } = this.absoluteTransformOrigin;
    // Figma rotates counter-clockwise about the top-left corner.
    const r = (-this.rotation * Math.PI) / 180;
    const corners = [
      [0, 0],
      [this.width, 0],
      [0, this.height],
      [this.width, this.height],
    ].map(([cx, cy]) => [x + cx * Math.cos(r) - cy * Math.sin(r), y + cx * Math.sin(r) + cy * Math.cos(r)]);
    const xs = corners.map((c) => c[0]);
    const ys = corners.map((c) => c[1]);
    return { x: Math.min(...xs), y: Math.min(...ys), width: Math.max(...xs) - Math.min(...xs), height: Math.max(...ys) - Math.min(...ys) };
  }

  async exportAsync(settings?: ExportSettings): Promise<Uint8Array> {
    this.sim.exportCalls.push({ node: this.id, settings: structuredClone(settings) });
    const image = settings as ExportSettingsImage | undefined;
    if (image?.format !== 'PNG' || image.constraint?.type !== 'SCALE' || image.constraint.value !== 1) {
      throw new Error(`the simulation exports only PNG at SCALE 1, asked for ${JSON.stringify(settings)}`);
    }
    if (!this.rendering) throw new Error(`the simulation has no rendering for "${this.name}": set node.rendering in the test`);
    return new Uint8Array(this.rendering);
  }

  remove(): void {
    this.parent?.removeChild(this, true);
  }
}

export class SimRectangle extends SimSceneNode {}

export class SimContainer extends SimSceneNode {
  readonly children: SimNode[] = [];

  appendChild(node: SimNode): void {
    insertChild(this.sim, this, node);
  }

  removeChild(node: SimNode, record: boolean): void {
    removeChild(this.sim, this, node, record);
  }
}

export class SimPage {
  readonly type = 'PAGE';
  readonly parent = null;
  readonly children: SimNode[] = [];
  /** With "dynamic-page" access, only the current page and pages given loadAsync() take children. */
  loaded = false;
  private selected: readonly SimNode[] = [];

  constructor(
    private readonly sim: FigmaSim,
    readonly id: string,
    readonly name: string,
  ) {}

  get selection(): readonly SimNode[] {
    return Object.freeze([...this.selected]);
  }
  /** Each page keeps its own selection; the simulation refuses a node of another page (what Figma does then is not documented). */
  set selection(nodes: readonly SimNode[]) {
    for (const node of nodes) {
      if (pageOf(node) !== this) throw new Error(`selection: the node with id "${node.id}" is not on page "${this.name}"`);
    }
    this.selected = [...nodes];
    // figma.on('selectionchange') is about the current page.
    if (this === this.sim.current) this.sim.selectionChanged();
  }

  async loadAsync(): Promise<void> {
    this.loaded = true;
  }

  appendChild(node: SimNode): void {
    // A plugin's appendChild runs after setUp; tests build documents with the page loaded or not.
    if (!this.loaded && !this.sim.building) throw new Error(`in appendChild: page "${this.name}" is not loaded: call loadAsync first (documentAccess "dynamic-page")`);
    insertChild(this.sim, this, node);
  }

  removeChild(node: SimNode, record: boolean): void {
    removeChild(this.sim, this, node, record);
  }
}

/** The page a node is on, or null once it (or a parent) has been removed. */
function pageOf(node: SimNode): SimPage | null {
  let at: SimParent | null = node.parent;
  while (at && at instanceof SimSceneNode) at = at.parent;
  return at;
}

function insertChild(sim: FigmaSim, parent: SimParent, node: SimNode): void {
  const from = node.parent;
  const fromIndex = from ? from.children.indexOf(node) : -1;
  if (from) from.children.splice(fromIndex, 1);
  parent.children.push(node);
  node.parent = parent;
  sim.record(() => {
    parent.children.splice(parent.children.indexOf(node), 1);
    node.parent = from;
    if (from) from.children.splice(fromIndex, 0, node);
  });
}

function removeChild(sim: FigmaSim, parent: SimParent, node: SimNode, record: boolean): void {
  const index = parent.children.indexOf(node);
  if (index < 0) return;
  parent.children.splice(index, 1);
  node.parent = null;
  if (record) {
    sim.record(() => {
      parent.children.splice(index, 0, node);
      node.parent = parent;
    });
  }
}

/** Builds a document without undo records: what was there before the plugin ran. */
export function setUp(sim: FigmaSim, build: () => void): void {
  sim.building = true;
  try {
    build();
  } finally {
    sim.building = false;
  }
  sim.api.commitUndo();
  sim.undoSteps.length = 0;
}

export function rectangle(sim: FigmaSim, props: { name: string; x?: number; y?: number; width: number; height: number; rotation?: number; fills?: Paint[] }, parent: SimParent = sim.page): SimRectangle {
  const node = new SimRectangle(sim, 'RECTANGLE');
  return place(node, props, parent);
}

export function ellipse(sim: FigmaSim, props: { name: string; x?: number; y?: number; width: number; height: number; fills?: Paint[] }, parent: SimParent = sim.page): SimRectangle {
  return place(new SimRectangle(sim, 'ELLIPSE'), props, parent);
}

export function frame(sim: FigmaSim, props: { name: string; x?: number; y?: number; width: number; height: number; fills?: Paint[] }, parent: SimParent = sim.page): SimContainer {
  return place(new SimContainer(sim, 'FRAME'), props, parent);
}

export function text(sim: FigmaSim, props: { name: string; width: number; height: number }, parent: SimParent = sim.page): SimRectangle {
  const node = place(new SimRectangle(sim, 'TEXT'), props, parent);
  // Text with differently filled ranges reports figma.mixed.
  node.setFillsQuietly(sim.mixed);
  return node;
}

function place<T extends SimSceneNode>(node: T, props: { name: string; x?: number; y?: number; width: number; height: number; rotation?: number; fills?: Paint[] }, parent: SimParent): T {
  // In the document first: Figma refuses changes to a node that is not in it.
  parent.appendChild(node);
  node.name = props.name;
  node.x = props.x ?? 0;
  node.y = props.y ?? 0;
  node.resize(props.width, props.height);
  node.rotation = props.rotation ?? 0;
  if (props.fills) node.fills = props.fills;
  return node;
}
