/**
 * Device check (issue 8): the fp16 variants on a real GPU. For each model, the same image through
 * the real pipeline (upscaleRaster, the model's own tiling) on the CPU in fp32, on WebGPU in fp32
 * and on WebGPU in fp16 (the variant core/convert/fp16.ts makes, converted here on the device);
 * PSNR of each against the CPU (8-bit output, peak 255), and the speed of one 256×256 tile.
 * Bundled by scripts/gpu-check/prepare-fp16.sh into .gpu/fp16-driver.js; prints one JSON line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findModel } from '../../core/catalogue';
import { convertOnnxToFp16 } from '../../core/convert/fp16';
import { psnr } from '../../core/metrics';
import { openOrtSession, OrtSessionLike, runTile } from '../../core/node/ort-session';
import { Raster } from '../../core/raster';
import { InferenceRunner } from '../../core/session';
import { upscaleRaster, validateUpscaleOptions } from '../../core/upscale';

const dir = path.join(__dirname, 'models');
const ids = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).map((f) => f.replace(/\.onnx$/, ''));
const raw = fs.readFileSync(path.join(__dirname, 'input.rgb'));
const [width, height] = fs.readFileSync(path.join(__dirname, 'input.size'), 'utf8').trim().split('x').map(Number);
const input: Raster = { width, height, channels: 3, depth: 8, data: new Uint8Array(raw) };
const noResize = { resize: async () => { throw new Error('no resize on the device'); } };

const runnerOf = (session: OrtSessionLike, provider: string): InferenceRunner => ({ provider, run: (t) => runTile(session, t) });

(async () => {
  const out: Record<string, unknown> = { input: `${width}x${height}` };
  for (const id of ids) {
    const r: Record<string, unknown> = {};
    try {
      const entry = findModel(id);
      const fp32 = path.join(dir, `${id}.onnx`);
      const fp16 = `/tmp/${id}.fp16.onnx`;
      let t = performance.now();
      fs.writeFileSync(fp16, convertOnnxToFp16(new Uint8Array(fs.readFileSync(fp32))).onnx);
      r.convertSeconds = (performance.now() - t) / 1000;
      const options = validateUpscaleOptions({ scale: entry.scale }, entry);
      const results: Record<string, Raster> = {};
      for (const [name, file, provider] of [['cpu-fp32', fp32, 'cpu'], ['webgpu-fp32', fp32, 'webgpu'], ['webgpu-fp16', fp16, 'webgpu']] as const) {
        try {
          const session = await openOrtSession(file, provider);
          t = performance.now();
          results[name] = (await upscaleRaster(input, runnerOf(session, provider), entry.scale, noResize, options)).raster;
          r[`${name}.pipelineSeconds`] = (performance.now() - t) / 1000;
          const tile = { data: new Float32Array(3 * 256 * 256).map((_, i) => 0.1 + (0.8 * ((i * 7919) % 1000)) / 1000), channels: 3, width: 256, height: 256 };
          await runTile(session, tile);
          let best = Infinity;
          for (let k = 0; k < 3; k++) {
            const t0 = performance.now();
            await runTile(session, tile);
            best = Math.min(best, (performance.now() - t0) / 1000);
          }
          r[`${name}.tile256Seconds`] = best;
          r[`${name}.tile256OutputMPs`] = (entry.scale ** 2 * 256 * 256) / 1e6 / best;
          await session.release();
        } catch (e) {
          r[`${name}.error`] = String(e instanceof Error ? e.message : e).slice(0, 300);
        }
      }
      const base = results['cpu-fp32'];
      for (const k of ['webgpu-fp32', 'webgpu-fp16']) if (base && results[k]) r[`${k}.psnrVsCpuFp32`] = psnr(results[k].data, base.data, 255).db;
    } catch (e) {
      r.error = String(e instanceof Error ? e.message : e).slice(0, 300);
    }
    out[id] = r;
    process.stderr.write(`${id}: ${JSON.stringify(r)}\n`);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
})();
