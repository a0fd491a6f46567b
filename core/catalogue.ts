import catalogueJson from '../manifest/models.json';
import { UpbridgeError } from './errors';

export interface SourceFile {
  path: string;
  sha256: string;
}

export interface ModelEntry {
  id: string;
  name: string;
  description: string;
  architecture: string;
  /** Native scale of one model pass. */
  scale: number;
  licence: string;
  source: { package: string; format: 'ncnn'; param: SourceFile; bin: SourceFile };
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
   */
  exactOverlap: number;
}

export interface Catalogue {
  defaultModel: string;
  packages: Record<string, { integrity: string; note?: string }>;
  models: ModelEntry[];
}

export const catalogue = catalogueJson as Catalogue;

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
