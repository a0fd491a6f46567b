import * as path from 'node:path';
import { oneOf } from '../validate';
import { InferenceRunner } from '../session';
import { InstallStep, ModelStore } from './model-store';
import { ortRunner } from './ort-session';
import { ProviderChoice } from './providers';
import { autotune, CalibrationTarget } from './tile-calibration';

export const PRECISIONS = ['fp16', 'fp32'] as const;
export type Precision = (typeof PRECISIONS)[number];

/**
 * What GPU providers run: `fp16` (default) halves memory and, on WebGPU, was 1.4x faster for x4plus
 * on an H200 (bench/gpu-check-h200.json); `fp32` for bit-for-bit work. $UPBRIDGE_PRECISION sets it.
 */
export function gpuPrecision(env: NodeJS.ProcessEnv = process.env): Precision {
  return env.UPBRIDGE_PRECISION ? oneOf('UPBRIDGE_PRECISION', env.UPBRIDGE_PRECISION, PRECISIONS) : 'fp16';
}

/**
 * A runner for a catalogue model: installed first if needed, fp32 on the CPU, its fp16 variant
 * (made on first use) on a GPU provider unless the precision says fp32.
 */
export async function modelRunner(store: ModelStore, id: string, options: { provider?: ProviderChoice; onInstallStep?: (id: string, step: InstallStep) => void } = {}): Promise<InferenceRunner> {
  const installed = await store.ensureOne(id, options.onInstallStep);
  // A custom model is the user's file as it is (it may be fp16 already).
  const fp16 = gpuPrecision() === 'fp16' && !installed.entry.customPath;
  const inner = await ortRunner(installed.onnxPath, { provider: options.provider, ...(fp16 ? { gpuModelPath: async () => (await store.ensureVariant(id, 'fp16')).onnxPath } : {}) });
  return {
    get provider() {
      return inner.provider;
    },
    run: (input) => inner.run(input),
    async autotune(request) {
      const tuned = await autotune(await calibrationTarget(store, id, inner.provider), inner, request);
      return { tile: tuned.tile, overlap: tuned.overlap };
    },
  };
}

/** What a model's calibration on a provider measures: the file that provider runs (the fp16 variant on a GPU, unless fp32 is asked for). */
export async function calibrationTarget(store: ModelStore, id: string, provider: string): Promise<CalibrationTarget> {
  const installed = await store.ensureOne(id);
  const fp16 = gpuPrecision() === 'fp16' && !installed.entry.customPath && provider !== 'cpu';
  const file = fp16 ? await store.ensureVariant(id, 'fp16') : { onnxPath: installed.onnxPath, sha256: installed.sha256 };
  return { entry: installed.entry, onnxPath: file.onnxPath, onnxSha256: file.sha256, provider, home: path.dirname(store.modelsDir) };
}
