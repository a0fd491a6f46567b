import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { catalogue } from '../../core/catalogue';

/**
 * The real CLI, as a user runs it: the esbuild bundle (built by `npm test`'s pretest) through
 * bin/upbridge.js, in a child process.
 */
const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'upbridge.js');
const SAMPLE = path.join(ROOT, 'test', 'fixtures', 'ncnn-reference', 'input-a.png');

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: process.env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-cli-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('upbridge upscale', () => {
  test('--json prints one line describing the result, and the file is a 4x PNG', async () => {
    const out = path.join(dir, 'out.png');
    const { code, stdout } = await cli('upscale', SAMPLE, '-o', out, '--json');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]);
    expect(report).toEqual({
      model: 'realesr-general-x4v3',
      scale: 4,
      input: { width: 40, height: 32 },
      output: { width: 160, height: 128 },
      tiles: 1,
      passes: 1,
      seconds: expect.any(Number),
      provider: 'cpu',
      // No mode: the model alone; the report still says how far the result strays from the input.
      content: expect.stringMatching(/^(photo|illustration)$/),
      contentDetected: true,
      consistent: false,
      models: { result: 'realesr-general-x4v3' },
      lrPsnr: expect.any(Number),
    });
    expect(report.lrPsnr).toBeGreaterThan(15);
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 160, 128]);
  });

  test('fractional scale, tile options and another output format', async () => {
    const out = path.join(dir, 'out.webp');
    const { code, stdout } = await cli('upscale', SAMPLE, '-o', out, '--scale', '2.5', '--tile', '16', '--overlap', '8', '--json');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ scale: 2.5, output: { width: 100, height: 80 }, tiles: 6 });
    expect((await sharp(out).metadata()).format).toBe('webp');
  });

  test.each([
    [['upscale', 'missing.png', '-o', 'OUT'], /input file "missing.png" does not exist/],
    [['upscale', 'SAMPLE', '-o', 'OUT', '--scale', '20'], /scale must be a number from 1 to 16, got "20"/],
    [['upscale', 'SAMPLE', '-o', 'OUT', '--scale', '0.5'], /scale must be a number from 1 to 16/],
    [['upscale', 'SAMPLE', '-o', 'OUT', '--tile', '4'], /tile must be an integer from 16 to 4096, got "4"/],
    [['upscale', 'SAMPLE', '-o', 'OUT', '--model', 'nope'], /unknown model "nope"; known models: realesr-general-x4v3, realesrgan-x4plus/],
    [['upscale', 'NOT_IMAGE', '-o', 'OUT'], /is not an image/],
    [['upscale', 'SAMPLE', '-o', 'NO_DIR'], /cannot write .* does not exist/],
    [['upscale', 'SAMPLE', '-o', 'BAD_EXT'], /must end in one of \.png, \.jpg/],
    [['upscale', 'SAMPLE', '-o', 'OUT', '--alpha', 'blur'], /Allowed choices are model, lanczos/],
    [['upscale', 'SAMPLE'], /required option '-o, --output <file>'/],
  ])('bad input %j: exit 2, one line naming the problem, no output file', async (args, message) => {
    const notImage = path.join(dir, 'notes.png');
    await fs.writeFile(notImage, 'this is text');
    const out = path.join(dir, 'out.png');
    const subst: Record<string, string> = { OUT: out, SAMPLE, NOT_IMAGE: notImage, NO_DIR: path.join(dir, 'missing', 'out.png'), BAD_EXT: path.join(dir, 'out.gif') };
    const { code, stdout, stderr } = await cli(...args.map((a) => subst[a] ?? a));
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await fs.readdir(dir)).toEqual(['notes.png']);
  });
});

describe('upbridge upscale --mode', () => {
  test('--mode fidelity --map: consistent with the input (LR-PSNR ≥ 45 dB), the map written beside the output', async () => {
    const out = path.join(dir, 'fid.png');
    const { code, stdout } = await cli('upscale', SAMPLE, '-o', out, '--mode', 'fidelity', '--content', 'photo', '--map', '--json');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report).toMatchObject({ mode: 'fidelity', content: 'photo', creativity: 0, consistent: true, models: { fidelity: catalogue.modeDefaults.photo.fidelity }, mapFile: path.join(dir, 'fid.map.png') });
    expect(report.lrPsnr).toBeGreaterThanOrEqual(45);
    const map = await sharp(report.mapFile).metadata();
    expect([map.width, map.height, map.channels]).toEqual([160, 128, 1]);
  });

  test('--mode creative --map out.png writes the map where asked; the text report says what ran and the LR-PSNR', async () => {
    const out = path.join(dir, 'cre.png');
    const mapFile = path.join(dir, 'where.png');
    const { code, stdout } = await cli('upscale', SAMPLE, '-o', out, '--mode', 'creative', '--content', 'photo', '--map', mapFile);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`creative mode for a photo, ${catalogue.modeDefaults.photo.fidelity} \\+ ${catalogue.modeDefaults.photo.creative}, creativity 1, 4x.*LR-PSNR \\d+(\\.\\d+)? dB`));
    expect(stdout).toMatch(/where\.png: invented-detail map, mean 0\.\d{3}, \d+\.\d% of pixels over 0\.5/);
    expect((await sharp(mapFile).metadata()).width).toBe(160);
  });

  test('bad mode options exit 2 naming the option and what is allowed, and write nothing', async () => {
    const out = path.join(dir, 'bad.png');
    const noMode = await cli('upscale', SAMPLE, '-o', out, '--creativity', '0.5');
    expect(noMode.code).toBe(2);
    expect(noMode.stderr).toMatch(/creativity must be used with a mode .* \[UPB_INVALID_OPTION\]/);
    const range = await cli('upscale', SAMPLE, '-o', out, '--mode', 'creative', '--creativity', '2');
    expect(range.code).toBe(2);
    expect(range.stderr).toMatch(/creativity must be a number from 0 to 1, got "2"/);
    const mode = await cli('upscale', SAMPLE, '-o', out, '--mode', 'sharpest');
    expect(mode.code).toBe(2);
    expect(mode.stderr).toMatch(/fidelity, balanced, creative/);
    await expect(fs.access(out)).rejects.toThrow();
  });

  test('the output or the map over the input, or the map over the output, exit 2 and leave the files as they were', async () => {
    const input = path.join(dir, 'mine.png');
    await fs.copyFile(SAMPLE, input);
    const before = await fs.readFile(input);
    const over = await cli('upscale', input, '-o', path.join(dir, '.', 'mine.png'), '--scale', '2');
    expect(over.code).toBe(2);
    expect(over.stderr).toMatch(/output must be a file other than the input, got ".*mine\.png" \[UPB_INVALID_OPTION\]/);
    const out = path.join(dir, 'mine-2x.png');
    for (const map of [out, input]) {
      const r = await cli('upscale', input, '-o', out, '--scale', '2', '--mode', 'creative', '--map', map);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/map must be a file other than the output and the input, got ".*\.png" \[UPB_INVALID_OPTION\]/);
    }
    expect((await fs.readFile(input)).equals(before)).toBe(true);
    expect((await fs.readdir(dir)).sort()).toEqual(['mine.png']);
    await fs.rm(input);
  });
});

describe('upbridge upscale: stopping and format limits', () => {
  // "Within one tile" is proven by the pipeline's abort test (it counts tiles); this one proves the
  // CLI turns Ctrl-C into that abort instead of finishing the job.
  test('Ctrl-C stops the job: exit 130, no output file', async () => {
    const out = path.join(dir, 'out.png');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [BIN, 'upscale', path.join(ROOT, 'assets', 'sample.png'), '-o', out, '--model', 'realesrgan-x4plus', '--tile', '32', '--json'], { env: process.env });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // 30 tiles of x4plus take many seconds; interrupt once the first tiles are under way.
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(130);
    expect(stderr).toMatch(/cancelled \[UPB_CANCELLED\]/);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  test('a second Ctrl-C ends the process at once (by SIGINT: 130 in a shell) and leaves no hidden temp file of the streamed output behind', async () => {
    // 2048² ×4 is 67 MP: the PNG is streamed into a hidden temp file beside the output while tiles run.
    const big = path.join(dir, 'big.png');
    await sharp({ create: { width: 2048, height: 2048, channels: 3, background: '#6080a0' } }).png().toFile(big);
    const out = path.join(dir, 'out.png');
    const { spawn } = await import('node:child_process');
    // x4plus tiles take seconds here: the first press's cancel cannot finish before the second press.
    const child = spawn(process.execPath, [BIN, 'upscale', big, '-o', out, '--model', 'realesrgan-x4plus', '--tile', '64', '--json'], { env: process.env });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
    try {
      let temp: string | undefined;
      for (let waited = 0; !temp && waited < 60_000; waited += 100) {
        temp = (await fs.readdir(dir)).find((f) => /^\.out\.png\..*\.tmp$/.test(f));
        if (!temp) await new Promise((r) => setTimeout(r, 100));
      }
      expect(temp).toBeDefined();
      child.kill('SIGINT');
      // The first press cancels within the running tile; the second must not wait for it.
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGINT');
      expect(await exited).toEqual({ code: null, signal: 'SIGINT' });
      expect(await fs.readdir(dir)).toEqual(['big.png']);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  }, 120_000);

  test('a result too large for WebP is refused before any inference', async () => {
    const wide = path.join(dir, 'wide.png');
    await sharp({ create: { width: 1100, height: 2, channels: 3, background: '#808080' } }).png().toFile(wide);
    const { code, stderr } = await cli('upscale', wide, '-o', path.join(dir, 'out.webp'), '--scale', '16', '--json');
    expect(code).toBe(2);
    expect(stderr).toMatch(/17600×32 result does not fit WEBP \(at most 16383 px a side\)/);
    expect(await fs.readdir(dir)).toEqual(['wide.png']);
  });
});

describe('upbridge models list', () => {
  test('--json lists installed and installable models with the default marked', async () => {
    const { code, stdout } = await cli('models', 'list', '--json');
    expect(code).toBe(0);
    const listed = JSON.parse(stdout);
    expect(listed.home).toBe(path.join(process.env.UPBRIDGE_HOME!, 'models'));
    expect(listed.models.map((m: { id: string }) => m.id)).toEqual(catalogue.models.map((m) => m.id));
    expect(listed.models[0]).toMatchObject({ id: 'realesr-general-x4v3', default: true, installed: true, scale: 4, content: 'photo', mode: 'balanced', format: 'ncnn' });
  });

  test('an empty home lists every model as installable', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'models', 'list'], { env: { ...process.env, UPBRIDGE_HOME: dir } });
    expect(stdout).toMatch(/installable\s+realesr-general-x4v3/);
    expect(stdout).toMatch(/installable\s+realesrgan-x4plus/);
  });
});

describe('upbridge serve and tokens', () => {
  test('serve refuses a non-loopback host without --allow-remote and TLS files', async () => {
    for (const extra of [[], ['--allow-remote']]) {
      const { code, stderr } = await cli('serve', '--host', '0.0.0.0', '--port', '7599', ...extra);
      expect(code).toBe(2);
      expect(stderr).toMatch(/--host 0\.0\.0\.0 would expose the bridge to the network; it needs --allow-remote together with --tls-cert and --tls-key/);
    }
  });

  test('tokens create prints the token on its last line; list shows it hashed-away; revoke removes it', async () => {
    const env = { ...process.env, UPBRIDGE_CONFIG_DIR: dir };
    const created = await run(process.execPath, [BIN, 'tokens', 'create', '--name', 'ci-script'], { env });
    const token = created.stdout.trim().split('\n').pop()!;
    expect(token).toMatch(/^upb_[A-Za-z0-9_-]{43}$/);
    const stored = await fs.readFile(path.join(dir, 'tokens.json'), 'utf8');
    expect(stored).not.toContain(token);
    expect((await fs.stat(path.join(dir, 'tokens.json'))).mode & 0o777).toBe(0o600);
    const listed = JSON.parse((await run(process.execPath, [BIN, 'tokens', 'list', '--json'], { env })).stdout);
    expect(listed).toEqual([{ id: expect.any(String), name: 'ci-script', createdAt: expect.any(String) }]);
    await run(process.execPath, [BIN, 'tokens', 'revoke', 'ci-script'], { env });
    expect(JSON.parse((await run(process.execPath, [BIN, 'tokens', 'list', '--json'], { env })).stdout)).toEqual([]);
    const { code, stderr } = await cli('tokens', 'revoke', 'nobody');
    expect(code).toBe(2);
    expect(stderr).toMatch(/no token with id or name "nobody"/);
  });
});
