/**
 * A browser page that runs the plugin's real panel against the simulated host: esbuild maps
 * `photoshop` and `uxp` to the simulation, and this file stands in for Photoshop's panel
 * container. The `sp-*` shims below give the Spectrum UXP widgets, which only UXP renders, just
 * enough behaviour (a value, a checked radio, a text field) to be driven and looked at.
 */
import { BridgeClient } from '../../../plugins/shared/bridge-client';
import { Panel } from '../../../plugins/photoshop/src/panel';
import { TokenStore } from '../../../plugins/photoshop/src/token-store';
import { fingerprint } from './fingerprint';
import { sim } from './sim/photoshop';

class SpTextfield extends HTMLElement {
  private input = document.createElement('input');
  connectedCallback() {
    if (this.input.isConnected) return;
    this.input.placeholder = this.getAttribute('placeholder') ?? '';
    this.input.type = this.getAttribute('type') ?? 'text';
    this.input.value = this.getAttribute('value') ?? '';
    this.appendChild(this.input);
  }
  get value() {
    return this.input.value;
  }
  set value(v: string) {
    this.input.value = v;
  }
}

class SpRadio extends HTMLElement {
  connectedCallback() {
    this.addEventListener('click', () => {
      if (this.hasAttribute('disabled')) return;
      const group = this.closest('sp-radio-group');
      group?.querySelectorAll('sp-radio').forEach((r) => r.toggleAttribute('checked', r === this));
      group?.dispatchEvent(new Event('change'));
    });
  }
}

class SpPicker extends HTMLElement {
  /** The chosen item's value, as the native picker's `value`; setting it chooses that item. */
  get value(): string {
    return this.querySelector('sp-menu-item[selected]')?.getAttribute('value') ?? '';
  }
  set value(v: string) {
    this.querySelectorAll('sp-menu-item').forEach((item) => item.toggleAttribute('selected', item.getAttribute('value') === v));
  }
  /** What a user's pick does: choose the item, then tell the panel. */
  pick(v: string): void {
    this.value = v;
    this.dispatchEvent(new Event('change', { bubbles: true }));
  }
  /** Shows the chosen item, as the native picker's closed state does. */
  connectedCallback() {
    const label = document.createElement('span');
    label.className = 'sp-picker-label';
    this.prepend(label);
    const update = () => {
      const chosen = this.querySelector('sp-menu-item[selected]')?.textContent ?? '';
      // Only on change: writing the label is itself a mutation this observer sees.
      if (label.textContent !== chosen) label.textContent = chosen;
    };
    new MutationObserver(update).observe(this, { subtree: true, childList: true, attributes: true, attributeFilter: ['selected'] });
    update();
  }
}

/** A range input standing in for sp-slider: a numeric `value`, and input/change events as the user drags. */
class SpSlider extends HTMLElement {
  private input = document.createElement('input');
  connectedCallback() {
    if (this.input.isConnected) return;
    this.input.type = 'range';
    for (const name of ['min', 'max', 'step', 'value']) this.input.setAttribute(name, this.getAttribute(name) ?? '');
    this.appendChild(this.input);
  }
  get value(): number {
    return Number(this.input.value);
  }
  set value(v: number) {
    this.input.value = String(v);
  }
}

class SpProgressbar extends HTMLElement {
  static observedAttributes = ['value'];
  attributeChangedCallback() {
    this.style.setProperty('--progress', `${Number(this.getAttribute('value') ?? 0)}%`);
  }
}

customElements.define('sp-textfield', SpTextfield);
customElements.define('sp-progressbar', SpProgressbar);
customElements.define('sp-radio', SpRadio);
customElements.define('sp-picker', SpPicker);
customElements.define('sp-slider', SpSlider);

const memoryTokens = (): TokenStore => {
  let token: string | undefined;
  return {
    get: async () => token,
    set: async (t) => void (token = t),
    clear: async () => void (token = undefined),
  };
};

declare global {
  interface Window {
    sim: typeof sim;
    panel: Panel;
    startPanel(bridgeUrl: string): Promise<void>;
  }
}

declare global {
  interface Window {
    fingerprint: typeof fingerprint;
  }
}

window.fingerprint = fingerprint;
window.sim = sim;
window.startPanel = async (bridgeUrl: string) => {
  const panel = new Panel(document.getElementById('app')!, { client: new BridgeClient({ baseUrl: bridgeUrl, pollMs: 100 }), tokens: memoryTokens() });
  window.panel = panel;
  await panel.connect();
};
