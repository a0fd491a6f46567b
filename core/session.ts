/**
 * The one small interface the pipeline needs from a runtime: run a CHW float tile through the
 * model. onnxruntime-node implements it in `core/node/`, onnxruntime-web later in `core/web/`.
 */
export interface TileTensor {
  /** CHW, float32, values nominally in [0, 1]. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export interface InferenceRunner {
  /** The execution provider that runs this session (cpu, cuda, webgpu...). */
  readonly provider: string;
  run(input: TileTensor): Promise<TileTensor>;
  /**
   * Tile autotuning, where the runtime supports it: the tile and overlap to use for an input,
   * from a calibration of this model on this provider. What the request sets is kept.
   */
  autotune?(request: AutotuneRequest): Promise<{ tile: number; overlap: number }>;
}

export interface AutotuneRequest {
  /** The input's size and the requested scale (the passes follow from it). */
  width: number;
  height: number;
  scale: number;
  /** Set when the user chose them. */
  tile?: number;
  overlap?: number;
  /** Bytes the tiling may hold at once (default: the runtime's own budget); a streamed huge output asks for less. */
  memoryBudget?: number;
  signal?: AbortSignal;
}

/** Runtimes report allocation failures in their own words; these are the ones worth a smaller tile. */
export function isOutOfMemory(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /out of memory|failed to allocate|bad_alloc|allocation failed|\bOOM\b|ENOMEM/i.test(message);
}
