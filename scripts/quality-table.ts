/**
 * The catalogue's quality table: every model on bicubic-downscaled ground-truth images (Set5 and
 * Set14 in ../shared/images/hr by default), PSNR and SSIM on the luma channel with `scale` pixels
 * shaved (the usual super-resolution protocol), next to plain bicubic and Lanczos enlargement.
 * 4x for every model (passes + Lanczos where the native scale differs), 2x for 2x-native models.
 * Photos and illustrations (CSet14_comic, CSet14_ppt3) are averaged apart.
 *
 *   npm run quality:catalogue -- [--images DIR] [--only-images CSet5,CSet14_comic] [--models id,id] [--out bench/quality.json]
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { catalogue, ModelEntry } from '../core/catalogue';
import { sharpResampler } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { ortRunner, releaseOrtRunners } from '../core/node/ort-session';
import { Raster } from '../core/raster';
import { upscaleRaster, windowConventions } from '../core/upscale';
import { arg, groundTruthCase, resize, rgb, score } from './quality-kit';

const ILLUSTRATIONS = new Set(['CSet14_comic', 'CSet14_ppt3']);

interface Row {
  method: string;
  scale: number;
  set: 'photo' | 'illustration';
  psnr: number;
  ssim: number;
  images: number;
  seconds: number;
}

async function main(): Promise<void> {
  const dir = path.resolve(arg('images', path.join('..', 'shared', 'images', 'hr')));
  const out = arg('out', path.join('bench', 'quality.json'));
  const only = arg('models', '').split(',').filter(Boolean);
  const pick = arg('only-images', '').split(',').filter(Boolean);
  const files = (await fs.readdir(dir)).filter((f) => /\.(png|jpe?g)$/i.test(f) && (pick.length === 0 || pick.some((p) => f.startsWith(p)))).sort();
  if (files.length === 0) throw new Error(`no images in ${dir}`);
  // By default every enlarging model but the 8x ones (at 4x they would run 8x and shrink: slow,
  // and not what they are for).
  const models = catalogue.models.filter((m) => (only.length ? only.includes(m.id) : m.scale >= 2 && m.scale <= 4));
  const store = new ModelStore();
  await store.ensure(models.map((m) => m.id));

  const sums = new Map<string, { psnr: number; ssim: number; n: number; seconds: number; scale: number; set: 'photo' | 'illustration'; method: string }>();
  const add = (method: string, scale: number, set: 'photo' | 'illustration', s: { psnr: number; ssim: number }, seconds: number) => {
    const key = `${method}|${scale}|${set}`;
    const acc = sums.get(key) ?? { psnr: 0, ssim: 0, n: 0, seconds: 0, scale, set, method };
    acc.psnr += s.psnr;
    acc.ssim += s.ssim;
    acc.n++;
    acc.seconds += seconds;
    sums.set(key, acc);
  };

  // Every image's ground truth and bicubic input first (small), then one model at a time over
  // all of them, its session released afterwards: 41 cached sessions would hold many GB.
  const cases: Array<{ name: string; set: 'photo' | 'illustration'; scale: number; truth: Raster; lr: Raster }> = [];
  for (const file of files) {
    const name = path.basename(file, path.extname(file));
    const set = ILLUSTRATIONS.has(name) ? 'illustration' : 'photo';
    const hr = await rgb(path.join(dir, file));
    for (const scale of [4, 2]) {
      const { truth, lr } = await groundTruthCase(hr, scale);
      const { width, height } = truth;
      cases.push({ name, set, scale, truth, lr });
      add('bicubic', scale, set, score(await resize(lr, width, height, 'cubic'), truth, scale), 0);
      add('lanczos', scale, set, score(await resize(lr, width, height, 'lanczos3'), truth, scale), 0);
    }
  }
  for (const model of models as ModelEntry[]) {
    const onnxPath = (await store.installed(model.id))!.onnxPath;
    const runner = await ortRunner(onnxPath);
    for (const c of cases) {
      if (c.scale === 2 && model.scale !== 2) continue;
      const started = Date.now();
      const { raster } = await upscaleRaster(c.lr, runner, model.scale, sharpResampler, { scale: c.scale, tile: model.tile, overlap: model.overlap, alpha: 'model', ...windowConventions(model) });
      add(model.id, c.scale, c.set, score(raster, c.truth, c.scale), (Date.now() - started) / 1000);
    }
    await releaseOrtRunners(onnxPath);
    process.stderr.write(`${model.id} done\n`);
  }

  const rows: Row[] = [...sums.values()].map((a) => ({ method: a.method, scale: a.scale, set: a.set, psnr: +(a.psnr / a.n).toFixed(2), ssim: +(a.ssim / a.n).toFixed(4), images: a.n, seconds: +(a.seconds / a.n).toFixed(2) }));
  // Fidelity is the highest 4x PSNR on the content's images among every model (what the mode
  // promises, whatever a model was made for); balanced and creative keep to models of their mode
  // made for that content (the fast general model, the GAN).
  const best = (set: 'photo' | 'illustration', mode: string, content: string) =>
    rows
      .filter((r) => r.scale === 4 && r.set === set && catalogue.models.some((m) => m.id === r.method && (mode === 'fidelity' || (m.mode === mode && m.content === content))))
      .sort((a, b) => b.psnr - a.psnr)[0]?.method;
  const modeDefaults = {
    photo: { fidelity: best('photo', 'fidelity', 'photo'), balanced: best('photo', 'balanced', 'photo'), creative: best('photo', 'creative', 'photo') },
    illustration: { fidelity: best('illustration', 'fidelity', 'illustration'), balanced: best('illustration', 'balanced', 'illustration'), creative: best('illustration', 'creative', 'illustration') },
  };
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.writeFile(out, JSON.stringify({ protocol: 'bicubic (Catmull-Rom, sharp "cubic") downscale of HR crops to a multiple of the scale; PSNR/SSIM on BT.601 luma, scale px shaved; mean over images', images: files, rows, modeDefaults }, null, 2) + '\n');

  const lines = ['| model | photo 4x PSNR / SSIM | illustration 4x PSNR / SSIM | photo 2x PSNR / SSIM | s per image (4x) |', '|---|---|---|---|---|'];
  const cell = (method: string, scale: number, set: string) => {
    const r = rows.find((x) => x.method === method && x.scale === scale && x.set === set);
    return r ? `${r.psnr.toFixed(2)} / ${r.ssim.toFixed(4)}` : '';
  };
  for (const method of ['bicubic', 'lanczos', ...models.map((m) => m.id)]) {
    const sec = rows.find((x) => x.method === method && x.scale === 4 && x.set === 'photo')?.seconds;
    lines.push(`| ${method} | ${cell(method, 4, 'photo')} | ${cell(method, 4, 'illustration')} | ${cell(method, 2, 'photo')} | ${sec ? sec.toFixed(2) : ''} |`);
  }
  process.stdout.write(lines.join('\n') + '\n\nmode defaults (highest 4x PSNR per mode and content): ' + JSON.stringify(modeDefaults) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
