/**
 * The UI iframe's DOM: renders the controller's state and forwards clicks. Messages from the main
 * thread arrive as `event.data.pluginMessage`; ours go out with `parent.postMessage({pluginMessage})`,
 * as Figma's UI bridge expects.
 */
import { Mode, MODES } from '../../../shared/bridge-client';
import { creativityText, MODE_DESCRIPTIONS, SLIDER_START } from '../../../shared/modes';
import type { MainToUi, UiToMain } from '../common/messages';
import { browserEngine, OrtWasmPins } from './browser-engine';
import { RunOptions, UiController, ViewState } from './controller';

/** Put in at build time (scripts/build-figma.mjs): the sha256 of onnxruntime-web's .wasm files. */
declare const UPBRIDGE_ORT_PINS: OrtWasmPins | undefined;
/** Put in at build time: core/web/ort-worker.ts bundled, so inference runs off this window's thread. */
declare const UPBRIDGE_ORT_WORKER_SOURCE: string | undefined;

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`ui.html has no #${id}`);
  return el as T;
}

const el = {
  connection: $<HTMLParagraphElement>('connection'),
  down: $<HTMLElement>('down'),
  downText: $<HTMLParagraphElement>('down-text'),
  retry: $<HTMLButtonElement>('retry'),
  pairForm: $<HTMLElement>('pair-form'),
  code: $<HTMLInputElement>('code'),
  pair: $<HTMLButtonElement>('pair'),
  pairError: $<HTMLParagraphElement>('pair-error'),
  controls: $<HTMLElement>('controls'),
  selection: $<HTMLParagraphElement>('selection'),
  mode: $<HTMLSelectElement>('mode'),
  modeDescription: $<HTMLParagraphElement>('mode-description'),
  modelField: $<HTMLElement>('model-field'),
  model: $<HTMLSelectElement>('model'),
  creativityField: $<HTMLElement>('creativity-field'),
  creativity: $<HTMLInputElement>('creativity'),
  creativityValue: $<HTMLSpanElement>('creativity-value'),
  scale: $<HTMLSelectElement>('scale'),
  children: $<HTMLInputElement>('children'),
  fills: $<HTMLButtonElement>('fills'),
  frames: $<HTMLButtonElement>('frames'),
  status: $<HTMLParagraphElement>('status'),
  progressBox: $<HTMLElement>('progress-box'),
  progressLabel: $<HTMLParagraphElement>('progress-label'),
  progress: $<HTMLProgressElement>('progress'),
  progressText: $<HTMLParagraphElement>('progress-text'),
  cancel: $<HTMLButtonElement>('cancel'),
  outcome: $<HTMLElement>('outcome'),
  outcomeText: $<HTMLParagraphElement>('outcome-text'),
  outcomeRan: $<HTMLParagraphElement>('outcome-ran'),
  outcomeNotes: $<HTMLUListElement>('outcome-notes'),
  local: $<HTMLElement>('local'),
  localSelection: $<HTMLParagraphElement>('local-selection'),
  here: $<HTMLButtonElement>('here'),
};

const CONNECTION_TEXT = { connecting: 'Connecting…', 'bridge-down': 'Bridge not running', pairing: 'Not paired', ready: 'Connected' } as const;

let shownModels = '';

function render(state: ViewState): void {
  const { connection } = state;
  el.connection.dataset.state = connection.state;
  el.connection.textContent =
    connection.state === 'ready' ? `${CONNECTION_TEXT.ready} · ${/^\d/.test(connection.version) ? 'v' : ''}${connection.version}` : CONNECTION_TEXT[connection.state];

  el.down.hidden = connection.state !== 'bridge-down';
  if (connection.state === 'bridge-down') el.downText.textContent = connection.message;

  el.pairForm.hidden = connection.state !== 'pairing';
  const pairMessage = connection.state === 'pairing' ? connection.message : undefined;
  el.pairError.hidden = !pairMessage;
  el.pairError.textContent = pairMessage ?? '';

  el.controls.hidden = connection.state !== 'ready';
  if (connection.state === 'ready') {
    const key = connection.models.map((m) => m.id).join();
    if (key !== shownModels) {
      shownModels = key;
      el.model.replaceChildren(...connection.models.map((m) => new Option(m.name, m.id, false, m.id === connection.defaultModel)));
    }
  }
  const { layers, imageFills } = state.selection;
  el.selection.textContent =
    layers === 0 ? 'Nothing selected' : `${layers} layer${layers === 1 ? '' : 's'} selected · ${imageFills} image fill${imageFills === 1 ? '' : 's'}`;
  el.fills.disabled = state.busy || imageFills === 0;
  el.local.hidden = !controller.canRunHere;
  el.localSelection.textContent = el.selection.textContent;
  el.here.disabled = state.busy || imageFills === 0;
  el.frames.disabled = state.busy || layers === 0;

  el.status.hidden = !state.status;
  el.status.textContent = state.status ?? '';

  el.progressBox.hidden = !state.progress;
  if (state.progress) {
    const p = state.progress;
    el.progressLabel.textContent = p.count > 1 ? `Image ${p.index} of ${p.count} · ${p.label}` : p.label;
    el.progress.value = p.fraction;
    el.progressText.textContent = p.text;
  }
  el.cancel.disabled = !state.busy;

  el.outcome.hidden = !state.outcome;
  if (state.outcome) {
    el.outcome.dataset.kind = state.outcome.kind;
    el.outcomeText.textContent = state.outcome.text;
    el.outcomeRan.hidden = !state.outcome.ran;
    el.outcomeRan.textContent = state.outcome.ran ?? '';
    el.outcomeNotes.replaceChildren(...state.outcome.notes.map((note) => Object.assign(document.createElement('li'), { textContent: note })));
  }
}

const controller: UiController = new UiController({
  post: (message: UiToMain) => parent.postMessage({ pluginMessage: message }, '*'),
  render: (state) => render(state),
  ...(typeof UPBRIDGE_ORT_PINS !== 'undefined' && UPBRIDGE_ORT_PINS ? { localEngine: browserEngine(UPBRIDGE_ORT_PINS, typeof UPBRIDGE_ORT_WORKER_SOURCE !== 'undefined' ? UPBRIDGE_ORT_WORKER_SOURCE : undefined) } : {}),
});

window.addEventListener('message', (event: MessageEvent<{ pluginMessage?: MainToUi }>) => {
  const message = event.data?.pluginMessage;
  if (message) controller.receive(message);
});

el.retry.addEventListener('click', () => void controller.connect());
// A button and Enter rather than a form: a sandboxed iframe without allow-forms never submits one.
const pair = () => {
  if (el.pair.disabled) return;
  el.pair.disabled = true;
  void controller.pair(el.code.value).finally(() => {
    el.pair.disabled = false;
    el.code.value = '';
  });
};
el.pair.addEventListener('click', pair);
el.code.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') pair();
});

/** The mode chosen, or undefined for "Model" (the model picker decides). */
const chosenMode = (): Mode | undefined => MODES.find((m) => m === el.mode.value);
/** Creativity goes to the bridge only once the designer moved the slider; until then the mode's default applies. */
let creativityMoved = false;

function showCreativity(): void {
  const mode = chosenMode();
  if (mode) el.creativityValue.textContent = creativityText(mode, creativityMoved, Number(el.creativity.value));
}

/** A mode hides the model picker (the bridge picks the models) and shows the slider at the mode's start. */
function modeChanged(): void {
  const mode = chosenMode();
  el.modelField.hidden = mode !== undefined;
  el.creativityField.hidden = mode === undefined;
  el.modeDescription.hidden = mode === undefined;
  el.modeDescription.textContent = mode ? MODE_DESCRIPTIONS[mode] : '';
  if (mode) el.creativity.value = String(SLIDER_START[mode]);
  creativityMoved = false;
  showCreativity();
}

el.mode.addEventListener('change', modeChanged);
el.creativity.addEventListener('input', () => {
  creativityMoved = true;
  showCreativity();
});

function runOptions(): RunOptions {
  const options: RunOptions = { scale: Number(el.scale.value), includeChildren: el.children.checked };
  const mode = chosenMode();
  if (!mode) return { ...options, ...(el.model.value ? { model: el.model.value } : {}) };
  return { ...options, mode, ...(creativityMoved ? { creativity: Number(el.creativity.value) } : {}) };
}
el.fills.addEventListener('click', () => controller.run('fills', runOptions()));
el.frames.addEventListener('click', () => controller.run('frames', runOptions()));
el.cancel.addEventListener('click', () => controller.cancel());
el.here.addEventListener('click', () => controller.runHere('fills', el.children.checked));

modeChanged();
render(controller.state);
controller.start();
