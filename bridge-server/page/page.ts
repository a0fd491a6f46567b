/**
 * The bridge's own web page: pairs itself with the code the server embeds in the HTML, then
 * uploads an image, follows the job's server-sent events and shows a before/after comparison,
 * what ran (mode, models, content, LR-PSNR) and, when asked for, the invented-detail map laid
 * over the result.
 * Plain DOM; bundled by scripts/build.mjs into dist/page/page.js (iife, es2020).
 */
import { psnr } from '../../core/metrics';
import { decodeImageBytes, drawRaster } from '../../core/web/canvas-raster';
import { checkWebInput } from '../../core/web/web-upscale';
import { upscaleHere } from './browser-engine';

const TOKEN_KEY = 'upbridge.token';
/** The server replaces this in index.html; seeing it means the page was not served by upbridge. */
const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
};
const ACCEPTED = new Set(Object.values(CONTENT_TYPES));

interface ModelInfo {
  id: string;
  name: string;
  description: string;
  scale: number;
  ready: boolean;
  default: boolean;
}

type Mode = '' | 'fidelity' | 'balanced' | 'creative';

const MODE_DESCRIPTIONS: Record<Mode, string> = {
  '': 'The model you choose, alone.',
  fidelity: 'Stays with the input: the most faithful model for the content, colour-fixed and made consistent with the input.',
  balanced: 'The fast general model for the content, colour-fixed. Move Creativity to blend the fidelity and creative results instead.',
  creative: 'A GAN that invents plausible detail (texture, hair, foliage), colour-anchored to the input.',
};

/** Where the creativity slider rests for each mode until the user moves it (then, and only then, it is sent). */
const CREATIVITY_DEFAULTS: Record<Exclude<Mode, ''>, { value: number; text: string; hint: string }> = {
  fidelity: { value: 0, text: '0', hint: 'Fidelity: 0, the faithful result. Move it to blend in the creative one.' },
  balanced: { value: 0.5, text: 'off', hint: 'Balanced: the fast model alone. Move it to blend the fidelity (0) and creative (1) results instead.' },
  creative: { value: 1, text: '1', hint: 'Creative: 1, the creative result. Move it towards 0 to stay closer to the input.' },
};

interface MapSummary {
  mean: number;
  /** Share of pixels over 0.5. */
  shareOver: number;
  /** Bounding boxes in output pixels, largest first. */
  regions: { x: number; y: number; width: number; height: number; pixels: number }[];
}

/** What the pipeline reported for a finished job (GET /v1/jobs/:id, `report`). */
interface JobReport {
  mode?: string;
  content: string;
  contentDetected: boolean;
  creativity?: number;
  consistent: boolean;
  tta?: number;
  models: Partial<Record<'result' | 'fidelity' | 'creative', string>>;
  lrPsnr: number;
  map?: MapSummary;
}

interface JobStatus {
  id: string;
  model: string;
  result: { available: boolean; width?: number; height?: number; map: boolean };
  report?: JobReport;
}

type JobEvent =
  | { type: 'queued'; position?: number }
  | { type: 'running' }
  | { type: 'progress'; progress: { done: number; total: number } }
  | { type: 'stage'; stage: string }
  | { type: 'done' }
  | { type: 'failed'; error: { code: string; message: string } }
  | { type: 'cancelled' };

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function $<T extends Element>(id: string): T {
  const el = document.querySelector<T>(`#${id}`);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

const ui = {
  connection: $<HTMLParagraphElement>('connection'),
  form: $<HTMLFormElement>('form'),
  drop: $<HTMLLabelElement>('drop'),
  file: $<HTMLInputElement>('file'),
  fileInfo: $<HTMLSpanElement>('file-info'),
  mode: $<HTMLSelectElement>('mode'),
  modeDescription: $<HTMLParagraphElement>('mode-description'),
  model: $<HTMLSelectElement>('model'),
  modelDescription: $<HTMLParagraphElement>('model-description'),
  scale: $<HTMLSelectElement>('scale'),
  scaleCustom: $<HTMLInputElement>('scale-custom'),
  outputSize: $<HTMLParagraphElement>('output-size'),
  creativity: $<HTMLInputElement>('creativity'),
  creativityValue: $<HTMLOutputElement>('creativity-value'),
  creativityReset: $<HTMLButtonElement>('creativity-reset'),
  creativityHint: $<HTMLParagraphElement>('creativity-hint'),
  content: $<HTMLSelectElement>('content'),
  map: $<HTMLInputElement>('map'),
  tile: $<HTMLInputElement>('tile'),
  overlap: $<HTMLInputElement>('overlap'),
  tta: $<HTMLSelectElement>('tta'),
  upscale: $<HTMLButtonElement>('upscale'),
  cancel: $<HTMLButtonElement>('cancel'),
  progressBox: $<HTMLDivElement>('progress-box'),
  progress: $<HTMLProgressElement>('progress'),
  progressText: $<HTMLParagraphElement>('progress-text'),
  message: $<HTMLParagraphElement>('message'),
  result: $<HTMLElement>('result'),
  compare: $<HTMLDivElement>('compare'),
  before: $<HTMLImageElement>('before'),
  after: $<HTMLImageElement>('after'),
  divider: $<HTMLDivElement>('divider'),
  mapOverlay: $<HTMLCanvasElement>('map-overlay'),
  mapRegions: $<SVGSVGElement>('map-regions'),
  mapControls: $<HTMLDivElement>('map-controls'),
  mapShow: $<HTMLInputElement>('map-show'),
  mapOpacity: $<HTMLInputElement>('map-opacity'),
  mapSummary: $<HTMLParagraphElement>('map-summary'),
  report: $<HTMLDListElement>('report'),
  split: $<HTMLInputElement>('split'),
  resultInfo: $<HTMLSpanElement>('result-info'),
  download: $<HTMLAnchorElement>('download'),
  inBrowser: $<HTMLInputElement>('in-browser'),
};

type EngineName = 'bridge' | 'browser';
const ENGINE_LABEL: Record<EngineName, string> = { bridge: "the bridge's", browser: "this browser's" };

const state = {
  token: readToken(),
  paired: false,
  models: [] as ModelInfo[],
  file: null as File | null,
  fileSize: null as { width: number; height: number } | null,
  fileUrl: '',
  resultUrl: '',
  jobId: '',
  busy: false,
  /** Creativity is sent only once the user has moved the slider for the current mode. */
  creativityMoved: false,
  /** Stops a run in this browser (the bridge's runs are cancelled by id). */
  localAbort: null as AbortController | null,
  /** Each engine's last result (PNG), so the two can be compared on the same image. */
  lastResults: new Map<EngineName, { file: File; blob: Blob }>(),
};

// ---------------------------------------------------------------- token and pairing

function readToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

function storeToken(token: string): void {
  state.token = token;
  try {
    localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Private mode or storage disabled: the token lives until the page closes.
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.message) return new ApiError(res.status, body.error.code ?? 'UPB_UNKNOWN', body.error.message);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, 'UPB_HTTP', `the server answered ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

let pairing: Promise<void> | null = null;

/**
 * The page pairs through its own route, which the server grants only to requests whose Origin is
 * the server itself: a browser sends that Origin for this page and no other, so no website (not
 * even a sandboxed iframe, whose Origin is "null") can get a token this way.
 */
function pair(): Promise<void> {
  pairing ??= (async () => {
    setConnection('connecting', 'Pairing with upbridge…');
    const res = await fetch('/v1/pair/page', { method: 'POST' });
    if (!res.ok) throw await errorFrom(res);
    storeToken(((await res.json()) as { token: string }).token);
  })().finally(() => {
    pairing = null;
  });
  return pairing;
}

/** fetch with the token; a 401 pairs again and retries once. Non-2xx answers throw ApiError. */
async function api(path: string, init: RequestInit = {}, signal?: AbortSignal): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    if (!state.token) await pair();
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${state.token}`);
    const res = await fetch(path, { ...init, headers, signal });
    if (res.status === 401 && attempt === 0) {
      state.token = '';
      continue;
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }
}

// ---------------------------------------------------------------- status display

function setConnection(kind: 'connecting' | 'paired' | 'error', text: string): void {
  ui.connection.dataset.state = kind;
  ui.connection.textContent = text;
}

function showError(e: unknown): void {
  const text = e instanceof Error ? e.message : String(e);
  ui.message.textContent = /^Failed to fetch|NetworkError|Load failed/.test(text) ? 'Cannot reach the upbridge server. Is it still running?' : text;
  ui.message.hidden = false;
}

function clearError(): void {
  ui.message.hidden = true;
  ui.message.textContent = '';
}

function refreshControls(): void {
  ui.upscale.disabled = !state.paired || !state.file || state.busy;
  ui.cancel.disabled = !state.busy || (!state.jobId && !state.localAbort);
  // In this browser only the fast model runs, at 4x, alone: the bridge's choices do not apply.
  const here = ui.inBrowser.checked;
  // A mode picks its models by content, so the model choice only applies without one.
  ui.model.disabled = !state.paired || state.busy || modeValue() !== '' || here;
  ui.creativity.disabled = state.busy || modeValue() === '' || here;
  ui.creativityReset.disabled = state.busy;
  for (const el of [ui.tile, ui.overlap, ui.file, ui.inBrowser]) el.disabled = state.busy;
  for (const el of [ui.mode, ui.scale, ui.scaleCustom, ui.tta, ui.content, ui.map]) el.disabled = state.busy || here;
}

function formatSeconds(s: number): string {
  if (s < 1) return 'less than a second';
  if (s < 90) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

// ---------------------------------------------------------------- models and options

async function loadModels(): Promise<void> {
  const res = await api('/v1/models');
  const body = (await res.json()) as { defaultModel: string; models: ModelInfo[] };
  state.models = body.models;
  ui.model.replaceChildren(
    ...body.models.map((m) => {
      const option = new Option(m.ready ? m.name : `${m.name} (downloads on first use)`, m.id);
      option.selected = m.id === body.defaultModel;
      return option;
    }),
  );
  showModelDescription();
}

function showModelDescription(): void {
  if (modeValue() !== '') {
    ui.modelDescription.textContent = 'The mode picks the models for the content; the result names them.';
    return;
  }
  const m = state.models.find((x) => x.id === ui.model.value);
  ui.modelDescription.textContent = m ? m.description : '';
}

function modeValue(): Mode {
  return ui.mode.value as Mode;
}

/** The mode's description, its creativity default (until the slider is moved) and which controls apply. */
function showMode(): void {
  const mode = modeValue();
  ui.modeDescription.textContent = MODE_DESCRIPTIONS[mode];
  state.creativityMoved = false;
  showCreativity();
  showModelDescription();
  refreshControls();
}

function showCreativity(): void {
  const mode = modeValue();
  ui.creativityReset.hidden = !state.creativityMoved;
  if (mode === '') {
    ui.creativity.value = '0';
    ui.creativityValue.textContent = '—';
    ui.creativityHint.textContent = 'Only with a mode: 0 stays with the input, 1 invents the most detail.';
    return;
  }
  if (state.creativityMoved) {
    ui.creativityValue.textContent = Number(ui.creativity.value).toFixed(2);
    ui.creativityHint.textContent = '0 stays with the input, 1 invents the most detail; in between blends the two results.';
    return;
  }
  const preset = CREATIVITY_DEFAULTS[mode];
  ui.creativity.value = String(preset.value);
  ui.creativityValue.textContent = preset.text;
  ui.creativityHint.textContent = preset.hint;
}

function scaleValue(): number {
  return ui.scale.value === 'custom' ? Number(ui.scaleCustom.value) : Number(ui.scale.value);
}

function showOutputSize(): void {
  const s = scaleValue();
  if (!state.fileSize || !(s >= 1 && s <= 16)) {
    ui.outputSize.textContent = '';
    return;
  }
  const w = Math.max(1, Math.round(state.fileSize.width * s));
  const h = Math.max(1, Math.round(state.fileSize.height * s));
  ui.outputSize.textContent = `Output: ${w} × ${h} px`;
}

/** Query string for POST /v1/jobs; throws a readable message for values out of range. */
function jobQuery(): string {
  const q = new URLSearchParams();
  const mode = modeValue();
  if (mode) {
    q.set('mode', mode);
    if (state.creativityMoved) q.set('creativity', String(Number(ui.creativity.value)));
  } else {
    q.set('model', ui.model.value);
  }
  if (ui.content.value !== 'auto') q.set('content', ui.content.value);
  if (ui.map.checked) q.set('map', 'true');
  if (ui.tta.value) q.set('tta', ui.tta.value);
  const scale = scaleValue();
  if (!(scale >= 1 && scale <= 16)) throw new Error('Scale must be a number from 1 to 16.');
  q.set('scale', String(scale));
  const tile = ui.tile.value.trim();
  if (tile) {
    if (!/^\d+$/.test(tile) || +tile < 16 || +tile > 4096) throw new Error('Tile size must be a whole number from 16 to 4096, or empty for the model default.');
    q.set('tile', tile);
  }
  const overlap = ui.overlap.value.trim();
  if (overlap) {
    if (!/^\d+$/.test(overlap) || +overlap > 256) throw new Error('Tile overlap must be a whole number from 0 to 256, or empty for the model default.');
    q.set('overlap', overlap);
  }
  return q.toString();
}

// ---------------------------------------------------------------- choosing a file

function contentTypeOf(file: File): string | undefined {
  if (ACCEPTED.has(file.type)) return file.type;
  const ext = /\.([a-z0-9]+)$/i.exec(file.name)?.[1]?.toLowerCase();
  return ext ? CONTENT_TYPES[ext] : undefined;
}

function baseName(file: File): string {
  return file.name.replace(/\.[^.]*$/, '') || 'image';
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function chooseFile(file: File | undefined): void {
  if (!file) return;
  clearError();
  if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
  state.file = file;
  state.fileSize = null;
  state.fileUrl = URL.createObjectURL(file);
  ui.drop.dataset.state = 'chosen';
  ui.result.hidden = true;
  ui.fileInfo.textContent = `${file.name} · ${formatBytes(file.size)}`;
  if (!contentTypeOf(file)) showError(`${file.name} is not a PNG, JPEG, WebP or TIFF image.`);
  // Read the size for the output preview; TIFF and broken files simply show none.
  const probe = new Image();
  const url = state.fileUrl;
  probe.onload = () => {
    if (state.fileUrl !== url) return;
    state.fileSize = { width: probe.naturalWidth, height: probe.naturalHeight };
    ui.fileInfo.textContent = `${file.name} · ${probe.naturalWidth} × ${probe.naturalHeight} px · ${formatBytes(file.size)}`;
    showOutputSize();
  };
  probe.src = url;
  showOutputSize();
  refreshControls();
}

// ---------------------------------------------------------------- running a job

/** Reads a text/event-stream body (fetch, so the Authorization header can be sent). */
async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<JobEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let type = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') type = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length === 0) continue;
        yield { ...(JSON.parse(data.join('\n')) as object), type } as JobEvent;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function showProgress(done: number, total: number, startedAt: number): void {
  ui.progress.max = total;
  ui.progress.value = done;
  let text = `${done} of ${total} tiles`;
  if (done > 0 && done < total) {
    const perTile = (performance.now() - startedAt) / 1000 / done;
    text += ` · about ${formatSeconds(perTile * (total - done))} left`;
  } else if (done === total) {
    text += ' · finishing…';
  }
  ui.progressText.textContent = text;
}

function setIndeterminate(text: string): void {
  ui.progress.removeAttribute('value');
  ui.progressText.textContent = text;
}

async function upscale(): Promise<void> {
  const file = state.file;
  if (!file || state.busy) return;
  clearError();
  const contentType = contentTypeOf(file);
  if (!contentType) throw new Error(`${file.name} is not a PNG, JPEG, WebP or TIFF image.`);
  if (ui.inBrowser.checked) return upscaleInThisBrowser(file, contentType);
  const query = jobQuery();
  const scale = scaleValue();

  state.busy = true;
  state.jobId = '';
  refreshControls();
  ui.progressBox.hidden = false;
  ui.progress.dataset.state = 'running';
  setIndeterminate('Uploading…');
  const t0 = performance.now();
  try {
    const res = await api(`/v1/jobs?${query}`, { method: 'POST', headers: { 'content-type': contentType }, body: file });
    state.jobId = ((await res.json()) as { id: string }).id;
    refreshControls();
    const events = await api(`/v1/jobs/${encodeURIComponent(state.jobId)}/events`, { headers: { accept: 'text/event-stream' } });
    if (!events.body) throw new Error('this browser cannot read streamed responses');
    let startedAt = performance.now();
    let outcome: JobEvent | undefined;
    let sawProgress = false;
    for await (const event of readEvents(events.body)) {
      if (event.type === 'queued') setIndeterminate(event.position ? `Queued (${event.position} ahead)…` : 'Queued…');
      else if (event.type === 'running') {
        startedAt = performance.now();
        setIndeterminate('Loading the model…');
      } else if (event.type === 'progress') {
        sawProgress = true;
        showProgress(event.progress.done, event.progress.total, startedAt);
      } else if (event.type === 'stage') {
        // What the job does now, in words (a first-use model download can take minutes); tile counts take over once they move.
        if (!sawProgress || /^installing /.test(event.stage)) setIndeterminate(`${event.stage.charAt(0).toUpperCase()}${event.stage.slice(1)}…`);
      } else {
        outcome = event;
        break;
      }
    }
    if (!outcome) throw new Error('The connection to the server closed before the job finished.');
    if (outcome.type === 'failed') throw new ApiError(0, outcome.error.code, outcome.error.message);
    if (outcome.type === 'cancelled') {
      ui.progress.dataset.state = 'cancelled';
      ui.progress.value = 0;
      ui.progressText.textContent = 'Cancelled.';
      return;
    }
    setIndeterminate('Downloading the result…');
    const jobPath = `/v1/jobs/${encodeURIComponent(state.jobId)}`;
    const status = (await (await api(jobPath)).json()) as JobStatus;
    const blob = await (await api(`${jobPath}/result?format=png`)).blob();
    const mapBlob = status.result.map ? await (await api(`${jobPath}/map?format=png`)).blob() : undefined;
    await showResult(file, blob, scale, status, 'bridge', 'the bridge (onnxruntime-node)');
    if (mapBlob) {
      try {
        await showMap(mapBlob, ui.after.naturalWidth, ui.after.naturalHeight, status.report?.map);
      } catch (e) {
        throw new Error(`The result is ready, but its invented-detail map cannot be shown: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    ui.progress.value = ui.progress.max;
    ui.progress.dataset.state = 'done';
    ui.progressText.textContent = `Done in ${formatSeconds((performance.now() - t0) / 1000)}.`;
  } catch (e) {
    // The message area says what went wrong; the bar would only repeat it.
    ui.progress.dataset.state = 'failed';
    ui.progress.value = 0;
    ui.progressText.textContent = 'Failed.';
    ui.progressBox.hidden = true;
    throw e;
  } finally {
    state.busy = false;
    state.jobId = '';
    refreshControls();
  }
}

/** Tile size and overlap as typed, or undefined for the model's default (validated like the bridge's). */
function tilingValues(): { tile?: number; overlap?: number } {
  const q = new URLSearchParams(jobQuery());
  return { ...(q.has('tile') ? { tile: Number(q.get('tile')) } : {}), ...(q.has('overlap') ? { overlap: Number(q.get('overlap')) } : {}) };
}

/** "In this browser": the same image through core/web (onnxruntime-web) on this page's own CPU or GPU. */
async function upscaleInThisBrowser(file: File, contentType: string): Promise<void> {
  const tiling = tilingValues();
  const input = await decodeImageBytes(new Uint8Array(await file.arrayBuffer()), contentType);
  checkWebInput(input.width, input.height);
  const abort = new AbortController();
  state.busy = true;
  state.localAbort = abort;
  refreshControls();
  ui.progressBox.hidden = false;
  ui.progress.dataset.state = 'running';
  const t0 = performance.now();
  let startedAt = t0;
  try {
    const run = await upscaleHere(input, {
      ...tiling,
      signal: abort.signal,
      onStep: setIndeterminate,
      onProgress: (done, total) => {
        if (done === 0) startedAt = performance.now();
        showProgress(done, total, startedAt);
      },
    });
    setIndeterminate('Encoding the result…');
    const canvas = document.createElement('canvas');
    drawRaster(canvas, run.raster);
    const blob = await new Promise<Blob>((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('this browser could not encode the result as PNG'))), 'image/png'));
    await showResult(file, blob, 4, { id: '', model: run.model, result: { available: true, width: run.raster.width, height: run.raster.height, map: false } }, 'browser', `this browser (onnxruntime-web: ${run.engine})`);
    ui.progress.value = ui.progress.max;
    ui.progress.dataset.state = 'done';
    ui.progressText.textContent = `Done in ${formatSeconds((performance.now() - t0) / 1000)}.`;
  } catch (e) {
    const cancelled = (e as { code?: string }).code === 'UPB_CANCELLED';
    ui.progress.dataset.state = cancelled ? 'cancelled' : 'failed';
    ui.progress.value = 0;
    ui.progressText.textContent = cancelled ? 'Cancelled.' : 'Failed.';
    if (!cancelled) {
      ui.progressBox.hidden = true;
      throw e;
    }
  } finally {
    state.busy = false;
    state.localAbort = null;
    refreshControls();
  }
}

async function cancel(): Promise<void> {
  if (state.localAbort) {
    ui.cancel.disabled = true;
    setIndeterminate('Cancelling…');
    state.localAbort.abort();
    return;
  }
  if (!state.jobId) return;
  ui.cancel.disabled = true;
  setIndeterminate('Cancelling…');
  await api(`/v1/jobs/${encodeURIComponent(state.jobId)}`, { method: 'DELETE' });
}

// ---------------------------------------------------------------- result

function loaded(img: HTMLImageElement, src: string): Promise<boolean> {
  return new Promise((resolve) => {
    img.onload = () => resolve(true);
    img.onerror = () => resolve(false);
    img.src = src;
  });
}

async function showResult(file: File, blob: Blob, scale: number, status: JobStatus, engine: EngineName, engineText: string): Promise<void> {
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  if (!(await loaded(ui.after, state.resultUrl))) throw new Error('The browser could not show the result image.');
  const width = ui.after.naturalWidth;
  const height = ui.after.naturalHeight;
  // The original, stretched by the browser's own smooth scaling, under the result.
  const beforeShown = await loaded(ui.before, state.fileUrl);
  ui.before.hidden = !beforeShown;
  ui.compare.style.width = `${width}px`;
  ui.compare.style.aspectRatio = `${width} / ${height}`;
  const label = scale === Math.round(scale) ? `${scale}` : String(scale).replace('.', '_');
  ui.download.href = state.resultUrl;
  ui.download.download = `${baseName(file)}-x${label}.png`;
  ui.download.textContent = `Download ${ui.download.download}`;
  ui.resultInfo.textContent = `${width} × ${height} px · ${formatBytes(blob.size)}${beforeShown ? '' : ' · this browser cannot show the original for comparison'}`;
  hideMap();
  state.lastResults.set(engine, { file, blob });
  showReport(status, [['Engine', engineText, 'engine'], ...(await comparison(file, engine))]);
  ui.result.hidden = false;
  setSplit();
}

/**
 * The other engine's last result on this same file, against this one: PSNR over every sample (8-bit),
 * so the two engines can be compared on one image. Nothing when there is none or the sizes differ.
 */
async function comparison(file: File, engine: EngineName): Promise<[string, string, string][]> {
  const other: EngineName = engine === 'bridge' ? 'browser' : 'bridge';
  const mine = state.lastResults.get(engine);
  const theirs = state.lastResults.get(other);
  if (!mine || !theirs || theirs.file !== file) return [];
  const [a, b] = await Promise.all([mine, theirs].map(async (r) => decodeImageBytes(new Uint8Array(await r.blob.arrayBuffer()), 'image/png')));
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) return [];
  const { db } = psnr(a.data, b.data, 255);
  return [[`Against ${ENGINE_LABEL[other]} result`, Number.isFinite(db) ? `PSNR ${db.toFixed(2)} dB` : 'identical pixels', 'engine-psnr']];
}

function setSplit(): void {
  const p = Number(ui.split.value);
  for (const el of [ui.after, ui.mapOverlay, ui.mapRegions]) el.style.clipPath = `inset(0 0 0 ${p}%)`;
  ui.divider.style.left = `${p}%`;
}

// ---------------------------------------------------------------- what ran, and the map

function formatLrPsnr(db: number): string {
  // The bridge caps a bit-exact match at 100 dB.
  return db >= 100 ? '100 dB (identical)' : `${db.toFixed(2)} dB`;
}

function showReport(status: JobStatus, extra: [string, string, string?][] = []): void {
  const report = status.report;
  const rows: [string, string, string?][] = [...extra];
  if (report) {
    rows.push(['Mode', report.mode ?? 'none (the model alone)']);
    const models = (['result', 'fidelity', 'creative'] as const).filter((role) => report.models[role]).map((role) => (role === 'result' ? report.models[role]! : `${role}: ${report.models[role]}`));
    rows.push([models.length > 1 ? 'Models' : 'Model', models.join(' · ')]);
    rows.push(['Content', `${report.content} (${report.contentDetected ? 'detected' : 'as chosen'})`]);
    if (report.creativity !== undefined) rows.push(['Creativity', report.creativity.toFixed(2)]);
    if (report.tta !== undefined) rows.push(['TTA', `${report.tta} passes averaged`]);
    rows.push(['Consistent with input', report.consistent ? 'yes (projected onto the input)' : 'no']);
    rows.push(['LR-PSNR', formatLrPsnr(report.lrPsnr), 'lr-psnr']);
  } else {
    rows.push(['Model', status.model]);
  }
  ui.report.replaceChildren(
    ...rows.flatMap(([term, value, id]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      if (id) dd.id = id;
      return [dt, dd];
    }),
  );
  const lrPsnr = document.getElementById('lr-psnr');
  if (lrPsnr && report) {
    lrPsnr.dataset.db = String(report.lrPsnr);
    lrPsnr.title = 'The result scaled back down to the input size, compared with the input: higher stays closer to the input.';
  }
}

function hideMap(): void {
  ui.mapControls.hidden = true;
  ui.mapOverlay.hidden = true;
  ui.mapRegions.toggleAttribute('hidden', true);
  ui.mapRegions.replaceChildren();
  ui.mapSummary.textContent = '';
}

/**
 * Lays the map over the result: a magenta layer whose alpha is the map (0 = supported by the
 * input, 255 = invented), drawn on a canvas of the result's own size so each map pixel covers its
 * result pixel. Magenta rarely occurs in photos, so invented areas stand out where plain grey would
 * read as a haze. Decoded without colour management, so alpha is the map's byte exactly.
 */
async function showMap(blob: Blob, width: number, height: number, summary: MapSummary | undefined): Promise<void> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    if (bitmap.width !== width || bitmap.height !== height) {
      throw new Error(`the map is ${bitmap.width} × ${bitmap.height} px but the result is ${width} × ${height} px`);
    }
    const canvas = ui.mapOverlay;
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d', { willReadFrequently: true });
    if (!context) throw new Error(`this browser cannot draw a ${width} × ${height} px canvas`);
    context.clearRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0);
    const pixels = context.getImageData(0, 0, width, height);
    const d = pixels.data;
    for (let i = 0; i < d.length; i += 4) {
      d[i + 3] = d[i];
      d[i] = 255;
      d[i + 1] = 0;
      d[i + 2] = 255;
    }
    context.putImageData(pixels, 0, 0);
  } finally {
    bitmap.close();
  }

  ui.mapRegions.setAttribute('viewBox', `0 0 ${width} ${height}`);
  ui.mapRegions.replaceChildren(
    ...(summary?.regions ?? []).map((r, i) => {
      const rect = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      for (const [k, v] of Object.entries({ x: r.x, y: r.y, width: r.width, height: r.height })) rect.setAttribute(k, String(v));
      const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
      title.textContent = `Invented region ${i + 1}: ${r.width} × ${r.height} px at (${r.x}, ${r.y}), ${r.pixels} px over 0.5`;
      rect.append(title);
      return rect;
    }),
  );
  if (summary) {
    const n = summary.regions.length;
    ui.mapSummary.textContent =
      `Invented detail: mean ${summary.mean.toFixed(3)} · ${(summary.shareOver * 100).toFixed(1)} % of pixels over 0.5` +
      (n ? ` · the ${n === 1 ? 'largest region is' : `${n} largest regions are`} outlined` : ' · no region over 0.5');
  } else {
    ui.mapSummary.textContent = 'Magenta marks detail the input does not support.';
  }
  ui.mapControls.hidden = false;
  showMapLayer();
}

function showMapLayer(): void {
  const shown = !ui.mapControls.hidden && ui.mapShow.checked;
  ui.mapOverlay.hidden = !shown;
  ui.mapRegions.toggleAttribute('hidden', !shown);
  ui.mapOverlay.style.opacity = String(Number(ui.mapOpacity.value) / 100);
  ui.mapOpacity.disabled = !ui.mapShow.checked;
}

// ---------------------------------------------------------------- wiring

function guard(action: () => Promise<void>): () => void {
  return () => {
    action().catch(showError);
  };
}

ui.file.addEventListener('change', () => chooseFile(ui.file.files?.[0]));
for (const type of ['dragenter', 'dragover'] as const) {
  ui.drop.addEventListener(type, (e) => {
    e.preventDefault();
    if (!state.busy) ui.drop.dataset.state = 'over';
  });
}
ui.drop.addEventListener('dragleave', () => {
  ui.drop.dataset.state = state.file ? 'chosen' : 'empty';
});
ui.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  ui.drop.dataset.state = state.file ? 'chosen' : 'empty';
  if (!state.busy) chooseFile(e.dataTransfer?.files[0]);
});
ui.model.addEventListener('change', showModelDescription);
ui.mode.addEventListener('change', showMode);
ui.creativity.addEventListener('input', () => {
  state.creativityMoved = true;
  showCreativity();
});
ui.creativityReset.addEventListener('click', () => {
  state.creativityMoved = false;
  showCreativity();
  ui.creativity.focus();
});
ui.mapShow.addEventListener('change', showMapLayer);
ui.mapOpacity.addEventListener('input', showMapLayer);
ui.scale.addEventListener('change', () => {
  ui.scaleCustom.hidden = ui.scale.value !== 'custom';
  if (!ui.scaleCustom.hidden) ui.scaleCustom.focus();
  showOutputSize();
});
ui.scaleCustom.addEventListener('input', showOutputSize);
ui.split.addEventListener('input', setSplit);
ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  guard(upscale)();
});
ui.cancel.addEventListener('click', guard(cancel));
ui.inBrowser.addEventListener('change', refreshControls);

async function start(): Promise<void> {
  showMode();
  setConnection('connecting', 'Connecting…');
  try {
    await loadModels();
    state.paired = true;
    setConnection('paired', `Paired with upbridge at ${location.host}`);
  } catch (e) {
    setConnection('error', 'Not connected');
    showError(e);
  }
  refreshControls();
}

void start();
