/**
 * The built plugin as Photoshop would load it: the manifest against UXP's documented manifest v5
 * fields (there is no official JSON schema; the fields and rules come from Adobe's manifest pages,
 * cited in plugins/photoshop/RESEARCH.md §2), the files it names, the .ccx, and the bundle's
 * entry registering the panel the manifest declares.
 */
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { unzipSync } from 'fflate';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { DEFAULT_PORT } from '../../../bridge-server/serve';
import { DEFAULT_BRIDGE_URL } from '../../../plugins/shared/bridge-client';

const ROOT = path.join(__dirname, '..', '..', '..');
const DIST = path.join(ROOT, 'dist', 'photoshop');
const manifest = JSON.parse(readFileSync(path.join(DIST, 'manifest.json'), 'utf8'));

const Size = Type.Object({ width: Type.Integer({ minimum: 1 }), height: Type.Integer({ minimum: 1 }) });
const Theme = Type.Union(['all', 'lightest', 'light', 'medium', 'dark', 'darkest'].map((t) => Type.Literal(t)));
const Icon = Type.Object({
  width: Type.Integer({ minimum: 1 }),
  height: Type.Integer({ minimum: 1 }),
  path: Type.String({ pattern: '\\.(png|jpe?g)$' }),
  scale: Type.Optional(Type.Array(Type.Number(), { minItems: 1 })),
  theme: Type.Optional(Type.Array(Theme, { minItems: 1 })),
  species: Type.Optional(Type.Array(Type.Union(['generic', 'toolbar', 'pluginList'].map((s) => Type.Literal(s))))),
});
const Origin = Type.String({ pattern: '^(https?|wss?)://[^/\\s*]+(:\\d+)?$' });
const ManifestV5 = Type.Object({
  manifestVersion: Type.Literal(5),
  id: Type.String({ minLength: 1 }),
  name: Type.String({ minLength: 1 }),
  version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' }),
  main: Type.String({ pattern: '\\.html$' }),
  // A single object, not an array: arrays are for development only and a .ccx refuses them.
  host: Type.Object({ app: Type.Literal('PS'), minVersion: Type.String({ pattern: '^\\d+\\.\\d+(\\.\\d+)?$' }), data: Type.Optional(Type.Object({ apiVersion: Type.Optional(Type.Integer()) })) }),
  entrypoints: Type.Array(
    Type.Object({
      type: Type.Union([Type.Literal('panel'), Type.Literal('command')]),
      id: Type.String({ minLength: 1 }),
      label: Type.Object({ default: Type.String({ minLength: 1 }) }),
      minimumSize: Type.Optional(Size),
      maximumSize: Type.Optional(Size),
      preferredDockedSize: Type.Optional(Size),
      preferredFloatingSize: Type.Optional(Size),
      icons: Type.Optional(Type.Array(Icon)),
    }),
    { minItems: 1 },
  ),
  icons: Type.Optional(Type.Array(Icon)),
  requiredPermissions: Type.Object({
    // Either exact origins or the bare string "all" (never "all" inside the array: RESEARCH.md §1.2).
    network: Type.Object({ domains: Type.Union([Type.Literal('all'), Type.Array(Origin, { minItems: 1 })]) }),
    localFileSystem: Type.Optional(Type.Union(['plugin', 'request', 'fullAccess'].map((v) => Type.Literal(v)))),
  }),
});

const version = (v: string) => v.split('.').map(Number).reduce((acc, n, i) => acc + n * 1000 ** (2 - i), 0);

describe('Photoshop plugin build', () => {
  test('manifest.json follows the UXP manifest v5 fields', () => {
    const errors = [...Value.Errors(ManifestV5, manifest)].map((e) => `${e.instancePath} ${e.message}`);
    expect(errors).toEqual([]);
  });

  test('the schema refuses what UXP refuses: a host array in a package, "all" inside the domain list, a v4 manifest', () => {
    const broken = [
      { ...manifest, host: [manifest.host] },
      { ...manifest, requiredPermissions: { network: { domains: ['all', 'http://127.0.0.1:7419'] } } },
      { ...manifest, manifestVersion: 4 },
      { ...manifest, main: 'index.js' },
    ];
    for (const m of broken) expect(Value.Check(ManifestV5, m)).toBe(false);
  });

  test('host version is at least 24.4, the first with require("photoshop").imaging', () => {
    expect(version(manifest.host.minVersion)).toBeGreaterThanOrEqual(version('24.4.0'));
  });

  test('network permission names the bridge on loopback, by IP and by name, with its port', () => {
    expect(DEFAULT_BRIDGE_URL).toBe(`http://127.0.0.1:${DEFAULT_PORT}`);
    expect(manifest.requiredPermissions.network.domains).toEqual(expect.arrayContaining([`http://127.0.0.1:${DEFAULT_PORT}`, `http://localhost:${DEFAULT_PORT}`]));
  });

  test('every file the manifest names is in the plugin folder, icons at 1x and 2x', () => {
    expect(existsSync(path.join(DIST, manifest.main))).toBe(true);
    const html = readFileSync(path.join(DIST, manifest.main), 'utf8');
    const script = /<script src="([^"]+)"/.exec(html)?.[1];
    expect(script && existsSync(path.join(DIST, script))).toBe(true);
    const icons = [...(manifest.icons ?? []), ...manifest.entrypoints.flatMap((e: { icons?: unknown[] }) => e.icons ?? [])] as Array<{ path: string; scale?: number[] }>;
    expect(icons.length).toBeGreaterThan(0);
    for (const icon of icons) {
      expect(existsSync(path.join(DIST, icon.path))).toBe(true);
      if (icon.scale?.includes(2)) expect(existsSync(path.join(DIST, icon.path.replace(/\.png$/, '@2x.png')))).toBe(true);
    }
  });

  test('the .ccx is a ZIP of the plugin folder with manifest.json at its root', () => {
    const ccx = unzipSync(readFileSync(path.join(ROOT, 'dist', `${manifest.id}_PS.ccx`)));
    const listFolder = (dir: string, prefix = ''): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? listFolder(path.join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`]));
    expect(Object.keys(ccx).sort()).toEqual(listFolder(DIST).sort());
    for (const [name, bytes] of Object.entries(ccx)) expect(Buffer.from(bytes).equals(readFileSync(path.join(DIST, name)))).toBe(true);
    expect(JSON.parse(Buffer.from(ccx['manifest.json']).toString('utf8')).id).toBe(manifest.id);
  });

  test('the bundle needs only the host modules and registers the panel the manifest declares', () => {
    const required: string[] = [];
    let setup: { panels?: Record<string, unknown> } | undefined;
    const host = (name: string) => {
      required.push(name);
      if (name === 'uxp') return { entrypoints: { setup: (e: typeof setup) => (setup = e) }, storage: { secureStorage: {} } };
      if (name === 'photoshop') return { app: {}, core: {}, action: {}, imaging: {}, constants: {} };
      throw new Error(`the bundle required ${name}, which UXP does not provide`);
    };
    vm.runInNewContext(readFileSync(path.join(DIST, 'index.js'), 'utf8'), { require: host, document: {}, console });
    expect(new Set(required)).toEqual(new Set(['photoshop', 'uxp']));
    const panels = manifest.entrypoints.filter((e: { type: string }) => e.type === 'panel').map((e: { id: string }) => e.id);
    expect(Object.keys(setup?.panels ?? {})).toEqual(panels);
  });
});
