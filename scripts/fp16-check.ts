/**
 * fp16 variants against their float32 models (issue 8), on the CPU: for each model id, makes the
 * variant through the store, runs both through the real pipeline on a crop of the test photo and
 * prints PSNR (8-bit output, peak 255), file sizes, and what ONNX Runtime's CPU provider did
 * with the float16 graph: it saves the graph it optimised (session option
 * optimizedModelFilePath), and the script counts the Cast nodes ORT added and the nodes left
 * computing on float16 tensors.
 *
 *   node scripts/run-ts.mjs scripts/fp16-check.ts [--crop 40x32] [ID...]
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { findModel } from '../core/catalogue';
import { psnr } from '../core/metrics';
import { sharpResampler } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { Raster } from '../core/raster';
import { InferenceRunner, TileTensor } from '../core/session';
import { upscaleRaster, windowConventions } from '../core/upscale';

const DEFAULT_IDS = ['realesr-general-x4v3', 'realesrgan-x4plus', 'realcugan-4x-conservative', 'waifu2x-cunet-2x', 'esrgan-slim-x4'];
// Bundled by run-ts.mjs into .cache/, so paths are taken from the checkout root, where it runs.
const PHOTO = path.resolve('test', 'fixtures', 'photo-161x121.png');

async function cpuRunner(onnxPath: string, optimizedPath: string): Promise<InferenceRunner & { session: ort.InferenceSession }> {
  const session = await ort.InferenceSession.create(onnxPath, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: os.availableParallelism(),
    optimizedModelFilePath: optimizedPath,
  });
  return {
    provider: 'cpu',
    session,
    async run(input: TileTensor): Promise<TileTensor> {
      const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input.data, [1, input.channels, input.height, input.width]) });
      const output = result[session.outputNames[0]];
      const [, channels, height, width] = output.dims as number[];
      return { data: output.data as Float32Array, channels, height, width };
    },
  };
}

/** Casts, and nodes whose first output is float16, in a saved ORT graph (types from value_info and initializers). */
async function placement(optimizedPath: string) {
  const model = onnx.ModelProto.decode(await fs.readFile(optimizedPath));
  const g = model.graph!;
  const types = new Map<string, number>();
  for (const v of [...g.input!, ...g.output!, ...g.valueInfo!]) types.set(v.name!, v.type?.tensorType?.elemType ?? 0);
  for (const t of g.initializer!) types.set(t.name!, t.dataType!);
  const ops = new Map<string, { fp16: number; fp32: number }>();
  for (const n of g.node!) {
    const key = n.domain ? `${n.domain}.${n.opType}` : n.opType!;
    const entry = ops.get(key) ?? { fp16: 0, fp32: 0 };
    const t = types.get(n.input![0]);
    if (t === onnx.TensorProto.DataType.FLOAT16) entry.fp16++;
    else entry.fp32++;
    ops.set(key, entry);
  }
  return Object.fromEntries([...ops].sort());
}

async function main() {
  const args = process.argv.slice(2);
  const cropAt = args.indexOf('--crop');
  const [cw, ch] = (cropAt >= 0 ? args.splice(cropAt, 2)[1] : '40x32').split('x').map(Number);
  const ids = args.length > 0 ? args : DEFAULT_IDS;
  const store = new ModelStore();
  const work = path.resolve('.cache', 'fp16-check');
  await fs.mkdir(work, { recursive: true });
  const { data, info } = await sharp(PHOTO).extract({ left: 60, top: 40, width: cw, height: ch }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const input: Raster = { width: info.width, height: info.height, channels: 3, depth: 8, data: new Uint8Array(data) };
  for (const id of ids) {
    const model = findModel(id);
    const base = await store.ensureOne(id);
    const t0 = performance.now();
    const variant = await store.ensureVariant(id, 'fp16');
    const makeS = (performance.now() - t0) / 1000;
    const outputs: Raster[] = [];
    const times: number[] = [];
    for (const [name, file] of [['fp32', base.onnxPath], ['fp16', variant.onnxPath]] as const) {
      const runner = await cpuRunner(file, path.join(work, `${id}.${name}.ort.onnx`));
      const t = performance.now();
      const { raster } = await upscaleRaster(input, runner, model.scale, sharpResampler, { scale: model.scale, tile: model.tile, overlap: model.overlap, alpha: 'model', ...windowConventions(model) });
      times.push((performance.now() - t) / 1000);
      outputs.push(raster);
      await runner.session.release();
    }
    const [a, b] = outputs;
    let maxDiff = 0;
    for (let i = 0; i < a.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.data[i] - b.data[i]));
    const sizes = [(await fs.stat(base.onnxPath)).size, (await fs.stat(variant.onnxPath)).size];
    const sidecar = JSON.parse(await fs.readFile(store.variantPaths(id, 'fp16').sidecar, 'utf8'));
    console.log(
      JSON.stringify({
        id,
        psnr_db: Number(psnr(a.data, b.data, 255).db.toFixed(2)),
        max_diff_levels: maxDiff,
        bytes: sizes,
        size_ratio: Number((sizes[1] / sizes[0]).toFixed(4)),
        make_s: Number(makeS.toFixed(2)),
        run_s: times.map((s) => Number(s.toFixed(2))),
        stats: sidecar.stats,
        ort_cpu_fp16_graph: await placement(path.join(work, `${id}.fp16.ort.onnx`)),
      }),
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
