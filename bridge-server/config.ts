import { InferenceRunner } from '../core/session';

export interface BridgeLimits {
  /** Request body, bytes. */
  maxBodyBytes: number;
  /** Input width × height, checked from the header before decoding (decompression bombs). */
  maxInputPixels: number;
  maxOutputSide: number;
  maxOutputPixels: number;
}

export const DEFAULT_LIMITS: BridgeLimits = {
  maxBodyBytes: 512 * 1024 * 1024,
  maxInputPixels: 64 * 1024 * 1024,
  maxOutputSide: 16384,
  // 16384² exactly: a 16x of a 1024² photo. Huge single-model results stream to disk
  // (result-file.ts), so the bridge holds far less than the output while it runs.
  maxOutputPixels: 16384 * 16384,
};

/** What runs models: real ONNX Runtime sessions in the server, the same in tests. */
export interface Engine {
  /** `onInstallStep` hears about a first-use download and conversion (minutes, for a big package). */
  runner(modelId: string, onInstallStep?: (step: string) => void): Promise<InferenceRunner>;
  /** Model ids installed and ready to run. */
  readyModels(): Promise<string[]>;
  /** Execution providers that work here, in the order a job tries them (the CPU last). */
  providers(): Promise<string[]>;
}

export interface BridgeOptions {
  port: number;
  /** Other origins allowed besides this server's own page and Figma's `null`. */
  extraOrigins?: string[];
  /** Skip the loopback Host check (serve --allow-remote, behind TLS). */
  allowRemote?: boolean;
  limits?: Partial<BridgeLimits>;
  queueCapacity?: number;
  resultTtlMs?: number;
  /** Bytes of finished results kept in memory at most (default 4 GiB); the oldest expire first. */
  resultBudgetBytes?: number;
  /** Bytes of results kept on disk at most (default 16 GiB); the oldest files expire first. */
  resultFileBudgetBytes?: number;
  /** Results from this many output pixels on go to disk when they can (default STREAM_MIN_OUTPUT_PIXELS, 64 MP). */
  resultFileMinPixels?: number;
  /** Folder for results kept on disk (default: a new one per server in the system's temporary folder); removed on close. */
  resultDir?: string;
  /** Open event streams at most, over all jobs (default 64). */
  maxEventStreams?: number;
  pairingRateLimitPerMinute?: number;
}
