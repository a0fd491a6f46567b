/**
 * The built plugin folder as Figma's "Import plugin from manifest" would load it: the manifest
 * against a schema of the fields the plugin relies on (from Figma's manifest documentation, cited
 * in plugins/figma/README.md), the files it names, and the bundled main thread run in a bare
 * sandbox (no Node globals, as in Figma) against the simulated host.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { DEFAULT_PORT } from '../../../bridge-server/serve';
import { DEFAULT_FIGMA_BRIDGE_URL } from '../../../plugins/figma/src/main/plugin';
import { FigmaSim } from './figma-sim';
import { waitFor } from '../../bridge-server/bridge-harness';
import { NPM_CDNS } from '../../../core/web/web-model';

const ROOT = path.join(__dirname, '..', '..', '..');
const DIST = path.join(ROOT, 'dist', 'figma');
const read = (file: string) => readFileSync(path.join(DIST, file), 'utf8');

/** An origin as networkAccess lists it: scheme, host and port, nothing else. */
const Origin = Type.String({ pattern: '^(https?|wss?)://[^/\\s*]+(:\\d+)?$' });
const FigmaManifest = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    id: Type.String({ minLength: 1 }),
    api: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' }),
    main: Type.String({ pattern: '\\.js$' }),
    // One HTML file: its text becomes __html__ in the main thread.
    ui: Type.String({ pattern: '\\.html$' }),
    editorType: Type.Array(Type.Literal('figma'), { minItems: 1, maxItems: 1 }),
    // Required for new plugins: pages load on demand, so the API's async getters must be used.
    documentAccess: Type.Literal('dynamic-page'),
    networkAccess: Type.Object(
      {
        allowedDomains: Type.Array(Origin, { minItems: 1 }),
        devAllowedDomains: Type.Optional(Type.Array(Origin)),
        // Shown to users and admins beside the domains; say why a plugin talks to this machine.
        reasoning: Type.String({ minLength: 40 }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const manifest = JSON.parse(read('manifest.json'));

test('the built manifest matches the schema of the fields the plugin relies on', () => {
  const errors = [...Value.Errors(FigmaManifest, manifest)].map((e) => `${e.instancePath || '/'} ${e.message}`);
  expect(errors).toEqual([]);
});

test("networkAccess allows the bridge's loopback origin, the one the plugin connects to", () => {
  const bridgeOrigin = new URL(DEFAULT_FIGMA_BRIDGE_URL).origin;
  expect(new URL(bridgeOrigin).hostname).toBe('localhost');
  expect(new URL(bridgeOrigin).port).toBe(String(DEFAULT_PORT));
  expect(manifest.networkAccess.allowedDomains).toContain(bridgeOrigin);
  expect(manifest.networkAccess.devAllowedDomains).toContain(bridgeOrigin);
  // Nothing beyond this machine, except the npm CDNs "Upscale here" fetches the pinned model and
  // runtime files from (core/web NPM_CDNS, in order); images are never sent anywhere but the bridge.
  for (const domain of manifest.networkAccess.devAllowedDomains ?? []) expect(['localhost', '127.0.0.1']).toContain(new URL(domain).hostname);
  const beyond = manifest.networkAccess.allowedDomains.filter((d: string) => !['localhost', '127.0.0.1'].includes(new URL(d).hostname));
  expect(beyond).toEqual(NPM_CDNS.map((base) => new URL(base).origin));
  expect(manifest.networkAccess.reasoning).toMatch(/localhost:7419/);
  expect(manifest.networkAccess.reasoning).toMatch(/cdn\.jsdelivr\.net.*unpkg\.com.*sha256/);
});

test('the files the manifest names exist; the UI is one HTML file with its script inlined', () => {
  expect(existsSync(path.join(DIST, manifest.main))).toBe(true);
  const html = read(manifest.ui);
  expect(html).not.toMatch(/<script[^>]+src=/i);
  expect(html).not.toContain('UI_SCRIPT');
  expect(html.match(/<script>/g)).toHaveLength(1);
  expect(html).toContain('id="pair-form"');
});

test('the bundled main thread runs in a bare sandbox: it shows the UI and answers it', async () => {
  const sim = new FigmaSim();
  const messages: unknown[] = [];
  sim.onUiMessage = (message) => messages.push(message);
  const html = read(manifest.ui);
  // Only what Figma's sandbox gives a plugin; no require, process, Buffer or setImmediate.
  vm.runInContext(read(manifest.main), vm.createContext({ figma: sim.api, __html__: html, console }), { filename: 'code.js' });
  expect(sim.ui.html).toBe(html);
  expect(sim.ui.options).toMatchObject({ themeColors: true });

  sim.sendFromUi({ type: 'ready' });
  await waitFor(() => messages.length > 0, 'the init message');
  expect(messages[0]).toEqual({ type: 'init', token: null, bridgeUrl: DEFAULT_FIGMA_BRIDGE_URL, selection: { layers: 0, imageFills: 0 } });
});
