import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { catalogue } from '../../core/catalogue';
import { gpuDeviceFiles } from '../../core/node/providers';
import { DoctorProvider, DoctorReport, installAdvice } from '../../bridge-server/doctor';

/** The real CLI bundle (built by `npm test`'s pretest, or `node scripts/build.mjs`), in a child process. */
const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'upbridge.js');
const STRIP = path.join(ROOT, 'test', 'fixtures', 'photo-strip-256x24.png');

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...process.env, UPBRIDGE_PROVIDER: '' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** This machine has no GPU device at all (the one these tests were written on): webgpu must fail here. */
const noGpuHere = process.platform === 'linux' && gpuDeviceFiles()?.length === 0;

describe('upbridge doctor', () => {
  let report: DoctorReport;
  let human: string;
  beforeAll(async () => {
    const json = await cli('doctor', '--json');
    expect([json.code, json.stderr]).toEqual([0, '']);
    report = JSON.parse(json.stdout);
    const text = await cli('doctor');
    expect(text.code).toBe(0);
    human = text.stdout;
  });

  test('--json: platform, versions, every provider, cpu smoke-run with a positive speed', () => {
    expect(report).toMatchObject({ platform: process.platform, arch: process.arch, node: process.version, onnxruntime: '1.30.0', model: catalogue.defaultModel });
    expect(report.providers.map((p) => p.name)).toEqual(['cuda', 'dml', 'coreml', 'webgpu', 'cpu']);
    const cpu = report.providers.find((p) => p.name === 'cpu')!;
    expect(cpu).toMatchObject({ bundled: true, installed: true, available: true, smoke: { ok: true, input: '64x64', output: '256x256' } });
    expect(cpu.smoke!.outputMegapixelsPerSecond).toBeGreaterThan(0);
    expect(cpu.smoke!.seconds).toBeGreaterThan(0);
    // The speed is what the numbers say: 256×256 output pixels over the seconds.
    expect(cpu.smoke!.outputMegapixelsPerSecond).toBeCloseTo(0.065536 / cpu.smoke!.seconds!, 1);
  });

  test('--json: webgpu is bundled, and here unavailable with the runtime reason; the advice says what to install', () => {
    const webgpu = report.providers.find((p) => p.name === 'webgpu')!;
    if (process.platform === 'linux' && process.arch === 'x64') expect(webgpu.bundled).toBe(true);
    if (!noGpuHere) return;
    expect(webgpu).toMatchObject({ installed: true, available: false, reason: 'No supported adapters' });
    expect(webgpu.smoke).toBeUndefined();
    expect([report.defaultProvider, report.gpuUsed, report.gpuDevices]).toEqual(['cpu', false, []]);
    expect(report.advice.join('\n')).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
    expect(report.advice.join('\n')).toMatch(/WebGPU \(here: No supported adapters\).*Vulkan/);
  });

  test('human output: one line per provider, where it runs, what to install', () => {
    expect(human).toMatch(new RegExp(`^upbridge \\S+ on ${process.platform}-${process.arch}, \\d+ CPUs$`, 'm'));
    expect(human).toMatch(/^ {2}cpu +built in +ok, [\d.]+ MP\/s output \(64x64 → 256x256 in [\d.]+ s\)$/m);
    if (!noGpuHere) return;
    expect(human).toMatch(/^ {2}webgpu +bundled +unavailable: No supported adapters$/m);
    expect(human).toMatch(/^upscaling runs on: cpu \(no GPU provider works here\)$/m);
    expect(human).toMatch(/^to use a GPU:$/m);
  });
});

describe('install advice per platform', () => {
  const entry = (name: DoctorProvider['name'], over: Partial<DoctorProvider> = {}): DoctorProvider => ({ name, bundled: true, installed: true, available: false, ...over });
  test('Linux x64 names the CUDA download or the libraries it lacks, and Vulkan for WebGPU', () => {
    const fresh = installAdvice([entry('cuda', { installed: false, bundled: false }), entry('webgpu', { reason: 'No supported adapters' })], 'linux', 'x64');
    expect(fresh[0]).toMatch(/CUDA 12 and cuDNN 9.*ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
    expect(fresh[1]).toMatch(/^Any GPU \(AMD, Intel, NVIDIA\) through WebGPU \(here: No supported adapters\): install the Vulkan loader/);
    const libsMissing = installAdvice([entry('cuda', { bundled: false, reason: 'Failed to load shared library' })], 'linux', 'x64');
    expect(libsMissing[0]).toMatch(/CUDA files are installed but cuda did not run \(here: Failed to load shared library\).*LD_LIBRARY_PATH/);
  });
  test('Windows: DirectML; macOS: CoreML; Linux arm64: no prebuilt GPU provider', () => {
    expect(installAdvice([entry('dml', { reason: 'x' })], 'win32', 'x64')[0]).toMatch(/^DirectML \(here: x\): needs a DirectX 12 GPU/);
    expect(installAdvice([], 'darwin', 'arm64')[0]).toMatch(/^CoreML: part of macOS/);
    expect(installAdvice([], 'linux', 'arm64')).toEqual([expect.stringMatching(/no GPU provider for Linux arm64/)]);
  });
});

describe('--provider on the command line', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-provider-cli-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  test('an unknown name: exit 2, one line listing the allowed names (upscale and serve)', async () => {
    for (const args of [['upscale', STRIP, '-o', path.join(dir, 'x.png'), '--provider', 'gpu'], ['serve', '--port', '7598', '--provider', 'gpu']]) {
      const { code, stderr } = await cli(...args);
      expect([code, stderr]).toEqual([2, 'upbridge: provider must be one of auto, cuda, dml, coreml, webgpu, cpu, got "gpu" [UPB_INVALID_OPTION]\n']);
    }
  });

  test('a forced provider that cannot run: the cpu result, one line on stderr, provider "cpu" in the report', async () => {
    if (!noGpuHere) return;
    const forced = await cli('upscale', STRIP, '-o', path.join(dir, 'webgpu.png'), '--provider', 'webgpu', '--json');
    const plain = await cli('upscale', STRIP, '-o', path.join(dir, 'cpu.png'), '--provider', 'cpu', '--json');
    expect([forced.code, forced.stderr]).toEqual([0, 'upbridge: webgpu unavailable (No supported adapters); using cpu\n']);
    expect([plain.code, plain.stderr]).toEqual([0, '']);
    expect(JSON.parse(forced.stdout).provider).toBe('cpu');
    expect((await fs.readFile(path.join(dir, 'webgpu.png'))).equals(await fs.readFile(path.join(dir, 'cpu.png')))).toBe(true);
    // The default here: cpu, with the one line saying why the GPU is not used.
    const auto = await cli('upscale', STRIP, '-o', path.join(dir, 'auto.png'), '--json');
    expect(JSON.parse(auto.stdout).provider).toBe('cpu');
    expect(auto.stderr).toBe('upbridge: webgpu unavailable (no GPU device: no /dev/dri/renderD*, /dev/nvidia* or /dev/dxg); using cpu\n');
  });
});
