/**
 * The panel: connection and pairing, mode (or model) and creativity, scale, what to upscale, where
 * the result goes, progress with time left, cancel, and after a run what ran with its LR-PSNR. Spectrum UXP widgets (sp-*), which UXP renders natively; their
 * values are read through `valueOf`, which also works on plain elements carrying a `selected`
 * attribute (how the preview page and tests drive them outside Photoshop).
 */
import { isUpbridgeError } from '../../../core/errors';
import { BridgeClient, Mode, MODES, ModelInfo, START_HINT } from '../../shared/bridge-client';
import { formatSecondsLeft } from '../../shared/progress';
import { creativityText, MODE_DESCRIPTIONS, MODE_LABELS, SLIDER_START } from '../../shared/modes';
import { DESTINATIONS_FOR, Destination, PRESET_SCALES, Target, validateRequest } from './plan';
import { runUpscale } from './upscale-command';
import { TokenStore } from './token-store';

const TARGET_LABELS: Record<Target, string> = { selection: 'Selection', layer: 'Active layer', document: 'Whole document (flattened)' };
const DESTINATION_LABELS: Record<Destination, string> = {
  'new-document': 'New document',
  'new-layer': 'New layer (document resized)',
  layers: 'Every layer, keeping the structure',
};
const DEFAULT_DESTINATION: Record<Target, Destination> = { selection: 'new-document', layer: 'new-layer', document: 'new-document' };

const TEMPLATE = `
<div class="upb">
  <div class="upb-row upb-connection">
    <span class="upb-dot" data-state="unknown"></span>
    <sp-body size="S" class="upb-connection-text">Looking for the bridge…</sp-body>
    <sp-action-button class="upb-retry" quiet>Retry</sp-action-button>
  </div>
  <div class="upb-pairing" hidden>
    <sp-body size="S">Enter the pairing code the bridge printed when it started.</sp-body>
    <div class="upb-row">
      <sp-textfield class="upb-code" placeholder="e.g. K7Q2MX"></sp-textfield>
      <sp-button class="upb-pair" variant="primary">Pair</sp-button>
    </div>
  </div>
  <div class="upb-controls" hidden>
    <sp-label>Mode</sp-label>
    <sp-picker class="upb-mode" size="s"><sp-menu slot="options">
      <sp-menu-item value="model" selected>Model (choose below)</sp-menu-item>
      ${MODES.map((m) => `<sp-menu-item value="${m}">${MODE_LABELS[m]}</sp-menu-item>`).join('')}
    </sp-menu></sp-picker>
    <sp-detail class="upb-mode-description" hidden></sp-detail>
    <div class="upb-model-box">
      <sp-label>Model</sp-label>
      <sp-picker class="upb-model" size="s"><sp-menu slot="options"></sp-menu></sp-picker>
      <sp-detail class="upb-model-description"></sp-detail>
    </div>
    <div class="upb-creativity-box" hidden>
      <div class="upb-row upb-spread upb-creativity-head"><sp-label>Creativity</sp-label><sp-detail class="upb-creativity-value"></sp-detail></div>
      <sp-slider class="upb-creativity" min="0" max="1" step="0.05" value="0"></sp-slider>
      <div class="upb-row upb-spread"><sp-detail>0: stay with the input</sp-detail><sp-detail>1: invent detail</sp-detail></div>
    </div>
    <sp-label>Scale</sp-label>
    <div class="upb-row">
      <sp-picker class="upb-scale" size="s"><sp-menu slot="options">
        ${PRESET_SCALES.map((s) => `<sp-menu-item value="${s}"${s === 4 ? ' selected' : ''}>${s}×</sp-menu-item>`).join('')}
        <sp-menu-item value="custom">Other…</sp-menu-item>
      </sp-menu></sp-picker>
      <sp-textfield class="upb-scale-custom" type="number" min="1" max="16" step="0.1" value="4" hidden></sp-textfield>
    </div>
    <sp-label>Upscale</sp-label>
    <sp-radio-group class="upb-target" column>
      ${(Object.keys(TARGET_LABELS) as Target[]).map((t) => `<sp-radio value="${t}"${t === 'selection' ? ' checked selected' : ''}>${TARGET_LABELS[t]}</sp-radio>`).join('')}
    </sp-radio-group>
    <sp-label>Result</sp-label>
    <sp-radio-group class="upb-destination" column>
      ${(Object.keys(DESTINATION_LABELS) as Destination[]).map((d) => `<sp-radio value="${d}"${d === 'new-document' ? ' checked selected' : ''}>${DESTINATION_LABELS[d]}</sp-radio>`).join('')}
    </sp-radio-group>
    <sp-button class="upb-run" variant="cta">Upscale</sp-button>
  </div>
  <div class="upb-progress" hidden>
    <sp-progressbar class="upb-bar" max="100" value="0"></sp-progressbar>
    <sp-detail class="upb-progress-text"></sp-detail>
    <sp-button class="upb-cancel" variant="secondary">Cancel</sp-button>
  </div>
  <sp-body size="S" class="upb-message" role="status"></sp-body>
</div>`;

export interface PanelDeps {
  client: BridgeClient;
  tokens: TokenStore;
  run?: typeof runUpscale;
}

/** The value of a picker, radio group or text field: the UXP widget's own, else the `selected` child's. */
export function valueOf(el: Element): string {
  const own = (el as HTMLInputElement).value;
  if (typeof own === 'string' && own !== '') return own;
  const chosen = el.querySelector('[selected], [checked]');
  return chosen?.getAttribute('value') ?? '';
}

/** Marks the child with `value` as the chosen one (the UXP widget and the attribute). */
export function choose(el: Element, value: string): void {
  for (const item of Array.from(el.querySelectorAll('sp-menu-item, sp-radio'))) {
    const on = item.getAttribute('value') === value;
    item.toggleAttribute('selected', on);
    item.toggleAttribute('checked', on);
  }
  try {
    (el as HTMLInputElement).value = value;
  } catch {
    // plain elements outside UXP: the attributes above are the state
  }
}

export class Panel {
  private readonly el: Record<string, HTMLElement>;
  private models: ModelInfo[] = [];
  private running?: AbortController;
  /** Creativity is sent only once the user moved the slider; until then the mode's default applies. */
  private creativityMoved = false;

  constructor(
    root: HTMLElement,
    private readonly deps: PanelDeps,
  ) {
    root.innerHTML = TEMPLATE;
    const q = (cls: string) => root.querySelector<HTMLElement>(`.upb-${cls}`)!;
    this.el = Object.fromEntries(
      ['dot', 'connection-text', 'retry', 'pairing', 'code', 'pair', 'controls', 'mode', 'mode-description', 'model-box', 'model', 'model-description', 'creativity-box', 'creativity', 'creativity-value', 'scale', 'scale-custom', 'target', 'destination', 'run', 'progress', 'bar', 'progress-text', 'cancel', 'message'].map((c) => [c, q(c)]),
    );
    this.el.retry.addEventListener('click', () => void this.connect());
    this.el.pair.addEventListener('click', () => void this.pair());
    this.el.run.addEventListener('click', () => void this.upscale());
    this.el.cancel.addEventListener('click', () => this.running?.abort());
    this.el.model.addEventListener('change', () => this.describeModel());
    this.el.mode.addEventListener('change', () => this.modeChanged());
    // UXP's slider sends input while dragging and change on release; either one is a choice.
    for (const event of ['input', 'change']) {
      this.el.creativity.addEventListener(event, () => {
        this.creativityMoved = true;
        this.showCreativity();
      });
    }
    this.el.scale.addEventListener('change', () => (this.el['scale-custom'].hidden = valueOf(this.el.scale) !== 'custom'));
    this.el.target.addEventListener('change', () => this.targetChanged());
    this.targetChanged();
    this.modeChanged();
  }

  private setConnection(state: 'unknown' | 'down' | 'unpaired' | 'ready', text: string): void {
    this.el.dot.dataset.state = state;
    this.el['connection-text'].textContent = text;
    this.el.retry.hidden = state === 'ready';
    this.el.pairing.hidden = state !== 'unpaired';
    // Until paired there is no model list and nothing to run: one step at a time.
    this.el.controls.hidden = state !== 'ready';
    this.setEnabled(this.el.run, state === 'ready' && !this.running);
  }

  private setEnabled(el: HTMLElement, on: boolean): void {
    el.toggleAttribute('disabled', !on);
  }

  private say(text: string, kind: 'info' | 'error' = 'info'): void {
    this.el.message.textContent = text;
    this.el.message.dataset.kind = kind;
  }

  /** Finds the bridge, then checks the saved token by listing models. */
  async connect(): Promise<void> {
    this.setConnection('unknown', 'Looking for the bridge…');
    try {
      const health = await this.deps.client.health();
      this.deps.client.token ??= await this.deps.tokens.get();
      if (!this.deps.client.token) return this.setConnection('unpaired', `Bridge ${health.version} found: pair to use it`);
      const { models } = await this.deps.client.models();
      this.showModels(models);
      this.setConnection('ready', `Connected to the bridge ${health.version} (paired)`);
    } catch (error) {
      await this.connectionFailed(error);
    }
  }

  private async connectionFailed(error: unknown): Promise<void> {
    if (isUpbridgeError(error) && error.code === 'UPB_BRIDGE_UNREACHABLE') {
      this.setConnection('down', `Bridge not running at ${this.deps.client.baseUrl}: ${START_HINT}.`);
    } else if (isUpbridgeError(error) && error.code === 'UPB_UNAUTHORIZED') {
      this.deps.client.token = undefined;
      await this.deps.tokens.clear();
      this.setConnection('unpaired', 'Not paired (or the token was revoked): enter the code the bridge shows');
    } else {
      this.setConnection('down', error instanceof Error ? error.message : String(error));
    }
  }

  private async pair(): Promise<void> {
    try {
      const token = await this.deps.client.pair(valueOf(this.el.code), 'Photoshop');
      await this.deps.tokens.set(token);
      this.say('Paired with the bridge.');
      await this.connect();
    } catch (error) {
      this.say(error instanceof Error ? error.message : String(error), 'error');
    }
  }

  private showModels(models: ModelInfo[]): void {
    this.models = models;
    const menu = this.el.model.querySelector('sp-menu')!;
    menu.innerHTML = models
      .map((m) => `<sp-menu-item value="${m.id}"${m.default ? ' selected' : ''}>${escapeHtml(m.name)}${m.ready ? '' : ' (downloads on first use)'}</sp-menu-item>`)
      .join('');
    this.describeModel();
  }

  private describeModel(): void {
    const model = this.models.find((m) => m.id === valueOf(this.el.model));
    this.el['model-description'].textContent = model ? `${model.description} Native ${model.scale}×, ${model.licence}.` : '';
  }

  /** The chosen mode, or undefined for "Model". */
  private mode(): Mode | undefined {
    const value = valueOf(this.el.mode);
    return MODES.find((m) => m === value);
  }

  /** A mode hides the model picker (the bridge picks) and shows the creativity slider at the mode's start. */
  private modeChanged(): void {
    const mode = this.mode();
    this.el['model-box'].hidden = mode !== undefined;
    this.el['creativity-box'].hidden = mode === undefined;
    this.el['mode-description'].hidden = mode === undefined;
    this.el['mode-description'].textContent = mode ? MODE_DESCRIPTIONS[mode] : '';
    if (mode) setSliderValue(this.el.creativity, SLIDER_START[mode]);
    // After setting the value: only the user's own move counts.
    this.creativityMoved = false;
    this.showCreativity();
  }

  private creativity(): number {
    return Number((this.el.creativity as HTMLInputElement).value ?? this.el.creativity.getAttribute('value'));
  }

  private showCreativity(): void {
    const mode = this.mode();
    if (mode) this.el['creativity-value'].textContent = creativityText(mode, this.creativityMoved, this.creativity());
  }

  private targetChanged(): void {
    const target = (valueOf(this.el.target) || 'selection') as Target;
    const allowed = DESTINATIONS_FOR[target];
    for (const radio of Array.from(this.el.destination.querySelectorAll('sp-radio'))) {
      this.setEnabled(radio as HTMLElement, allowed.includes(radio.getAttribute('value') as Destination));
    }
    choose(this.el.destination, DEFAULT_DESTINATION[target]);
  }

  /** Runs one upscale; every failure becomes a message in the panel. */
  async upscale(): Promise<void> {
    if (this.running) return;
    let request;
    try {
      const scaleChoice = valueOf(this.el.scale) || '4';
      request = validateRequest({
        target: valueOf(this.el.target),
        destination: valueOf(this.el.destination),
        scale: scaleChoice === 'custom' ? valueOf(this.el['scale-custom']) : scaleChoice,
        model: valueOf(this.el.model),
        mode: this.mode(),
        ...(this.mode() && this.creativityMoved ? { creativity: this.creativity() } : {}),
      });
    } catch (error) {
      return this.say((error as Error).message, 'error');
    }
    const controller = new AbortController();
    this.running = controller;
    this.setEnabled(this.el.run, false);
    this.el.progress.hidden = false;
    this.el.bar.setAttribute('value', '0');
    this.el['progress-text'].textContent = 'Sending pixels to the bridge…';
    this.say('');
    try {
      const result = await (this.deps.run ?? runUpscale)(this.deps.client, request, {
        signal: controller.signal,
        onProgress: (p) => {
          this.el.bar.setAttribute('value', String(Math.round(p.fraction * 100)));
          (this.el.bar as HTMLInputElement).value = String(Math.round(p.fraction * 100));
          const tiles = p.total > 0 ? `tile ${p.done} of ${p.total}` : 'waiting for the bridge';
          this.el['progress-text'].textContent = `${p.label}: ${tiles}, ${formatSecondsLeft(p.secondsLeft)}`;
        },
      });
      this.say(`Done: ${result.message}.${result.ran ? ` ${result.ran}` : ''}`);
    } catch (error) {
      if (isUpbridgeError(error) && error.code === 'UPB_CANCELLED') this.say('Cancelled: the document was not changed.');
      else if (isUpbridgeError(error) && (error.code === 'UPB_UNAUTHORIZED' || error.code === 'UPB_BRIDGE_UNREACHABLE')) {
        await this.connectionFailed(error);
        this.say(error.message, 'error');
      } else this.say(error instanceof Error ? error.message : String(error), 'error');
    } finally {
      this.running = undefined;
      this.el.progress.hidden = true;
      this.setEnabled(this.el.run, this.el.dot.dataset.state === 'ready');
    }
  }
}

/** The UXP slider's value property, and the attribute for plain elements. */
function setSliderValue(el: HTMLElement, value: number): void {
  el.setAttribute('value', String(value));
  try {
    (el as unknown as { value: number }).value = value;
  } catch {
    // plain elements outside UXP: the attribute is the state
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
