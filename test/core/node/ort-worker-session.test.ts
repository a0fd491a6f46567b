import { ModelStore } from '../../../core/node/model-store';
import { openOrtSession, runTile } from '../../../core/node/ort-session';
import { openWorkerSession } from '../../../core/node/ort-worker-session';
import { InferenceRunner, TileTensor } from '../../../core/session';
import { upscaleRaster } from '../../../core/upscale';
import { sharpResampler } from '../../../core/node/image-io';
import { runnerFor, syntheticRaster } from '../../helpers';

const FAST = 'realesr-general-x4v3';

function tile(side: number): TileTensor {
  const data = new Float32Array(3 * side * side);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 251) / 251;
  return { data, channels: 3, width: side, height: side };
}

/** setImmediate turns the event loop completes while `work` is pending. */
async function turnsDuring<T>(work: Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  const value = await work;
  done = true;
  return { value, turns };
}

describe('ONNX Runtime in a worker thread', () => {
  test('the same output as a session on the main thread, and the event loop keeps turning while a tile infers', async () => {
    const { onnxPath } = await new ModelStore().ensureOne(FAST);
    const main = await openOrtSession(onnxPath, 'cpu');
    const worker = await openWorkerSession(onnxPath, 'cpu');
    try {
      const input = tile(96);
      // Warm both (first runs plan memory).
      await runTile(main, input);
      await runTile(worker, input);
      const onMain = await turnsDuring(runTile(main, input));
      const inWorker = await turnsDuring(runTile(worker, input));
      expect(inWorker.value.data).toEqual(onMain.value.data);
      expect([inWorker.value.width, inWorker.value.height]).toEqual([384, 384]);
      // On the main thread the loop is blocked for the whole tile; with a worker it turns freely.
      expect(onMain.turns).toBeLessThanOrEqual(2);
      expect(inWorker.turns).toBeGreaterThan(50);
      // The caller's input is copied, not taken: it can be run again (a provider fallback does).
      expect(input.data.length).toBe(3 * 96 * 96);
    } finally {
      await main.release();
      await worker.release();
    }
  });

  test('a failing run rejects with the runtime\'s message and the session goes on working', async () => {
    const { onnxPath } = await new ModelStore().ensureOne(FAST);
    const worker = await openWorkerSession(onnxPath, 'cpu');
    try {
      await expect(runTile(worker, { data: new Float32Array(2 * 8 * 8), channels: 2, width: 8, height: 8 })).rejects.toThrow(/channel|dimension|Got invalid dimensions/i);
      const out = await runTile(worker, tile(16));
      expect(out.width).toBe(64);
    } finally {
      await worker.release();
    }
    await expect(runTile(worker, tile(16))).rejects.toThrow(/worker exited/);
  });

  test('the pipeline reads and starts the next window before it blends the last one', async () => {
    const real = await runnerFor(FAST);
    let started = 0;
    const startedAtProgress: number[] = [];
    const runner: InferenceRunner = {
      provider: real.provider,
      run: (t) => {
        started++;
        return real.run(t);
      },
    };
    const input = syntheticRaster(48, 32);
    const result = await upscaleRaster(input, runner, 4, sharpResampler, {
      scale: 4,
      tile: 16,
      overlap: 4,
      alpha: 'model',
      onProgress: (p) => p.done > 0 && startedAtProgress.push(started),
    });
    expect(result.tiles).toBe(6);
    // When tile k is reported done (blended), tile k + 1 is already running; the last has no successor.
    expect(startedAtProgress).toEqual([2, 3, 4, 5, 6, 6]);
  });
});
