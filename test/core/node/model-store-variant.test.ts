import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { catalogue } from '../../../core/catalogue';
import { FP16_CONVERTER_VERSION } from '../../../core/convert/fp16';
import { ModelStore, ModelVariant, sha256 } from '../../../core/node/model-store';

/**
 * fp16 variants in the store: made on first request from the verified float32 file, their hash
 * recorded in a sidecar, checked like the float32 files. The float32 model is copied from the
 * shared test home (global setup installs it), so nothing is downloaded here.
 */
const FAST = 'realesr-general-x4v3';
let home: string;
let store: ModelStore;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-variant-'));
  store = new ModelStore(home);
  const shared = new ModelStore();
  const installed = await shared.ensureOne(FAST);
  await fs.mkdir(store.modelsDir, { recursive: true });
  await fs.copyFile(installed.onnxPath, store.paths(FAST).onnx);
  await fs.copyFile(shared.paths(FAST).sidecar, store.paths(FAST).sidecar);
});
afterEach(async () => {
  await fs.rm(home, { recursive: true, force: true });
});

test('ensureVariant makes <id>.fp16.onnx once, with a sidecar recording its sha256 and its float32 source', async () => {
  expect(await store.checkVariant(FAST, 'fp16')).toEqual({ id: FAST, state: 'missing', path: path.join(store.modelsDir, `${FAST}.fp16.onnx`) });
  const made = await store.ensureVariant(FAST, 'fp16');
  expect(made.onnxPath).toBe(path.join(store.modelsDir, `${FAST}.fp16.onnx`));
  const bytes = await fs.readFile(made.onnxPath);
  expect(sha256(bytes)).toBe(made.sha256);
  const model = onnx.ModelProto.decode(bytes);
  expect(model.metadataProps!.find((p) => p.key === 'upbridge_precision')?.value).toBe('fp16');
  const sidecar = JSON.parse(await fs.readFile(store.variantPaths(FAST, 'fp16').sidecar, 'utf8'));
  const entry = catalogue.models.find((m) => m.id === FAST)!;
  expect(sidecar).toMatchObject({ id: FAST, variant: 'fp16', sha256: made.sha256, source: { onnx: `${FAST}.onnx`, sha256: entry.onnxSha256 }, converterVersion: FP16_CONVERTER_VERSION });
  expect(sidecar.stats.convertedValues).toBeGreaterThan(1_000_000);
  expect((await fs.readdir(store.modelsDir)).sort()).toEqual([`${FAST}.fp16.json`, `${FAST}.fp16.onnx`, `${FAST}.json`, `${FAST}.onnx`]);

  // Second time (and from a fresh store): the file is reused, not rewritten.
  const mtime = (await fs.stat(made.onnxPath)).mtimeMs;
  expect(await new ModelStore(home).ensureVariant(FAST, 'fp16')).toEqual(made);
  expect((await fs.stat(made.onnxPath)).mtimeMs).toBe(mtime);
  // Concurrent callers share one conversion.
  await fs.rm(made.onnxPath);
  const fresh = new ModelStore(home);
  const [a, b] = await Promise.all([fresh.ensureVariant(FAST, 'fp16'), fresh.ensureVariant(FAST, 'fp16')]);
  expect(a).toBe(b);
  expect(a.sha256).toBe(made.sha256); // the conversion is deterministic
});

test('a damaged variant is refused with a typed error naming the file; repair makes it again', async () => {
  const made = await store.ensureVariant(FAST, 'fp16');
  const bytes = await fs.readFile(made.onnxPath);
  bytes[bytes.length - 1] ^= 0xff;
  await fs.writeFile(made.onnxPath, bytes);
  const fresh = new ModelStore(home);
  expect(await fresh.checkVariant(FAST, 'fp16')).toEqual({ id: FAST, state: 'corrupt', path: made.onnxPath, expected: made.sha256, actual: sha256(bytes) });
  await expect(fresh.ensureVariant(FAST, 'fp16')).rejects.toMatchObject({ code: 'UPB_MODEL_INTEGRITY', message: expect.stringContaining(made.onnxPath) });
  expect((await fresh.ensureVariant(FAST, 'fp16', { repair: true })).sha256).toBe(made.sha256);
  expect((await fresh.checkVariant(FAST, 'fp16', true)).state).toBe('ok');
});

test('a variant made from another float32 file or by an older converter is stale and made again', async () => {
  const made = await store.ensureVariant(FAST, 'fp16');
  const sidecarPath = store.variantPaths(FAST, 'fp16').sidecar;
  const sidecar = JSON.parse(await fs.readFile(sidecarPath, 'utf8'));
  await fs.writeFile(sidecarPath, JSON.stringify({ ...sidecar, converterVersion: FP16_CONVERTER_VERSION - 1 }));
  expect((await store.checkVariant(FAST, 'fp16')).state).toBe('stale');
  await fs.writeFile(sidecarPath, JSON.stringify({ ...sidecar, source: { ...sidecar.source, sha256: '0'.repeat(64) } }));
  expect((await store.checkVariant(FAST, 'fp16')).state).toBe('stale');
  await store.ensureVariant(FAST, 'fp16');
  expect(JSON.parse(await fs.readFile(sidecarPath, 'utf8')).source.sha256).toBe(sidecar.source.sha256);
  expect((await store.checkVariant(FAST, 'fp16')).state).toBe('ok');
  expect(sha256(await fs.readFile(made.onnxPath))).toBe(made.sha256);
});

test('a corrupt float32 model is refused before any variant is made from it', async () => {
  const file = store.paths(FAST).onnx;
  const bytes = await fs.readFile(file);
  bytes[100] ^= 0xff;
  await fs.writeFile(file, bytes);
  await expect(new ModelStore(home).ensureVariant(FAST, 'fp16')).rejects.toMatchObject({ code: 'UPB_MODEL_INTEGRITY' });
  expect(await fs.readdir(store.modelsDir)).not.toContain(`${FAST}.fp16.onnx`);
});

test('an unknown variant or model id is refused with the allowed values', async () => {
  await expect(store.ensureVariant(FAST, 'int8' as ModelVariant)).rejects.toMatchObject({ code: 'UPB_INVALID_OPTION', message: expect.stringContaining('fp16 for variant but received "int8"') });
  await expect(store.ensureVariant('nope', 'fp16')).rejects.toMatchObject({ code: 'UPB_UNKNOWN_MODEL' });
});
