import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { syntheticRaster } from '../helpers';

/**
 * `upbridge batch` as a user runs it: the built CLI in a child process, real models, small images.
 * Every output is compared byte for byte with what `upbridge upscale` writes for the same input.
 */
const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'upbridge.js');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'ncnn-reference', 'input-a.png');
const SETTINGS = ['--scale', '2', '--tile', '32', '--overlap', '8'];

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: process.env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const sha256 = async (file: string) => createHash('sha256').update(await fs.readFile(file)).digest('hex');
const jsonLines = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l));

let dir: string;
let input: string;
/** key → the single-image CLI's output bytes for that input. */
const reference = new Map<string, Buffer>();
const KEYS = ['a.png', 'nested/deeper/c.jpg', 'nested/rgba.png'];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-batch-'));
  input = path.join(dir, 'in');
  await fs.mkdir(path.join(input, 'nested', 'deeper'), { recursive: true });
  await fs.copyFile(FIXTURE, path.join(input, 'a.png'));
  const rgba = syntheticRaster(24, 20, 4, 8, 3);
  await sharp(Buffer.from(rgba.data), { raw: { width: 24, height: 20, channels: 4 } }).png().toFile(path.join(input, 'nested', 'rgba.png'));
  const rgb = syntheticRaster(28, 22, 3, 8, 5);
  await sharp(Buffer.from(rgb.data), { raw: { width: 28, height: 22, channels: 3 } }).jpeg({ quality: 90 }).toFile(path.join(input, 'nested', 'deeper', 'c.jpg'));
  // Not an image: skipped by extension when listing a folder.
  await fs.writeFile(path.join(input, 'notes.txt'), 'not an image');
  const refDir = path.join(dir, 'ref');
  for (const key of KEYS) {
    const out = path.join(refDir, key.replace(/\//g, '_'));
    await fs.mkdir(refDir, { recursive: true });
    const r = await cli('upscale', path.join(input, key), '-o', out, ...SETTINGS, '--json');
    expect(r.code).toBe(0);
    reference.set(key, await fs.readFile(out));
  }
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('upbridge batch', () => {
  test('a folder: outputs byte-equal to `upbridge upscale`, same relative paths, a manifest with sha256 of both; resume skips, repairs a truncated output and redoes a missing one', async () => {
    const out = path.join(dir, 'out-folder');
    const first = await cli('batch', input, '-o', out, ...SETTINGS, '--json');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const lines = jsonLines(first.stdout);
    expect(lines[0]).toEqual({ event: 'start', total: 3, toRun: 3, skipped: 0 });
    expect(lines.filter((l) => l.event === 'image').map((l) => [l.key, l.status]).sort()).toEqual(KEYS.map((k) => [k, 'done']));
    expect(lines.at(-1)).toMatchObject({ event: 'summary', total: 3, done: 3, skipped: 0, failed: 0 });
    for (const key of KEYS) expect((await fs.readFile(path.join(out, key))).equals(reference.get(key)!)).toBe(true);

    const manifest = JSON.parse(await fs.readFile(path.join(out, 'upbridge-manifest.json'), 'utf8'));
    expect(manifest.items.map((i: { key: string }) => i.key)).toEqual(KEYS);
    for (const item of manifest.items) {
      expect(item).toMatchObject({ status: 'done', model: 'realesr-general-x4v3', settings: { scale: '2', tile: '32', overlap: '8' }, output: item.key, seconds: expect.any(Number) });
      expect(item.inputSha256).toBe(await sha256(path.join(input, item.key)));
      expect(item.outputSha256).toBe(await sha256(path.join(out, item.key)));
    }

    // Run again: nothing to do, nothing rewritten.
    const mtimes = await Promise.all(KEYS.map(async (k) => (await fs.stat(path.join(out, k))).mtimeMs));
    const again = await cli('batch', input, '-o', out, ...SETTINGS, '--json');
    expect(again.code).toBe(0);
    expect(jsonLines(again.stdout)[0]).toEqual({ event: 'start', total: 3, toRun: 0, skipped: 3 });
    expect(await Promise.all(KEYS.map(async (k) => (await fs.stat(path.join(out, k))).mtimeMs))).toEqual(mtimes);

    // A truncated output (a copy cut short) and a deleted one are redone; the third is kept.
    const truncated = path.join(out, KEYS[1]);
    await fs.truncate(truncated, 100);
    await fs.rm(path.join(out, KEYS[2]));
    const resumed = await cli('batch', input, '-o', out, ...SETTINGS, '--json');
    expect(resumed.code).toBe(0);
    const r = jsonLines(resumed.stdout);
    expect(r[0]).toEqual({ event: 'start', total: 3, toRun: 2, skipped: 1 });
    expect(r.filter((l) => l.event === 'image').map((l) => [l.key, l.repaired]).sort()).toEqual([
      [KEYS[1], true],
      [KEYS[2], false],
    ]);
    expect(r.at(-1)).toMatchObject({ done: 2, repaired: 1, skipped: 1, failed: 0 });
    for (const key of KEYS) expect((await fs.readFile(path.join(out, key))).equals(reference.get(key)!)).toBe(true);
    // Other settings are other results: nothing is skipped.
    const other = await cli('batch', input, '-o', out, '--scale', '1.5', '--tile', '32', '--overlap', '8', '--json');
    expect(other.code).toBe(0);
    expect(jsonLines(other.stdout)[0]).toEqual({ event: 'start', total: 3, toRun: 3, skipped: 0 });
  });

  test('a corrupt input is reported in the manifest and the summary, the rest complete, and the exit code says so; a quoted glob keeps paths relative to its fixed part', async () => {
    const withBad = path.join(dir, 'in-bad');
    await fs.cp(input, withBad, { recursive: true });
    const good = await fs.readFile(path.join(withBad, 'a.png'));
    // A PNG cut in the middle of its pixel data, and a file that is no image at all.
    await fs.writeFile(path.join(withBad, 'nested', 'broken.png'), good.subarray(0, Math.floor(good.length / 2)));
    await fs.writeFile(path.join(withBad, 'nested', 'deeper', 'text.jpg'), 'this is not a JPEG');
    const out = path.join(dir, 'out-bad');
    const r = await cli('batch', `${withBad}/**/*.{png,jpg}`, '-o', out, ...SETTINGS);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/upbridge: 2 of 5 images failed \(each is named in .*upbridge-manifest\.json\); run the same command again to retry them \[UPB_BATCH_INCOMPLETE\]/);
    expect(r.stdout).toMatch(/nested\/broken\.png: FAILED: .* \[UPB_INPUT_NOT_IMAGE\]/);
    expect(r.stdout).toMatch(/3 upscaled, 0 already done, 2 failed, of 5 images/);
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'upbridge-manifest.json'), 'utf8'));
    const byKey = Object.fromEntries(manifest.items.map((i: { key: string }) => [i.key, i]));
    expect(byKey['nested/broken.png']).toMatchObject({ status: 'failed', error: { code: 'UPB_INPUT_NOT_IMAGE', message: expect.stringContaining('broken.png') } });
    expect(byKey['nested/deeper/text.jpg']).toMatchObject({ status: 'failed', error: { code: 'UPB_INPUT_NOT_IMAGE' } });
    for (const key of KEYS) {
      expect(byKey[key].status).toBe('done');
      expect((await fs.readFile(path.join(out, key))).equals(reference.get(key)!)).toBe(true);
    }
    // No output, not even a partial one, for the failed images.
    await expect(fs.access(path.join(out, 'nested', 'broken.png'))).rejects.toThrow();
    expect((await fs.readdir(path.join(out, 'nested'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('bad options stop the batch before any image, naming the allowed range', async () => {
    const out = path.join(dir, 'out-usage');
    const scale = await cli('batch', input, '-o', out, '--scale', '20');
    expect(scale.code).toBe(2);
    expect(scale.stderr).toMatch(/upbridge: scale must be a number from 1 to 16, got "20" \[UPB_INVALID_OPTION\]/);
    const tile = await cli('batch', input, '-o', out, '--tile', '4');
    expect(tile.code).toBe(2);
    expect(tile.stderr).toMatch(/tile must be an integer from 16 to 4096, got "4"/);
    const none = await cli('batch', path.join(dir, 'nothing-here', '*.png'), '-o', out);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no images \(\.png \.jpg \.jpeg \.webp \.tif \.tiff\) found/);
    const queue = await cli('batch', input, '-o', out, '--queue', 'http://localhost:6379', '--store', dir);
    expect(queue.code).toBe(2);
    expect(queue.stderr).toMatch(/--queue must start with redis:\/\/ or rediss:\/\/ \(TLS\), got "http:"/);
    const ownModel = await cli('batch', input, '-o', out, '--queue', 'redis://127.0.0.1:1', '--store', dir, '--model', path.join(dir, 'mine.onnx'));
    expect(ownModel.code).toBe(2);
    expect(ownModel.stderr).toMatch(/with --queue, --model must be a model id that every worker has, not a file \(".*mine\.onnx"\): put the \.onnx in each worker's models\/custom folder and give its id, custom:<name without \.onnx> \[UPB_INVALID_OPTION\]/);
    await expect(fs.access(out)).rejects.toThrow();
  });
});
