/**
 * UXP entry: registers the panel declared in manifest.json. Entry point hooks must return
 * within 300 ms (manifest-v5 docs), so connecting to the bridge is started, not awaited.
 */
import { entrypoints } from 'uxp';
import { BridgeClient, DEFAULT_BRIDGE_URL } from '../../shared/bridge-client';
import { Panel } from './panel';
import { secureTokenStore } from './token-store';

let panel: Panel | undefined;

function mount(root: HTMLElement): Panel {
  panel ??= new Panel(document.getElementById('app') ?? root, { client: new BridgeClient({ baseUrl: DEFAULT_BRIDGE_URL }), tokens: secureTokenStore });
  return panel;
}

entrypoints.setup({
  panels: {
    upbridgePanel: {
      create(root) {
        mount(root);
      },
      show(root) {
        void mount(root).connect();
      },
    },
  },
});
