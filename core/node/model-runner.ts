import { oneOf } from '../validate';
import { InferenceRunner } from '../session';
import { InstallStep, ModelStore } from './model-store';
import { ortRunner } from './ort-session';
import { ProviderChoice } from './providers';

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
  return ortRunner(installed.onnxPath, { provider: options.provider, ...(fp16 ? { gpuModelPath: async () => (await store.ensureVariant(id, 'fp16')).onnxPath } : {}) });
}
