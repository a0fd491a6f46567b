/**
 * The messages between the plugin's main thread (document access, no network) and its UI iframe
 * (network, no document). Figma carries them with the structured-clone rules of postMessage, which
 * keep Uint8Array intact, so image bytes travel as they are: no base64 anywhere.
 */
import type { OutputLimits } from '../../../../core/scale';
import type { Mode } from '../../../shared/bridge-client';

/** Figma's own ceiling for an image: PNG, JPEG or GIF, at most 4096 px a side. */
export const FIGMA_MAX_IMAGE_SIDE = 4096;

export type Action = 'fills' | 'frames';

/**
 * Where the upscale runs: on the bridge, or in the plugin's own window with onnxruntime-web (when
 * the bridge is not running or not paired: slower, the fast model only, images up to 1024 px).
 */
export type Engine = 'bridge' | 'browser';
export const ENGINES: readonly Engine[] = ['bridge', 'browser'];

/** What the in-window engine takes: one 4x pass of the fast model, a 1024 px side at most (core/web). */
export const BROWSER_ENGINE = { scale: 4, maxInputSide: 1024 } as const;

/** How the notes name the engine whose limits a run plans with. */
export function engineName(request: { engine?: Engine }): string {
  return request.engine === 'browser' ? 'upscaling in this window' : 'the bridge';
}

/** clientStorage keys the UI may read and write through the main thread: verified model files only. */
export const MODEL_FILE_KEY_PREFIX = 'upbridge.file.';

/** What runs on the bridge: a mode (the bridge picks the models), or a model (absent: its default). */
export interface ModelChoice {
  model?: string;
  mode?: Mode;
  /** Only with a mode, and only when the designer moved the slider: 0 fidelity … 1 creative. */
  creativity?: number;
}

/** The choice alone, for a job: every job of a run runs what the window asked for. */
export function modelChoice(from: ModelChoice): ModelChoice {
  return {
    ...(from.model !== undefined ? { model: from.model } : {}),
    ...(from.mode !== undefined ? { mode: from.mode } : {}),
    ...(from.creativity !== undefined ? { creativity: from.creativity } : {}),
  };
}

export interface RunRequest extends ModelChoice {
  action: Action;
  /** Default: the bridge. */
  engine?: Engine;
  scale: number;
  /** Fills only: look inside the selected layers too. */
  includeChildren: boolean;
  /** What the bridge accepts (from GET /v1/health), so the plan never asks for more. */
  limits: OutputLimits & { maxInputPixels: number };
}

export interface SelectionSummary {
  /** Selected layers. */
  layers: number;
  /** Image paints in the selected layers and their children. */
  imageFills: number;
}

/** One upscale for the UI to run on the bridge. */
export interface UpscaleJob extends ModelChoice {
  id: number;
  engine: Engine;
  /** 1-based position in this run, for "image 2 of 3". */
  index: number;
  count: number;
  label: string;
  bytes: Uint8Array;
  contentType: string;
  scale: number;
  /**
   * `image`: one encoded image comes back. `tiles`: the result is larger than Figma takes, so it
   * comes back cut into PNG tiles of at most `maxSide` px.
   */
  output: { kind: 'image'; format: 'png' | 'jpeg' } | { kind: 'tiles'; maxSide: number };
}

/** A piece of a job's result, placed at (x, y) in the result's pixel grid. */
export interface ImagePiece {
  bytes: Uint8Array;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface RunOutcome {
  summary: string;
  /** Things the designer should know: clamped scales, skipped GIFs. */
  notes: string[];
}

export type MainToUi =
  | { type: 'init'; token: string | null; bridgeUrl: string; selection: SelectionSummary; modelMirrors?: string[] }
  /** The answer to `stored-get`: the bytes kept under that key, or null. */
  | { type: 'stored'; requestId: number; bytes: Uint8Array | null }
  | { type: 'selection'; selection: SelectionSummary }
  | { type: 'status'; text: string }
  | { type: 'job'; job: UpscaleJob }
  | { type: 'finished'; outcome: RunOutcome }
  | { type: 'failed'; error: ErrorInfo };

export type UiToMain =
  | { type: 'ready' }
  | { type: 'run'; request: RunRequest }
  | { type: 'cancel' }
  | { type: 'job-done'; id: number; width: number; height: number; pieces: ImagePiece[] }
  | { type: 'job-failed'; id: number; error: ErrorInfo }
  | { type: 'save-token'; token: string | null }
  | { type: 'stored-get'; requestId: number; key: string }
  | { type: 'stored-set'; key: string; bytes: Uint8Array }
  | { type: 'notify'; message: string; error: boolean };
