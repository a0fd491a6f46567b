import { ModelStore } from '../../../core/node/model-store';
import { gpuPrecision } from '../../../core/node/model-runner';
import { openOrtSession, ortRunner } from '../../../core/node/ort-session';
import { ProviderName, ProviderSelector } from '../../../core/node/providers';
import { thrown } from '../../helpers';

const FAST = 'realesr-general-x4v3';

/** A selector that believes webgpu works (probe passed, a GPU device present); sessions open on the CPU. */
function believing() {
  return new ProviderSelector({
    log: () => {},
    detect: () => [
      { name: 'webgpu' as const, bundled: true, installed: true },
      { name: 'cpu' as const, bundled: true, installed: true },
    ],
    gpuDevices: () => ['/dev/dri/renderD128'],
    probe: async (names) => new Map(names.map((n) => [n, { ok: true }])),
  });
}

test('a GPU provider opens the fp16 variant, the cpu the fp32 model; the variant is made only when a GPU provider is tried', async () => {
  const store = new ModelStore();
  const fp32 = (await store.ensureOne(FAST)).onnxPath;
  const opened: Array<[ProviderName, string]> = [];
  let made = 0;
  const gpuModelPath = async () => {
    made++;
    return (await store.ensureVariant(FAST, 'fp16')).onnxPath;
  };
  const openSession = async (file: string, provider: ProviderName) => {
    opened.push([provider, file]);
    return openOrtSession(file, 'cpu');
  };
  const gpu = await ortRunner(fp32, { provider: 'auto', selector: believing(), openSession, gpuModelPath });
  expect(gpu.provider).toBe('webgpu');
  expect(opened).toEqual([['webgpu', expect.stringMatching(/realesr-general-x4v3\.fp16\.onnx$/)]]);
  const cpu = await ortRunner(fp32, { provider: 'cpu', selector: believing(), openSession, gpuModelPath });
  expect(cpu.provider).toBe('cpu');
  expect(opened[1]).toEqual(['cpu', fp32]);
  expect(made).toBe(1);
});

test('UPBRIDGE_PRECISION chooses fp16 (default) or fp32 for GPU providers, and names the allowed values', () => {
  expect(gpuPrecision({})).toBe('fp16');
  expect(gpuPrecision({ UPBRIDGE_PRECISION: 'fp32' })).toBe('fp32');
  expect(thrown(() => gpuPrecision({ UPBRIDGE_PRECISION: 'fp8' })).message).toMatch(/UPBRIDGE_PRECISION must be one of fp16, fp32, got "fp8"/);
});
