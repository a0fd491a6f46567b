/**
 * The modes benchmark (issue 7): what fidelity, balanced and creative give, measured.
 *
 * Ground truth (`../shared/images/hr`, Set5 + Set14): each image cropped to a multiple of 4,
 * downscaled ×4 with bicubic (sharp's Catmull-Rom `cubic`), upscaled ×4 by each method, and scored
 * against the original: PSNR / SSIM on BT.601 luma with 4 px shaved (the table of
 * quality-table.ts), LR-PSNR (D(result) vs the bicubic input, D = the area average of
 * core/fidelity/degradation.ts), sharpness (mean Sobel gradient of the result's luma ÷ the
 * truth's: 1 = as sharp as the original), and the invented-detail map's AUROC at predicting the
 * blocks whose error is in the top 10 %, next to the baseline map "gradient magnitude of the
 * output" (core/fidelity/evaluate.ts). Photos and illustrations (Set14 comic, ppt3) apart.
 * Real degraded inputs (`../shared/images/lr`, no truth): LR-PSNR, map mean and share over 0.5,
 * seconds; each is centre-cropped to at most LR_CROP px a side to bound the run on 2 vCPUs.
 *
 * Every method runs through runUpscalePlan exactly as `upbridge upscale --mode … --map` does;
 * seconds include the map (for creative that means the fidelity model runs as well).
 *
 *   npm run quality -- [--json] [--only-images CSet5,CSet14_comic] [--no-tta] [--no-lr]
 *                      [--out bench/quality-modes.json] [--sheet bench/contact-sheet.png] [--no-readme]
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { ModelEntry } from '../core/catalogue';
import { lrPsnr } from '../core/fidelity/degradation';
import { DetailMap, MapSummary, mapToRaster } from '../core/fidelity/detail-map';
import { evaluateMap, gradientMap } from '../core/fidelity/evaluate';
import { modelsNeeded, planUpscale, runUpscalePlan, UpscaleRequestFields } from '../core/modes';
import { sharpResampler } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { ortRunner, releaseOrtRunners } from '../core/node/ort-session';
import { Raster } from '../core/raster';
import { arg, crop, flag, groundTruthCase, resize, rgb, score, toSharp } from './quality-kit';

const ILLUSTRATIONS = new Set(['CSet14_comic', 'CSet14_ppt3']);
const SCALE = 4;
const LR_CROP = 160;

type SetName = 'photo' | 'illustration' | 'real';

interface Method {
  name: string;
  request?: UpscaleRequestFields;
  /** Runs on the real degraded inputs too (TTA is left to the ground-truth set: 8× the time). */
  onReal: boolean;
}

const METHODS = (tta: boolean): Method[] => [
  { name: 'lanczos', onReal: false },
  { name: 'fidelity', request: { mode: 'fidelity' }, onReal: true },
  { name: 'balanced', request: { mode: 'balanced' }, onReal: true },
  { name: 'creativity 0.5', request: { mode: 'balanced', creativity: 0.5 }, onReal: false },
  { name: 'creative', request: { mode: 'creative' }, onReal: true },
  ...(tta ? [{ name: 'creative, tta 8', request: { mode: 'creative', tta: 8 }, onReal: false }] : []),
];

interface Measurement {
  image: string;
  set: SetName;
  method: string;
  psnr?: number;
  ssim?: number;
  lrPsnr: number;
  sharpness?: number;
  auroc?: number;
  baselineAuroc?: number;
  mapMean?: number;
  shareOver?: number;
  seconds: number;
}

function meanGradient(r: Raster): number {
  const g = gradientMap(r).data;
  let s = 0;
  for (const v of g) s += v;
  return s / g.length;
}

const round = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? v : Number(v.toFixed(digits)));

/** The crop of `side` output pixels (on a multiple of the scale) where the map is highest on average. */
function hottestWindow(map: DetailMap, side: number): { left: number; top: number } {
  let best = { left: 0, top: 0, value: -1 };
  for (let top = 0; top + side <= map.height; top += SCALE * 4) {
    for (let left = 0; left + side <= map.width; left += SCALE * 4) {
      let s = 0;
      for (let y = top; y < top + side; y += 2) for (let x = left; x < left + side; x += 2) s += map.data[y * map.width + x];
      if (s > best.value) best = { left, top, value: s };
    }
  }
  return best;
}

interface SheetRow {
  label: string;
  tiles: Raster[];
}

const SHEET_COLUMNS = ['input (nearest)', 'Lanczos', 'fidelity', 'creative', 'map of creative'];
const TILE = 160;
const GAP = 6;
const HEADER = 22;

async function contactSheet(rows: SheetRow[], file: string): Promise<void> {
  const width = SHEET_COLUMNS.length * (TILE + GAP) + GAP;
  const height = HEADER + rows.length * (TILE + HEADER) + GAP;
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const text = [
    ...SHEET_COLUMNS.map((c, i) => `<text x="${GAP + i * (TILE + GAP)}" y="15">${escape(c)}</text>`),
    ...rows.map((r, j) => `<text x="${GAP}" y="${HEADER + j * (TILE + HEADER) + 15}">${escape(r.label)}</text>`),
  ].join('');
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><style>text{font:13px sans-serif;fill:#ddd}</style>${text}</svg>`);
  const composites: sharp.OverlayOptions[] = [{ input: svg, left: 0, top: 0 }];
  for (const [j, row] of rows.entries()) {
    for (const [i, tile] of row.tiles.entries()) {
      composites.push({ input: await toSharp(tile).png().toBuffer(), left: GAP + i * (TILE + GAP), top: HEADER + j * (TILE + HEADER) + HEADER });
    }
  }
  const png = await sharp({ create: { width, height, channels: 3, background: '#202020' } }).composite(composites).png().toBuffer();
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(`${file}.tmp`, png);
  await fs.rename(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  const hrDir = path.resolve(arg('images', path.join('..', 'shared', 'images', 'hr')));
  const lrDir = path.resolve(arg('lr', path.join('..', 'shared', 'images', 'lr')));
  const out = arg('out', path.join('bench', 'quality-modes.json'));
  const sheetFile = arg('sheet', path.join('bench', 'contact-sheet.png'));
  const pick = arg('only-images', '').split(',').filter(Boolean);
  const methods = METHODS(!flag('no-tta'));
  const chosen = (f: string) => /\.(png|jpe?g)$/i.test(f) && (pick.length === 0 || pick.some((p) => f.startsWith(p)));
  const list = async (dir: string) => (await fs.readdir(dir).catch(() => [] as string[])).filter(chosen).sort();
  const hrFiles = await list(hrDir);
  const lrFiles = flag('no-lr') ? [] : await list(lrDir);
  if (hrFiles.length + lrFiles.length === 0) throw new Error(`no images in ${hrDir} or ${lrDir}`);

  const store = new ModelStore();
  const runners = new Map<string, string>();
  const runtime = {
    runnerFor: async (m: ModelEntry) => {
      const onnx = (await store.ensureOne(m.id)).onnxPath;
      runners.set(m.id, onnx);
      return ortRunner(onnx);
    },
    resampler: sharpResampler,
  };
  // Install everything first so no download lands in a timing.
  const all = new Set<string>();
  for (const m of methods) if (m.request) for (const c of ['photo', 'illustration'] as const) for (const e of modelsNeeded(planUpscale({ ...m.request, content: c, map: true }), c)) all.add(e.id);
  await store.ensure([...all]);

  const measurements: Measurement[] = [];
  const sheet: SheetRow[] = [];
  const sheetImages = new Set(['CSet5_butterfly', 'CSet14_baboon', 'CSet14_comic', 'ADE_val_00000114', 'OST_009']);

  const cases: Array<{ name: string; set: SetName; input: Raster; truth?: Raster }> = [];
  for (const file of hrFiles) {
    const name = path.basename(file, path.extname(file));
    const { truth, lr } = await groundTruthCase(await rgb(path.join(hrDir, file)), SCALE);
    cases.push({ name, set: ILLUSTRATIONS.has(name) ? 'illustration' : 'photo', input: lr, truth });
  }
  for (const file of lrFiles) {
    const name = path.basename(file, path.extname(file));
    const full = await rgb(path.join(lrDir, file));
    const w = Math.min(LR_CROP, full.width);
    const h = Math.min(LR_CROP, full.height);
    cases.push({ name, set: 'real', input: await crop(full, (full.width - w) >> 1, (full.height - h) >> 1, w, h) });
  }

  for (const c of cases) {
    const results = new Map<string, { raster: Raster; map?: DetailMap }>();
    for (const m of methods) {
      if (c.set === 'real' && !m.onReal) continue;
      const started = performance.now();
      let raster: Raster;
      let map: DetailMap | undefined;
      let mapSummary: MapSummary | undefined;
      if (!m.request) {
        raster = await resize(c.input, c.input.width * SCALE, c.input.height * SCALE, 'lanczos3');
      } else {
        // Ground truth: the content is known; real inputs: detected, as a user gets it.
        const plan = planUpscale({ ...m.request, scale: SCALE, map: true, content: c.set === 'real' ? 'auto' : c.set });
        const result = await runUpscalePlan(c.input, plan, runtime);
        raster = result.raster;
        map = result.map;
        mapSummary = result.report.map;
      }
      const seconds = (performance.now() - started) / 1000;
      results.set(m.name, { raster, map });
      const row: Measurement = { image: c.name, set: c.set, method: m.name, lrPsnr: lrPsnr(raster, c.input), seconds };
      if (c.truth) {
        Object.assign(row, score(raster, c.truth, SCALE), { sharpness: meanGradient(raster) / meanGradient(c.truth) });
        if (map) {
          const e = evaluateMap(map, raster, c.truth);
          Object.assign(row, { auroc: e.auroc, baselineAuroc: e.baselineAuroc });
        }
      }
      if (mapSummary) Object.assign(row, { mapMean: mapSummary.mean, shareOver: mapSummary.shareOver });
      measurements.push(row);
    }
    process.stderr.write(`${c.name} done\n`);
    if (sheetImages.has(c.name)) {
      const creative = results.get('creative')!;
      const side = Math.min(TILE, creative.raster.width, creative.raster.height);
      const at = hottestWindow(creative.map!, side);
      const cut = (r: Raster) => crop(r, at.left, at.top, side, side);
      const nearest = await resize(c.input, c.input.width * SCALE, c.input.height * SCALE, 'nearest');
      const lanczos = results.get('lanczos')?.raster ?? (await resize(c.input, c.input.width * SCALE, c.input.height * SCALE, 'lanczos3'));
      sheet.push({
        label: `${c.name} (${c.set === 'real' ? 'real input' : `${c.set}, bicubic ×4 down`}): the ${side} px crop where the map is highest, at ${at.left},${at.top}`,
        tiles: [await cut(nearest), await cut(lanczos), await cut(results.get('fidelity')!.raster), await cut(creative.raster), await cut(mapToRaster(creative.map!))],
      });
    }
  }
  for (const onnx of new Set(runners.values())) await releaseOrtRunners(onnx);

  // Means per set and method.
  const rows: Array<Record<string, number | string | undefined>> = [];
  for (const set of ['photo', 'illustration', 'real'] as const) {
    for (const m of methods) {
      const of = measurements.filter((x) => x.set === set && x.method === m.name);
      if (of.length === 0) continue;
      const mean = (k: keyof Measurement) => {
        const v = of.map((x) => x[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
        return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
      };
      const auroc = mean('auroc');
      const baseline = mean('baselineAuroc');
      rows.push({
        set,
        method: m.name,
        images: of.length,
        psnr: round(mean('psnr'), 2),
        ssim: round(mean('ssim'), 4),
        lrPsnr: round(mean('lrPsnr'), 2),
        sharpness: round(mean('sharpness'), 3),
        auroc: round(auroc, 3),
        baselineAuroc: round(baseline, 3),
        margin: auroc !== undefined && baseline !== undefined ? round(auroc - baseline, 3) : undefined,
        aurocAtLeast080: of.filter((x) => x.auroc !== undefined).length ? `${of.filter((x) => (x.auroc ?? 0) >= 0.8).length}/${of.filter((x) => x.auroc !== undefined).length}` : undefined,
        mapMean: round(mean('mapMean'), 3),
        shareOver: round(mean('shareOver'), 3),
        seconds: round(mean('seconds'), 2),
      });
    }
  }
  const report = {
    protocol: `×${SCALE}; ground truth: bicubic (sharp cubic) downscale of HR crops to a multiple of ${SCALE}; PSNR/SSIM on BT.601 luma, ${SCALE} px shaved; LR-PSNR = PSNR(area-average downscale of the result, the input) over RGB; sharpness = mean Sobel gradient of luma ÷ the truth's; AUROC: 8×8 blocks, top 10 % RMS error positive, map vs the output's gradient magnitude; real inputs centre-cropped to ≤ ${LR_CROP} px; seconds include the map`,
    images: { hr: hrFiles, lr: lrFiles },
    rows,
    perImage: measurements.map((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === 'number' ? round(v, 4) : v]))),
  };
  await fs.mkdir(path.dirname(out), { recursive: true });
  await fs.writeFile(`${out}.tmp`, JSON.stringify(report, null, 2) + '\n');
  await fs.rename(`${out}.tmp`, out);
  if (sheet.length) await contactSheet(sheet, sheetFile);

  const table = markdownTable(rows, measurements);
  if (!flag('no-readme') && pick.length === 0) await replaceInReadme(table);
  process.stdout.write(flag('json') ? JSON.stringify(report) + '\n' : table + '\n');
}

function markdownTable(rows: Array<Record<string, number | string | undefined>>, measurements: Measurement[]): string {
  const v = (x: number | string | undefined, digits = 2) => (x === undefined ? '' : typeof x === 'number' ? x.toFixed(digits) : x);
  const lines = [
    '| images | method | PSNR / SSIM | LR-PSNR | sharpness | map AUROC / gradient baseline (margin) | map AUROC ≥ 0.80 | map mean / share > 0.5 | s per image |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const name = r.set === 'real' ? 'real inputs' : `${r.set}s with truth`;
    lines.push(
      `| ${name} (${r.images}) | ${r.method} | ${r.psnr === undefined ? '' : `${v(r.psnr)} / ${v(r.ssim, 4)}`} | ${v(r.lrPsnr)} | ${v(r.sharpness)} | ${r.auroc === undefined ? '' : `${v(r.auroc, 3)} / ${v(r.baselineAuroc, 3)} (${(r.margin as number) >= 0 ? '+' : ''}${v(r.margin, 3)})`} | ${v(r.aurocAtLeast080)} | ${r.mapMean === undefined ? '' : `${v(r.mapMean, 3)} / ${v(r.shareOver, 3)}`} | ${v(r.seconds)} |`,
    );
  }
  const creative = measurements.filter((m) => m.auroc !== undefined && m.method.startsWith('creative'));
  lines.push('', '<details><summary>Map AUROC per image (creative mode): map / gradient baseline</summary>', '', '| image | creative | creative, tta 8 |', '|---|---|---|');
  for (const image of [...new Set(creative.map((m) => m.image))]) {
    const cell = (method: string) => {
      const m = creative.find((x) => x.image === image && x.method === method);
      return m ? `${m.auroc!.toFixed(3)} / ${m.baselineAuroc!.toFixed(3)}` : '';
    };
    lines.push(`| ${image} | ${cell('creative')} | ${cell('creative, tta 8')} |`);
  }
  lines.push('', '</details>');
  return lines.join('\n');
}

async function replaceInReadme(table: string): Promise<void> {
  const file = 'README.md';
  const text = await fs.readFile(file, 'utf8');
  const start = '<!-- quality-modes:start -->';
  const end = '<!-- quality-modes:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) {
    process.stderr.write(`README.md has no ${start} … ${end} markers; table not written there\n`);
    return;
  }
  await fs.writeFile(file, text.slice(0, a + start.length) + '\n' + table + '\n' + text.slice(b));
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
