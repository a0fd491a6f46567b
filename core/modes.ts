/**
 * Modes: the one option that chooses between staying with the input and inventing plausible
 * detail, and everything it brings (creativity dial, LR-consistency, TTA, content detection, the
 * invented-detail map, LR-PSNR). Pure: models reach it as runners from the caller (onnxruntime-node
 * in the CLI and the bridge), resampling through the caller's Resampler.
 *
 * What each request runs, for content C (photo | illustration, `auto` detected from the input):
 * - no mode: the model asked for (or the default), as before; nothing else touches the pixels.
 * - `fidelity`: F = project(colourFix(M_fid(x))): the catalogue's highest-PSNR model for C (the
 *   quality table chose it), the wavelet colour fix against the input, then the LR-consistency
 *   projection, so that D(F) = x (D: the area-averaging degradation the metric uses).
 * - `creative`: G = colourFix(M_gan(x)): the GAN for C, colour-anchored, not projected.
 * - `balanced`: colourFix(M_fast(x)): the fast general model (realesr-general-x4v3 for photos),
 *   one model, nothing blended: what a designer gets when they do not choose.
 * - `creativity` c (0..1), when given or implied by the mode (fidelity 0, creative 1): the result
 *   is F + c·(G − F); only the ends that c needs are run (both in between).
 * - `consistent` (default: on in fidelity mode only): project the final result onto the input.
 *   Off, F is still projected as the fidelity end, unless `consistent` is false explicitly.
 * - `tta` 4 | 8: every model run is averaged over flips/turns; the spread of the run that made
 *   the result's invented part (G, else the single model) feeds the map.
 * - `map`: the invented-detail map of the result (detail-map.ts), against F (run for the map when
 *   the request did not need it anyway).
 * Every result reports lrPsnr = PSNR(D(result), input).
 */
import { fillTransparentColour } from './alpha';
import { catalogue, Catalogue, findModel, ModelEntry, modelForMode, MODEL_MODES, ModelMode } from './catalogue';
import { throwIfCancelled, UpbridgeError } from './errors';
import { colourFixToInput } from './fidelity/colour-fix';
import { projectToInput } from './fidelity/consistency';
import { detectContent, DetectedContent } from './fidelity/content';
import { blendCreativity, validateCreativity } from './fidelity/creativity';
import { lrPsnr } from './fidelity/degradation';
import { DetailMap, inventedDetailMap, MapSummary, summary } from './fidelity/detail-map';
import { TtaTransformCount, upscaleWithTta, validateTtaCount } from './fidelity/tta';
import { hasAlpha, Raster } from './raster';
import { outputSize } from './scale';
import { InferenceRunner } from './session';
import { plannedTiles, Resampler, upscaleRaster, UpscaleOptions, validateUpscaleOptions } from './upscale';
import { invalidOption, oneOf } from './validate';

export const CONTENT_CHOICES = ['auto', 'photo', 'illustration'] as const;
export type ContentChoice = 'auto' | DetectedContent;

/**
 * The float steps (colour fix, projection, blend, map) hold several float copies of the output;
 * beyond this many output pixels they would need gigabytes, so a request that needs them is
 * refused up front with this figure (a plain model run streams and is not limited by it).
 */
export const MODE_LIMITS = { maxOutputPixels: 64 * 1000 * 1000 } as const;

/** LR-PSNR as reported: a result consistent to the last bit measures Infinity; reports say 100. */
export const LR_PSNR_CAP = 100;

/** Untrusted request fields, as the CLI, the query string or a plugin give them. */
export interface UpscaleRequestFields {
  model?: unknown;
  scale?: unknown;
  tile?: unknown;
  overlap?: unknown;
  alpha?: unknown;
  mode?: unknown;
  creativity?: unknown;
  tta?: unknown;
  content?: unknown;
  map?: unknown;
  consistent?: unknown;
}

/** A validated request: nothing here can fail later for a reason the user could have fixed. */
export interface UpscalePlan {
  scale: number;
  mode?: ModelMode;
  /** The model named in the request: the result's model without a mode, the mode's own model with one. */
  model?: ModelEntry;
  content: ContentChoice;
  /** Explicit or implied by the mode; undefined: one model, no blend (no mode, or balanced). */
  creativity?: number;
  /** Whether the request gave creativity itself (reports say so). */
  creativityGiven: boolean;
  tta?: TtaTransformCount;
  map: boolean;
  /** Project the final result (default: fidelity mode only). */
  consistent: boolean;
  /** False when the request switched consistency off explicitly: nothing is projected. */
  projectEnds: boolean;
  tile?: unknown;
  overlap?: unknown;
  alpha?: unknown;
}

/** true/false from booleans and the strings a query or a form sends. */
export function booleanOption(name: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalidOption(name, 'true or false', value);
}

const given = (v: unknown) => v !== undefined && v !== null && v !== '';

/** Validates the request once, at the boundary; per-model options are checked here too. */
export function planUpscale(raw: UpscaleRequestFields, from: Catalogue = catalogue): UpscalePlan {
  const mode = given(raw.mode) ? oneOf('mode', raw.mode, MODEL_MODES) : undefined;
  const model = given(raw.model) ? findModel(String(raw.model), from) : undefined;
  const content = oneOf('content', given(raw.content) ? raw.content : 'auto', CONTENT_CHOICES);
  const creativityGiven = given(raw.creativity);
  if (creativityGiven && !mode) throw invalidOption('creativity', 'used with a mode (fidelity, balanced or creative), which picks the two models it blends', raw.creativity);
  const creativity = creativityGiven ? validateCreativity(raw.creativity) : mode === 'fidelity' ? 0 : mode === 'creative' ? 1 : undefined;
  if (model && mode && creativity !== undefined && creativity > 0 && creativity < 1) {
    throw invalidOption('model', `left out when creativity is between 0 and 1 (the ${mode} mode blends the catalogue's fidelity and creative models)`, model.id);
  }
  const tta = given(raw.tta) && raw.tta !== '0' && raw.tta !== 0 && raw.tta !== 'off' ? validateTtaCount(raw.tta) : undefined;
  const map = given(raw.map) ? booleanOption('map', raw.map) : false;
  const consistentGiven = given(raw.consistent);
  const consistent = consistentGiven ? booleanOption('consistent', raw.consistent) : mode === 'fidelity';
  const plan: UpscalePlan = {
    scale: 0,
    mode,
    model,
    content,
    creativity,
    creativityGiven,
    tta,
    map,
    consistent,
    projectEnds: !(consistentGiven && !consistent),
    tile: raw.tile,
    overlap: raw.overlap,
    alpha: raw.alpha,
  };
  // Every model the plan may run (either content) validates the tiling options now.
  const candidates = new Set<ModelEntry>();
  for (const c of ['photo', 'illustration'] as const) for (const s of stagesFor(plan, c, from)) candidates.add(s.model);
  let scale = 0;
  for (const m of candidates) scale = stageOptions(plan, m, raw.scale).scale;
  plan.scale = scale;
  return plan;
}

/** True when the plan needs the float steps (and their output limit). */
export function needsFloatSteps(plan: UpscalePlan): boolean {
  return plan.mode !== undefined || plan.map || plan.consistent;
}

/** Refuses, before any model runs, an output too large for the float steps. */
export function checkModeLimits(plan: UpscalePlan, width: number, height: number): void {
  if (!needsFloatSteps(plan)) return;
  const out = outputSize(width, height, plan.scale);
  if (out.width * out.height > MODE_LIMITS.maxOutputPixels) {
    const what = plan.mode ? `mode ${plan.mode}` : plan.map ? 'map' : 'consistent';
    throw new UpbridgeError(
      'UPB_TOO_LARGE',
      `${what} works on outputs up to ${MODE_LIMITS.maxOutputPixels / 1e6} MP; ${out.width}×${out.height} is ${(out.width * out.height / 1e6).toFixed(1)} MP (use a smaller scale, or no mode, map or consistency)`,
    );
  }
}

export type StageRole = 'result' | 'fidelity' | 'creative';

export interface Stage {
  role: StageRole;
  model: ModelEntry;
}

/** The model runs a plan needs for a content type, in the order they run. */
export function stagesFor(plan: UpscalePlan, content: DetectedContent, from: Catalogue = catalogue): Stage[] {
  const stages: Stage[] = [];
  const fidelityModel = () => (plan.mode === 'fidelity' && plan.model ? plan.model : modelForMode(content, 'fidelity', from));
  if (plan.creativity === undefined) {
    const model = plan.model ?? (plan.mode === 'balanced' ? modelForMode(content, 'balanced', from) : findModel(from.defaultModel, from));
    stages.push({ role: 'result', model });
    if (plan.map) stages.push({ role: 'fidelity', model: fidelityModel() });
    return stages;
  }
  const c = plan.creativity;
  if (c < 1 || plan.map) stages.push({ role: 'fidelity', model: fidelityModel() });
  if (c > 0) stages.push({ role: 'creative', model: plan.mode === 'creative' && plan.model ? plan.model : modelForMode(content, 'creative', from) });
  return stages;
}

/** The pipeline options for one model of the plan (its own tile and overlap defaults, its window conventions). */
export function stageOptions(plan: UpscalePlan, model: ModelEntry, rawScale?: unknown): Omit<UpscaleOptions, 'signal' | 'onProgress'> {
  return validateUpscaleOptions({ scale: plan.scale || rawScale, tile: plan.tile, overlap: plan.overlap, alpha: plan.alpha }, model);
}

/**
 * stageOptions, with the tile (and the overlap) the runner's autotuning picks for this input where
 * the request left them out. Runners without autotuning keep the model's defaults.
 */
export async function tunedStageOptions(plan: UpscalePlan, model: ModelEntry, runner: InferenceRunner, input: { width: number; height: number }, signal?: AbortSignal, memoryBudget?: number): Promise<Omit<UpscaleOptions, 'signal' | 'onProgress'>> {
  const options = stageOptions(plan, model);
  const tileGiven = given(plan.tile);
  const overlapGiven = given(plan.overlap);
  if (!runner.autotune || (tileGiven && overlapGiven)) return options;
  const tuned = await runner.autotune({
    width: input.width,
    height: input.height,
    scale: options.scale,
    ...(tileGiven ? { tile: options.tile } : {}),
    ...(overlapGiven ? { overlap: options.overlap } : {}),
    ...(memoryBudget !== undefined ? { memoryBudget } : {}),
    signal,
  });
  return { ...options, tile: tuned.tile, overlap: tuned.overlap };
}

/** The content a plan works with for this input. */
export function resolveContent(plan: UpscalePlan, input: Raster): { content: DetectedContent; detected: boolean } {
  return plan.content === 'auto' ? { content: detectContent(input), detected: true } : { content: plan.content, detected: false };
}

export interface ModeReport {
  mode?: ModelMode;
  content: DetectedContent;
  /** True when `content` came from detectContent (content: auto). */
  contentDetected: boolean;
  creativity?: number;
  consistent: boolean;
  tta?: TtaTransformCount;
  /** Model id per role that ran. */
  models: Partial<Record<StageRole, string>>;
  /** PSNR between the result downscaled by D and the input, dB (capped at LR_PSNR_CAP). */
  lrPsnr: number;
  map?: MapSummary;
  tiles: number;
  passes: number;
}

export interface ModeResult {
  raster: Raster;
  /** At output size, 0 supported … 1 invented; when the plan asked for it. */
  map?: DetailMap;
  report: ModeReport;
}

export interface ModeRuntime {
  /** A runner for a model of the plan (installing it first where needed). */
  runnerFor(model: ModelEntry): Promise<InferenceRunner>;
  resampler: Resampler;
  signal?: AbortSignal;
  onProgress?: (progress: { done: number; total: number }) => void;
  /** Told which step runs: a model (by role) or one of the float steps. */
  onStep?: (step: StageRole | 'colour-fix' | 'projection' | 'map') => void;
}

/** Runs a validated plan on an input (content already resolved, or resolved here). */
export async function runUpscalePlan(input: Raster, plan: UpscalePlan, runtime: ModeRuntime, from: Catalogue = catalogue, resolved = resolveContent(plan, input)): Promise<ModeResult> {
  checkModeLimits(plan, input.width, input.height);
  const stages = stagesFor(plan, resolved.content, from);
  const runs = plan.tta ?? 1;
  const check = () => throwIfCancelled(runtime.signal);
  // Every model is made ready and its tiling settled first, so the progress total is known.
  const prepared: { stage: Stage; runner: InferenceRunner; options: Omit<UpscaleOptions, 'signal' | 'onProgress'> }[] = [];
  for (const stage of stages) {
    check();
    const runner = await runtime.runnerFor(stage.model);
    check();
    prepared.push({ stage, runner, options: await tunedStageOptions(plan, stage.model, runner, input, runtime.signal) });
  }
  const totals = prepared.map((p) => plannedTiles(input, p.stage.model.scale, p.options) * runs);
  const total = totals.reduce((a, b) => a + b, 0);
  let offset = 0;
  let tiles = 0;
  let passes = 0;
  // The float steps compare against the colour the model saw: transparent pixels' colour filled.
  const reference = hasAlpha(input.channels) ? fillTransparentColour(input) : input;

  const outputs = new Map<StageRole, { raster: Raster; spread?: Float32Array }>();
  for (const [k, { stage, runner, options: tuned }] of prepared.entries()) {
    check();
    runtime.onStep?.(stage.role);
    const base = offset;
    const options: UpscaleOptions = {
      ...tuned,
      signal: runtime.signal,
      onProgress: (p) => runtime.onProgress?.({ done: base + p.done, total }),
    };
    if (plan.tta) {
      const out = await upscaleWithTta(input, runner, stage.model.scale, runtime.resampler, options, plan.tta);
      outputs.set(stage.role, { raster: out.raster, spread: out.spread });
      tiles += out.tiles;
      passes = Math.max(passes, out.passes);
    } else {
      const out = await upscaleRaster(input, runner, stage.model.scale, runtime.resampler, options);
      outputs.set(stage.role, { raster: out.raster });
      tiles += out.tiles;
      passes = Math.max(passes, out.passes);
    }
    offset += totals[k];
  }
  check();

  const colourFix = async (r: Raster) => {
    runtime.onStep?.('colour-fix');
    return colourFixToInput(r, reference, runtime.resampler);
  };
  const project = (r: Raster) => {
    runtime.onStep?.('projection');
    return projectToInput(r, reference);
  };

  let fidelity: Raster | undefined;
  const fidelityRun = outputs.get('fidelity');
  if (fidelityRun) {
    fidelity = await colourFix(fidelityRun.raster);
    check();
    if (plan.projectEnds) fidelity = project(fidelity);
    check();
  }
  let result: Raster;
  let spread: Float32Array | undefined;
  const single = outputs.get('result');
  if (single) {
    result = plan.mode ? await colourFix(single.raster) : single.raster;
    spread = single.spread;
  } else {
    const c = plan.creativity as number;
    const creativeRun = outputs.get('creative');
    spread = creativeRun?.spread ?? fidelityRun?.spread;
    const creative = creativeRun ? await colourFix(creativeRun.raster) : undefined;
    check();
    result = c === 0 ? fidelity! : c === 1 ? creative! : blendCreativity(fidelity!, creative!, c);
  }
  check();
  if (plan.consistent && !(result === fidelity && plan.projectEnds)) result = project(result);
  check();

  let map: DetailMap | undefined;
  if (plan.map) {
    runtime.onStep?.('map');
    map = inventedDetailMap({ input: reference, creative: result, fidelity, spread });
  }
  const models: ModeReport['models'] = {};
  for (const s of stages) models[s.role] = s.model.id;
  const report: ModeReport = {
    ...(plan.mode ? { mode: plan.mode } : {}),
    content: resolved.content,
    contentDetected: resolved.detected,
    ...(plan.creativity !== undefined ? { creativity: plan.creativity } : {}),
    consistent: plan.consistent,
    ...(plan.tta ? { tta: plan.tta } : {}),
    models,
    lrPsnr: Math.min(LR_PSNR_CAP, Number(lrPsnr(result, reference).toFixed(2))),
    ...(map ? { map: summary(map) } : {}),
    tiles,
    passes,
  };
  return { raster: result, map, report };
}

/** The models a plan may need for an input, so a caller can install them before running (and report it). */
export function modelsNeeded(plan: UpscalePlan, content: DetectedContent, from: Catalogue = catalogue): ModelEntry[] {
  return [...new Set(stagesFor(plan, content, from).map((s) => s.model))];
}

/** The model whose output the result mostly is: the single model, else the creative end when creativity > 0. */
export function resultModel(plan: UpscalePlan, content: DetectedContent, from: Catalogue = catalogue): ModelEntry {
  const stages = stagesFor(plan, content, from);
  const role: StageRole = stages.some((s) => s.role === 'result') ? 'result' : (plan.creativity ?? 0) > 0 ? 'creative' : 'fidelity';
  return stages.find((s) => s.role === role)!.model;
}
