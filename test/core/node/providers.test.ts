import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { catalogue, findModel } from '../../../core/catalogue';
import { UpbridgeError } from '../../../core/errors';
import { ModelStore } from '../../../core/node/model-store';
import { openOrtSession, ortRunner, OrtSessionLike } from '../../../core/node/ort-session';
import { detectProviders, gpuDeviceFiles, NO_GPU_DEVICE, parseProvider, PROVIDER_CHOICES, probeProviders, ProviderName, ProviderSelector } from '../../../core/node/providers';
import { upscaleFile } from '../../../core/node/upscale-file';
import { sharpResampler } from '../../../core/node/image-io';
import { InferenceRunner } from '../../../core/session';
import { upscaleRaster, windowConventions } from '../../../core/upscale';
import { nodeEngine } from '../../../bridge-server/engine';
import { syntheticRaster } from '../../helpers';

const MODEL = catalogue.defaultModel;
let onnxPath: string;
/** Whether this machine has a working WebGPU adapter (the machine these tests were written on has none). */
let webgpuWorks: boolean;

beforeAll(async () => {
  onnxPath = (await new ModelStore().ensureOne(MODEL)).onnxPath;
  webgpuWorks = (await probeProviders(['webgpu'])).get('webgpu')!.ok;
});

/** The whole pipeline over several tiles, so a fallback on the first tile is followed by more. */
async function upscaleWith(runner: InferenceRunner) {
  const entry = findModel(MODEL);
  const input = syntheticRaster(40, 28, 3, 8, 7);
  const { raster, tiles } = await upscaleRaster(input, runner, entry.scale, sharpResampler, {
    scale: entry.scale,
    tile: 16,
    overlap: 4,
    alpha: 'model',
    ...windowConventions(entry),
  });
  return { bytes: Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength), tiles };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof UpbridgeError ? e.code : `not an UpbridgeError: ${String(e)}`;
  }
  return undefined;
}

/** Only webgpu and cpu, on any platform (no cuda, dml or coreml to try first). */
const webgpuAndCpu = () => [
  { name: 'webgpu' as const, bundled: true, installed: true },
  { name: 'cpu' as const, bundled: true, installed: true },
];

describe('provider names', () => {
  test('an unknown provider is UPB_INVALID_OPTION naming the allowed names', () => {
    expect(PROVIDER_CHOICES).toEqual(['auto', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu']);
    expect(code(() => parseProvider('gpu'))).toBe('UPB_INVALID_OPTION');
    expect(() => parseProvider('gpu')).toThrow('provider must be one of auto, cuda, dml, coreml, webgpu, cpu, got "gpu"');
    expect(() => parseProvider(undefined, { UPBRIDGE_PROVIDER: 'tpu' })).toThrow('UPBRIDGE_PROVIDER must be one of auto, cuda, dml, coreml, webgpu, cpu, got "tpu"');
    expect(code(() => nodeEngine(new ModelStore(), { provider: 'vulkan' }))).toBe('UPB_INVALID_OPTION');
    expect([parseProvider('WebGPU'), parseProvider(undefined, {}), parseProvider(undefined, { UPBRIDGE_PROVIDER: 'cpu' }), parseProvider('cuda', { UPBRIDGE_PROVIDER: 'cpu' })]).toEqual(['webgpu', 'auto', 'cpu', 'cuda']);
  });

  test('upscaleFile refuses an unknown provider before reading anything', async () => {
    const err = await upscaleFile({ input: '/nonexistent.png', output: path.join(os.tmpdir(), 'never.png'), provider: 'metal' }).catch((e) => e);
    expect(err).toBeInstanceOf(UpbridgeError);
    expect([err.code, err.message]).toEqual(['UPB_INVALID_OPTION', 'provider must be one of auto, cuda, dml, coreml, webgpu, cpu, got "metal"']);
  });

  test('detection here: cpu and webgpu bundled, cuda only with its files, dml and coreml on their platforms', () => {
    const byName = new Map(detectProviders().map((s) => [s.name, s]));
    expect(byName.get('cpu')).toEqual({ name: 'cpu', bundled: true, installed: true });
    if (process.platform === 'linux' && process.arch === 'x64') {
      expect(byName.get('webgpu')).toMatchObject({ bundled: true, installed: true });
      expect(byName.get('dml')).toMatchObject({ installed: false, reason: 'Windows only' });
      expect(byName.get('coreml')).toMatchObject({ installed: false, reason: 'macOS only' });
      // This checkout's .npmrc skips the CUDA download, so its files are absent.
      expect(byName.get('cuda')).toMatchObject({ bundled: false, installed: false, reason: "onnxruntime-node's CUDA files are not installed" });
      expect(byName.get('cuda')!.detail).toMatch(/libonnxruntime_providers_cuda\.so/);
    }
  });
});

describe('the probe (a child process)', () => {
  test('cpu passes it, webgpu fails it here with the runtime reason, both in one child', async () => {
    const verdicts = await probeProviders(['cpu', 'webgpu']);
    expect(verdicts.get('cpu')).toEqual({ ok: true });
    if (webgpuWorks) return; // a machine with a GPU: nothing to fall back from
    expect(verdicts.get('webgpu')).toMatchObject({ ok: false, reason: 'No supported adapters' });
    expect(verdicts.get('webgpu')!.detail).toMatch(/Failed to get a WebGPU adapter: No supported adapters/);
  });
});

describe('fallback to the cpu', () => {
  test('forced webgpu, unavailable here, falls back with one line and the cpu output byte for byte', async () => {
    const lines: string[] = [];
    const selector = new ProviderSelector({ log: (l) => lines.push(l) });
    const forced = await ortRunner(onnxPath, { provider: 'webgpu', selector });
    if (webgpuWorks) {
      expect(forced.provider).toBe('webgpu');
      return;
    }
    expect(forced.provider).toBe('cpu');
    const plain = await ortRunner(onnxPath, { provider: 'cpu', selector: new ProviderSelector({ log: (l) => lines.push(`unexpected: ${l}`) }) });
    const [a, b] = [await upscaleWith(forced), await upscaleWith(plain)];
    expect(a.tiles).toBeGreaterThan(1);
    expect(a.bytes.equals(b.bytes)).toBe(true);
    // Another model file, the same choice: webgpu is not probed again and not reported again.
    const again = await ortRunner(onnxPath, { provider: 'webgpu', selector });
    expect(again.provider).toBe('cpu');
    expect(lines).toEqual(['upbridge: webgpu unavailable (No supported adapters); using cpu']);
  });

  test('upscaleFile --provider webgpu writes the same file as --provider cpu and prints the line once', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-providers-'));
    const input = path.join(__dirname, '..', '..', 'fixtures', 'photo-strip-256x24.png');
    const written: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const forced1 = await upscaleFile({ input, output: path.join(dir, 'webgpu-1.png'), provider: 'webgpu' });
      const forced2 = await upscaleFile({ input, output: path.join(dir, 'webgpu-2.png'), provider: 'webgpu' });
      const plain = await upscaleFile({ input, output: path.join(dir, 'cpu.png'), provider: 'cpu' });
      spy.mockRestore();
      if (webgpuWorks) {
        expect(forced1.provider).toBe('webgpu');
        return;
      }
      expect([forced1.provider, forced2.provider, plain.provider]).toEqual(['cpu', 'cpu', 'cpu']);
      const [w1, w2, c] = await Promise.all(['webgpu-1.png', 'webgpu-2.png', 'cpu.png'].map((f) => fs.readFile(path.join(dir, f))));
      expect(w1.equals(c)).toBe(true);
      expect(w2.equals(c)).toBe(true);
      expect(written.filter((w) => w.includes('webgpu'))).toEqual(['upbridge: webgpu unavailable (No supported adapters); using cpu\n']);
    } finally {
      spy.mockRestore();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  /**
   * A provider that opens a session and then fails on its first run (as a GPU provider does on a
   * kernel it lacks, or a lost device). The stand-in is a real CPU session whose first run throws.
   */
  function failingFirstRun(message: string) {
    const calls: string[] = [];
    let released = 0;
    const openSession = async (file: string, provider: ProviderName): Promise<OrtSessionLike> => {
      calls.push(provider);
      const real = await openOrtSession(file, 'cpu');
      if (provider !== 'webgpu') return real;
      let runs = 0;
      return {
        inputNames: real.inputNames,
        outputNames: real.outputNames,
        run: async (feeds) => {
          if (runs++ === 0) throw new Error(message);
          return real.run(feeds);
        },
        release: async () => {
          released++;
          await real.release();
        },
      };
    };
    return { calls, openSession, released: () => released };
  }

  /** A selector that believes webgpu works here (probe passed, a GPU device present). */
  const believingSelector = (lines: string[]) =>
    new ProviderSelector({
      log: (l) => lines.push(l),
      detect: webgpuAndCpu,
      gpuDevices: () => ['/dev/dri/renderD128'],
      probe: async (names) => new Map(names.map((n) => [n, { ok: true }])),
    });

  test('a provider that fails on the first tile falls back to the cpu: one line, cpu output byte for byte', async () => {
    const lines: string[] = [];
    const selector = believingSelector(lines);
    const fake = failingFirstRun('/src/webgpu_context.cc:99 Run failed: device lost');
    const runner = await ortRunner(onnxPath, { provider: 'auto', selector, openSession: fake.openSession });
    expect(runner.provider).toBe('webgpu');
    expect(lines).toEqual([]);
    const fellBack = await upscaleWith(runner);
    expect(runner.provider).toBe('cpu');
    expect(fake.released()).toBe(1);
    const plain = await upscaleWith(await ortRunner(onnxPath, { provider: 'cpu', selector: new ProviderSelector() }));
    expect(fellBack.tiles).toBeGreaterThan(1);
    expect(fellBack.bytes.equals(plain.bytes)).toBe(true);
    expect(lines).toEqual(['upbridge: webgpu failed on the first tile (device lost); using cpu']);
    // The next session skips webgpu without opening it and without another line.
    const next = await ortRunner(onnxPath, { provider: 'auto', selector, openSession: fake.openSession });
    expect(next.provider).toBe('cpu');
    expect(fake.calls).toEqual(['webgpu', 'cpu', 'cpu']);
    expect(lines).toHaveLength(1);
  });

  test('an out-of-memory error on the first tile is the pipeline\'s to handle (smaller tiles), not a fallback', async () => {
    const lines: string[] = [];
    const fake = failingFirstRun('Failed to allocate memory for requested buffer of size 123456');
    const runner = await ortRunner(onnxPath, { provider: 'webgpu', selector: believingSelector(lines), openSession: fake.openSession });
    const tile = { data: new Float32Array(3 * 16 * 16).fill(0.5), channels: 3, height: 16, width: 16 };
    await expect(runner.run(tile)).rejects.toThrow(/Failed to allocate/);
    expect(runner.provider).toBe('webgpu');
    expect((await runner.run(tile)).width).toBe(64);
    expect([runner.provider, lines]).toEqual(['webgpu', []]);
  });

  test('a provider whose session cannot be created is skipped with one line', async () => {
    const lines: string[] = [];
    const runner = await ortRunner(onnxPath, {
      provider: 'auto',
      selector: believingSelector(lines),
      openSession: async (file, provider) => {
        if (provider === 'webgpu') throw new Error('/onnxruntime_src/x.cc:1 Init failed. Failed to get a WebGPU adapter: No supported adapters');
        return openOrtSession(file, provider);
      },
    });
    expect(runner.provider).toBe('cpu');
    expect(lines).toEqual(['upbridge: webgpu unavailable (No supported adapters); using cpu']);
  });

  test('auto without a GPU device probes nothing and says so once', async () => {
    const lines: string[] = [];
    const probed: string[] = [];
    const selector = new ProviderSelector({
      log: (l) => lines.push(l),
      detect: webgpuAndCpu,
      gpuDevices: () => [],
      probe: async (names) => {
        probed.push(...names);
        return new Map();
      },
    });
    expect(await selector.candidates('auto')).toEqual({ tries: ['cpu'], unavailable: [{ name: 'webgpu', reason: NO_GPU_DEVICE }] });
    const runner = await ortRunner(onnxPath, { provider: 'auto', selector });
    expect(runner.provider).toBe('cpu');
    await ortRunner(onnxPath, { provider: 'auto', selector });
    expect(probed).toEqual([]);
    expect(lines).toEqual([`upbridge: webgpu unavailable (${NO_GPU_DEVICE}); using cpu`]);
  });

  test('this machine: GPU device files are what decide whether auto probes', () => {
    const devices = gpuDeviceFiles();
    if (process.platform !== 'linux') expect(devices).toBeNull();
    else for (const d of devices!) expect(d).toMatch(/^\/dev\/(dri\/renderD\d+|nvidia\d+|dxg)$/);
  });
});
