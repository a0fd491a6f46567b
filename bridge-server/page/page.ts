/**
 * The bridge's own web page: pairs itself with the code the server embeds in the HTML, then
 * uploads an image, follows the job's server-sent events and shows a before/after comparison.
 * Plain DOM; bundled by scripts/build.mjs into dist/page/page.js (iife, es2020).
 */
export {};

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

type JobEvent =
  | { type: 'queued'; position?: number }
  | { type: 'running' }
  | { type: 'progress'; progress: { done: number; total: number } }
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

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

const ui = {
  connection: $<HTMLParagraphElement>('connection'),
  form: $<HTMLFormElement>('form'),
  drop: $<HTMLLabelElement>('drop'),
  file: $<HTMLInputElement>('file'),
  fileInfo: $<HTMLSpanElement>('file-info'),
  model: $<HTMLSelectElement>('model'),
  modelDescription: $<HTMLParagraphElement>('model-description'),
  scale: $<HTMLSelectElement>('scale'),
  scaleCustom: $<HTMLInputElement>('scale-custom'),
  outputSize: $<HTMLParagraphElement>('output-size'),
  tile: $<HTMLInputElement>('tile'),
  overlap: $<HTMLInputElement>('overlap'),
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
  split: $<HTMLInputElement>('split'),
  resultInfo: $<HTMLSpanElement>('result-info'),
  download: $<HTMLAnchorElement>('download'),
};

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
  ui.cancel.disabled = !state.busy || !state.jobId;
  ui.model.disabled = !state.paired || state.busy;
  for (const el of [ui.scale, ui.scaleCustom, ui.tile, ui.overlap, ui.file]) el.disabled = state.busy;
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
  const m = state.models.find((x) => x.id === ui.model.value);
  ui.modelDescription.textContent = m ? m.description : '';
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
  const q = new URLSearchParams({ model: ui.model.value });
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
    for await (const event of readEvents(events.body)) {
      if (event.type === 'queued') setIndeterminate(event.position ? `Queued (${event.position} ahead)…` : 'Queued…');
      else if (event.type === 'running') {
        startedAt = performance.now();
        setIndeterminate('Loading the model…');
      } else if (event.type === 'progress') showProgress(event.progress.done, event.progress.total, startedAt);
      else {
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
    const blob = await (await api(`/v1/jobs/${encodeURIComponent(state.jobId)}/result?format=png`)).blob();
    await showResult(file, blob, scale);
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

async function cancel(): Promise<void> {
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

async function showResult(file: File, blob: Blob, scale: number): Promise<void> {
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
  ui.result.hidden = false;
  setSplit();
}

function setSplit(): void {
  const p = Number(ui.split.value);
  ui.after.style.clipPath = `inset(0 0 0 ${p}%)`;
  ui.divider.style.left = `${p}%`;
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

async function start(): Promise<void> {
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
