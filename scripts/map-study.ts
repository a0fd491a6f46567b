/**
 * The invented-detail map's validation study (issue 7): does the map predict where a 4x result
 * is actually wrong, better than the output's gradient magnitude does?
 *
 * Protocol (evaluate.ts): each Set5 / Set14 photo (CSet14_comic and CSet14_ppt3 are drawings and
 * left out) cropped at the top left to a multiple of 4, downscaled ×4 with sharp's bicubic kernel;
 * the creative mode's result for that input, as core/modes.ts makes it with mode=creative, map=true
 * (G = colourFix(realesrgan-x4plus), the fidelity reference F = project(colourFix(the photo fidelity model)),
 * every model run through TTA 8 when tta=8, the TTA spread of the creative run), compared with the
 * original in 8×8 blocks; positives are the top 10 % of block RMS error.
 *
 *   node scripts/run-ts.mjs scripts/map-study.ts [--images DIR] [--cache DIR] [--json]
 *       [--fidelity ID]            the fidelity reference (default: the catalogue's photo fidelity model)
 *       [--second-fidelity ID]     add a plane: disagreement between two PSNR models (F's own uncertainty)
 *       [--products]               also score S · G^β, G the windowed output gradient (β < 0: per unit texture)
 *   node scripts/run-ts.mjs scripts/map-study.ts --generate realesrgan-x4plus+tta,esrgan-thick-x4+transposed,...
 *
 * Model outputs are cached under --cache (default /tmp/map-study) as PNG (raw model output, before
 * colour fix) and float32 .bin (TTA spread); a missing one is run (all of them: about 20 minutes on
 * 2 CPU cores, most of it realesrgan-x4plus under TTA). Per configuration (no TTA; tta=8; no TTA plus
 * one extra run of G on the transposed input, a 2-view spread) it prints, per image and per set, the
 * shipped map's AUROC and the gradient baseline's; then fits the weights of
 * S² = E_d² + w_t·E_t² + w_l·E_l² + w_f·H_F² on Set14 and reports them on Set5, and the other way
 * round (fitted-on and held-out figures), and the held-out figure over all photos.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { findModel, ModelEntry, modelForMode } from '../core/catalogue';
import { colourFixToInput } from '../core/fidelity/colour-fix';
import { projectToInput } from '../core/fidelity/consistency';
import { applySymmetry, upscaleWithTta } from '../core/fidelity/tta';
import { planUpscale, stageOptions } from '../core/modes';
import { sharpResampler } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { ortRunner } from '../core/node/ort-session';
import { boxMean, tentMean } from '../core/fidelity/filters';
import { FloatImage, luma, toFloat } from '../core/fidelity/image';
import { inventedDetailMap, mapSignals, TAU_LEVELS } from '../core/fidelity/detail-map';
import { auroc, blockMeans, blockRmsError, evaluateMap, Evaluation, gradientMap, topBlocks } from '../core/fidelity/evaluate';
import { Raster } from '../core/raster';
import { InferenceRunner } from '../core/session';
import { upscaleRaster } from '../core/upscale';
import { rgb } from './quality-kit';

export const CREATIVE = 'realesrgan-x4plus';
export const FIDELITY = option('fidelity', modelForMode('photo', 'fidelity').id);
export const DRAWINGS = ['CSet14_comic', 'CSet14_ppt3'];
const TRANSPOSE = { flipX: false, flipY: false, transpose: true };

function option(name: string, fallback: string): string {
  const k = process.argv.indexOf(`--${name}`);
  return k >= 0 && process.argv[k + 1] ? process.argv[k + 1] : fallback;
}

function savePng(r: Raster, file: string): Promise<unknown> {
  return sharp(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength), { raw: { width: r.width, height: r.height, channels: r.channels as 3 } })
    .png()
    .toFile(file);
}

export interface Case {
  name: string;
  set: 'Set5' | 'Set14';
  truth: Raster;
  input: Raster;
}

/** Ground truth cropped to a multiple of 4 and its bicubic ×4 downscale (cached). */
async function prepareCase(imageFile: string, cache: string): Promise<Case> {
  const name = path.basename(imageFile).replace(/\.\w+$/, '');
  const hrFile = path.join(cache, `${name}.hr.png`);
  const lrFile = path.join(cache, `${name}.lr.png`);
  if (!fs.existsSync(hrFile)) {
    const meta = await sharp(imageFile).metadata();
    const width = meta.width! - (meta.width! % 4);
    const height = meta.height! - (meta.height! % 4);
    await sharp(imageFile).removeAlpha().toColourspace('srgb').extract({ left: 0, top: 0, width, height }).png().toFile(hrFile);
  }
  const truth = await rgb(hrFile);
  if (!fs.existsSync(lrFile)) await sharp(hrFile).resize(truth.width / 4, truth.height / 4, { kernel: 'cubic' }).png().toFile(lrFile);
  return { name, set: name.startsWith('CSet5') ? 'Set5' : 'Set14', truth, input: await rgb(lrFile) };
}

/** A model's raw output for a case, single run or TTA 8 (mean and spread), with modes' tiling options; cached. */
export class ModelOutputs {
  private runners = new Map<string, InferenceRunner>();
  private plan = planUpscale({ mode: 'creative', map: true, scale: 4 });
  constructor(private cache: string) {}

  private async runner(model: ModelEntry): Promise<InferenceRunner> {
    if (!this.runners.has(model.id)) this.runners.set(model.id, await ortRunner((await new ModelStore().ensureOne(model.id)).onnxPath));
    return this.runners.get(model.id)!;
  }

  /** A model's raw output on the transposed input, turned back: a second view for a single-run spread. */
  async transposed(c: Case, id: string): Promise<Raster> {
    const file = path.join(this.cache, `${c.name}.${id}+transposed.png`);
    if (!fs.existsSync(file)) {
      const model = findModel(id);
      const started = Date.now();
      const out = await upscaleRaster(applySymmetry(c.input, TRANSPOSE), await this.runner(model), model.scale, sharpResampler, stageOptions(this.plan, model));
      await savePng(applySymmetry(out.raster, TRANSPOSE), file);
      process.stderr.write(`${c.name} ${id} transposed: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
    return rgb(file);
  }

  /** A model's raw output on the input plus seeded Gaussian noise of `sigma` levels: a perturbed view. */
  async noisy(c: Case, id: string, sigma = 2): Promise<Raster> {
    const file = path.join(this.cache, `${c.name}.${id}+noise${sigma}.png`);
    if (!fs.existsSync(file)) {
      const model = findModel(id);
      const started = Date.now();
      let seed = 12345;
      const uniform = () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
      const input = { ...c.input, data: c.input.data.map((v) => Math.min(255, Math.max(0, Math.round(v + sigma * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()))))) };
      const out = await upscaleRaster(input, await this.runner(model), model.scale, sharpResampler, stageOptions(this.plan, model));
      await savePng(out.raster, file);
      process.stderr.write(`${c.name} ${id} noise ${sigma}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
    return rgb(file);
  }

  /** A model's raw output for any input (e.g. the input downscaled once more), cached as `key.id.png`. */
  async onInput(key: string, input: Raster, id: string): Promise<Raster> {
    const file = path.join(this.cache, `${key}.${id}.png`);
    if (!fs.existsSync(file)) {
      const model = findModel(id);
      const out = await upscaleRaster(input, await this.runner(model), model.scale, sharpResampler, stageOptions(this.plan, model));
      await savePng(out.raster, file);
    }
    return rgb(file);
  }

  async get(c: Case, id: string, tta: boolean): Promise<{ raster: Raster; spread?: Float32Array }> {
    const stem = path.join(this.cache, `${c.name}.${id}${tta ? '+tta' : ''}`);
    if (!fs.existsSync(`${stem}.png`) || (tta && !fs.existsSync(`${stem}.spread.bin`))) {
      const model = findModel(id);
      const options = stageOptions(this.plan, model);
      const started = Date.now();
      if (tta) {
        const out = await upscaleWithTta(c.input, await this.runner(model), model.scale, sharpResampler, options, 8);
        fs.writeFileSync(`${stem}.spread.bin`, Buffer.from(out.spread.buffer, out.spread.byteOffset, out.spread.byteLength));
        await savePng(out.raster, `${stem}.png`);
      } else {
        const out = await upscaleRaster(c.input, await this.runner(model), model.scale, sharpResampler, options);
        await savePng(out.raster, `${stem}.png`);
      }
      process.stderr.write(`${c.name} ${id}${tta ? ' tta 8' : ''}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
    const raster = await rgb(`${stem}.png`);
    if (!tta) return { raster };
    const bytes = fs.readFileSync(`${stem}.spread.bin`);
    return { raster, spread: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
  }
}

/** The creative mode's ends as modes.ts makes them: G colour-fixed, F colour-fixed and projected. */
export async function modeEnds(c: Case, outputs: ModelOutputs, tta: boolean) {
  const g = await outputs.get(c, CREATIVE, tta);
  const f = await outputs.get(c, FIDELITY, tta);
  const creative = await colourFixToInput(g.raster, c.input, sharpResampler);
  const fidelity = projectToInput(await colourFixToInput(f.raster, c.input, sharpResampler), c.input);
  return { creative, fidelity, spread: g.spread };
}

export async function loadCases(images: string, cache: string): Promise<Case[]> {
  fs.mkdirSync(cache, { recursive: true });
  const files = fs.readdirSync(images).filter((f) => /\.png$/.test(f) && !DRAWINGS.some((d) => f.startsWith(d))).sort();
  const cases: Case[] = [];
  for (const f of files) cases.push(await prepareCase(path.join(images, f), cache));
  return cases;
}

/** Per image: the windowed squared signals (levels², tent half-width 2r as mapSignals uses), labels and the baseline. */
interface Prepared {
  name: string;
  set: Case['set'];
  width: number;
  height: number;
  planes: Record<string, Float32Array>;
  labels: boolean[];
  baseline: number;
  /** The shipped map (inventedDetailMap) evaluated as it is. */
  shipped: Evaluation;
}

const meanSquared = (a: FloatImage, b: FloatImage) => {
  const out = new Float32Array(a.width * a.height);
  a.planes.forEach((p, c) => {
    for (let i = 0; i < out.length; i++) out[i] += ((255 * 255) / a.planes.length) * (p[i] - b.planes[c][i]) ** 2;
  });
  return out;
};

async function prepare(c: Case, outputs: ModelOutputs, config: Config): Promise<Prepared> {
  const tta = config === 'tta';
  const { creative, fidelity, spread } = await modeEnds(c, outputs, tta);
  const shipped = evaluateMap(inventedDetailMap({ input: c.input, creative, fidelity, spread }), creative, c.truth);
  const s = mapSignals({ input: c.input, creative, fidelity, spread });
  const { width, height } = s;
  const radius = Math.max(1, Math.ceil(width / c.input.width / 2));
  const window = (p: Float32Array) => tentMean(p, width, height, radius);
  const fidelityLuma = luma(toFloat(fidelity));
  const local = boxMean(fidelityLuma, width, height, 2);
  const planes: Record<string, Float32Array> = {
    D: s.disagreement,
    L: s.inconsistency,
    // F's own local high-frequency energy: where the fidelity reference itself is likely wrong.
    hfF: window(fidelityLuma.map((v, i) => (255 * (v - local[i])) ** 2)),
  };
  const second = option('second-fidelity', '');
  if (second) {
    // A second PSNR-oriented model: where two regressors disagree, the truth is uncertain (F's own error).
    const other = projectToInput(await colourFixToInput((await outputs.get(c, second, tta)).raster, c.input, sharpResampler), c.input);
    planes.FF = window(meanSquared(toFloat(fidelity), toFloat(other)));
  }
  // The output's own gradient (the baseline's signal), windowed like the others, for products.
  planes.G = window(gradientMap(creative).data.map((v) => (255 * v) ** 2));
  if (tta) planes.T = s.spread.map((v) => v / 4);
  else if (config === 'single+view') {
    // A second view of the creative model (the transposed input, turned back): a 2-run spread.
    const second = await colourFixToInput(await outputs.transposed(c, CREATIVE), c.input, sharpResampler);
    planes.T = window(meanSquared(toFloat(creative), toFloat(second)).map((v) => v / 4));
  }
  const labels = topBlocks(blockRmsError(creative, c.truth, 8), 0.1);
  return { name: c.name, set: c.set, width, height, planes, labels, baseline: shipped.baselineAuroc, shipped };
}

type Weights = Record<string, number>;

/** AUROC of 1 − exp(−√(Σ w·plane) / τ), block means, as evaluateMap scores a map. */
function weightedAuroc(p: Prepared, w: Weights): number {
  const keys = Object.keys(w).filter((k) => w[k] > 0 && p.planes[k]);
  const data = new Float32Array(p.width * p.height);
  for (let i = 0; i < data.length; i++) {
    let sum = 0;
    for (const k of keys) sum += w[k] * p.planes[k][i];
    data[i] = 1 - Math.exp(-Math.sqrt(sum) / TAU_LEVELS);
  }
  return auroc(blockMeans(data, p.width, p.height, 8), p.labels);
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** Coordinate search on the weights (D fixed at 1) for the best mean AUROC on `fitOn`. */
function fitWeights(fitOn: Prepared[], start: Weights): Weights {
  let w = { ...start };
  let best = mean(fitOn.map((p) => weightedAuroc(p, w)));
  for (const step of [4, 2, 1.41]) {
    for (let round = 0; round < 3; round++) {
      let improved = false;
      for (const k of Object.keys(w).filter((key) => key !== 'D')) {
        for (const candidate of w[k] ? [w[k] * step, w[k] / step, 0] : [0.03, 0.3, 3]) {
          const trial = { ...w, [k]: candidate };
          const a = mean(fitOn.map((p) => weightedAuroc(p, trial)));
          if (a > best + 1e-4) {
            best = a;
            w = trial;
            improved = true;
          }
        }
      }
      if (!improved) break;
    }
  }
  return w;
}

type Config = 'single' | 'tta' | 'single+view';
const FF0: Weights = option('second-fidelity', '') ? { FF: 0 } : {};
const SHIPPED: Record<Config, Weights> = { single: { D: 1, L: 1, hfF: 0, ...FF0 }, tta: { D: 1, T: 4, L: 1, hfF: 0, ...FF0 }, 'single+view': { D: 1, T: 4, L: 1, hfF: 0, ...FF0 } };

async function main() {
  const images = option('images', path.resolve('..', 'shared', 'images', 'hr'));
  const cache = option('cache', '/tmp/map-study');
  const json = process.argv.includes('--json');
  const cases = await loadCases(images, cache);
  const outputs = new ModelOutputs(cache);
  const extra = option('generate', '');
  if (extra) {
    for (const c of cases) {
      for (const spec of extra.split(',')) {
        if (spec.endsWith('+noise')) await outputs.noisy(c, spec.replace('+noise', ''));
        else if (spec.endsWith('+transposed')) await outputs.transposed(c, spec.replace('+transposed', ''));
        else await outputs.get(c, spec.replace('+tta', ''), spec.endsWith('+tta'));
      }
    }
    return;
  }
  const f3 = (v: number) => v.toFixed(3);
  const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`;
  const report: Record<string, unknown> = {};
  for (const config of ['single', 'tta', 'single+view'] as Config[]) {
    const prepared: Prepared[] = [];
    for (const c of cases) prepared.push(await prepare(c, outputs, config));
    const bySet = (set: Case['set']) => prepared.filter((p) => p.set === set);
    const summary = (ps: Prepared[], score: (p: Prepared) => number) => {
      const map = mean(ps.map(score));
      const baseline = mean(ps.map((p) => p.baseline));
      return { map: +f3(map), baseline: +f3(baseline), margin: +f3(map - baseline) };
    };
    const shippedScore = (p: Prepared) => (config === 'single+view' ? weightedAuroc(p, SHIPPED[config]) : p.shipped.auroc);
    const folds = (['Set14', 'Set5'] as const).map((fitSet) => {
      const heldSet = fitSet === 'Set14' ? 'Set5' : 'Set14';
      const w = fitWeights(bySet(fitSet), SHIPPED[config]);
      return { fitOn: fitSet, weights: w, fitted: summary(bySet(fitSet), (p) => weightedAuroc(p, w)), heldOut: { set: heldSet, ...summary(bySet(heldSet), (p) => weightedAuroc(p, w)) } };
    });
    if (process.argv.includes('--products')) {
      // score = S · G^β (S the shipped sum, G the windowed output gradient): does invention per unit of texture rank better?
      for (const beta of [0, 0.25, 0.5, 1, -0.1, -0.25, -0.5]) {
        const score = (p: Prepared) => {
          const w = SHIPPED[config];
          const data = new Float32Array(p.width * p.height);
          for (let i = 0; i < data.length; i++) {
            let sum = 0;
            for (const k of Object.keys(w)) if (w[k] > 0 && p.planes[k]) sum += w[k] * p.planes[k][i];
            data[i] = Math.sqrt(sum) * Math.pow(p.planes.G[i] + 1, beta / 2);
          }
          return auroc(blockMeans(data, p.width, p.height, 8), p.labels);
        };
        for (const set of ['Set5', 'Set14'] as const) {
          const ps = bySet(set);
          process.stdout.write(`products ${config} beta ${beta} ${set}: ${f3(mean(ps.map(score)))} vs ${f3(mean(ps.map((p) => p.baseline)))}\n`);
        }
      }
    }
    const heldOutAll = mean(prepared.map((p) => weightedAuroc(p, folds.find((f) => f.heldOut.set === p.set)!.weights)));
    const entry = {
      perImage: prepared.map((p) => ({ name: p.name, map: +f3(shippedScore(p)), baseline: +f3(p.baseline), positives: p.labels.filter(Boolean).length, blocks: p.labels.length })),
      shipped: { all: summary(prepared, shippedScore), Set5: summary(bySet('Set5'), shippedScore), Set14: summary(bySet('Set14'), shippedScore) },
      folds,
      heldOutAll: { map: +f3(heldOutAll), baseline: +f3(mean(prepared.map((p) => p.baseline))), margin: +f3(heldOutAll - mean(prepared.map((p) => p.baseline))) },
    };
    report[config] = entry;
    if (!json) {
      process.stdout.write(`\n## ${config}: map vs gradient baseline (AUROC)\n`);
      for (const r of entry.perImage) process.stdout.write(`${r.name.padEnd(18)} ${f3(r.map)}  ${f3(r.baseline)}  ${signed(r.map - r.baseline)}\n`);
      for (const [k, v] of Object.entries(entry.shipped)) process.stdout.write(`shipped map, ${k.padEnd(5)}: ${f3(v.map)} vs ${f3(v.baseline)} (${signed(v.margin)})\n`);
      for (const f of folds) {
        process.stdout.write(`fit on ${f.fitOn}: ${JSON.stringify(f.weights)}; fitted-on ${f3(f.fitted.map)} vs ${f3(f.fitted.baseline)} (${signed(f.fitted.margin)}); held-out ${f.heldOut.set} ${f3(f.heldOut.map)} vs ${f3(f.heldOut.baseline)} (${signed(f.heldOut.margin)})\n`);
      }
      process.stdout.write(`held-out, all ${prepared.length}: ${f3(entry.heldOutAll.map)} vs ${f3(entry.heldOutAll.baseline)} (${signed(entry.heldOutAll.margin)})\n`);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
}

// Run as the entry point (run-ts bundles it to map-study.cjs), not when another script imports the helpers.
if (/map-study\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
    process.exit(1);
  });
}
