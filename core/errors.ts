/**
 * Typed errors with stable codes. The same codes reach the CLI (exit 2 + one line), HTTP
 * (4xx/5xx JSON body) and the plugins (readable message), so callers switch on `code`, never
 * on message text.
 */
export type ErrorCode =
  | 'UPB_INVALID_OPTION' // an option is outside its allowed range
  | 'UPB_INPUT_NOT_FOUND'
  | 'UPB_INPUT_NOT_IMAGE'
  | 'UPB_OUTPUT_UNWRITABLE'
  | 'UPB_UNKNOWN_MODEL'
  | 'UPB_MODEL_INTEGRITY' // a downloaded or cached file does not match its pinned hash
  | 'UPB_MODEL_FETCH' // the registry could not be reached / the tarball could not be read
  | 'UPB_MODEL_UNSUPPORTED' // a custom .onnx the pipeline cannot drive (layout, scale, range)
  | 'UPB_NCNN_UNSUPPORTED_LAYER'
  | 'UPB_NCNN_FORMAT' // malformed .param/.bin
  | 'UPB_TFJS_UNSUPPORTED_LAYER' // a TF.js layer class, activation or layer option the converter does not map
  | 'UPB_TFJS_UNSUPPORTED_MODEL' // a well-formed TF.js model the pipeline cannot run (not RGB in/out, not a whole-number upscale)
  | 'UPB_TFJS_FORMAT' // malformed model.json, or weight data that does not match its manifest
  | 'UPB_INFERENCE' // the runtime failed on a tile even at the smallest tile size
  | 'UPB_CANCELLED'
  // Bridge server
  | 'UPB_UNAUTHORIZED' // no or unknown bearer token
  | 'UPB_PAIRING_FAILED' // wrong or expired pairing code
  | 'UPB_FORBIDDEN_HOST' // Host header is not this server on loopback (DNS rebinding)
  | 'UPB_FORBIDDEN_ORIGIN' // a web page of another origin
  | 'UPB_TOO_LARGE' // body, input pixels or output size over the limits
  | 'UPB_HEADERS_TOO_LARGE' // request line and headers over Node's limit
  | 'UPB_QUEUE_FULL'
  | 'UPB_JOB_NOT_FOUND'
  | 'UPB_RESULT_NOT_READY'
  | 'UPB_RESULT_EXPIRED'
  | 'UPB_NO_MAP' // the job was submitted without map=true
  | 'UPB_RATE_LIMITED'
  | 'UPB_NOT_FOUND' // no such route
  | 'UPB_QUEUE_UNAVAILABLE' // the shared queue (Redis) cannot be reached: serve --queue, worker, batch --queue
  | 'UPB_BATCH_INCOMPLETE' // upbridge batch: some images failed (each one is named in the manifest)
  // Plugins (raised client-side; never sent by the bridge)
  | 'UPB_BRIDGE_UNREACHABLE' // nothing answers on the bridge's address: it is not running
  | 'UPB_NOTHING_TO_UPSCALE' // no document, an empty selection, no image in the selection
  | 'UPB_UNSUPPORTED_DOCUMENT' // a colour mode or bit depth the models cannot take (CMYK, Lab, 32-bit)
  | 'UPB_DOCUMENT_CHANGED' // the document was edited while the bridge worked: nothing was written
  | 'UPB_INTERNAL'; // a bug: anything not anticipated

/** Which errors are the caller's fault (HTTP 4xx, CLI exit 2) rather than ours. */
const USER_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'UPB_INVALID_OPTION',
  'UPB_INPUT_NOT_FOUND',
  'UPB_INPUT_NOT_IMAGE',
  'UPB_OUTPUT_UNWRITABLE',
  'UPB_UNKNOWN_MODEL',
  'UPB_MODEL_UNSUPPORTED',
  'UPB_UNAUTHORIZED',
  'UPB_PAIRING_FAILED',
  'UPB_FORBIDDEN_HOST',
  'UPB_FORBIDDEN_ORIGIN',
  'UPB_TOO_LARGE',
  'UPB_HEADERS_TOO_LARGE',
  'UPB_QUEUE_FULL',
  'UPB_JOB_NOT_FOUND',
  'UPB_RESULT_NOT_READY',
  'UPB_RESULT_EXPIRED',
  'UPB_NO_MAP',
  'UPB_RATE_LIMITED',
  'UPB_NOT_FOUND',
  'UPB_NOTHING_TO_UPSCALE',
  'UPB_UNSUPPORTED_DOCUMENT',
  'UPB_DOCUMENT_CHANGED',
]);

export class UpbridgeError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'UpbridgeError';
    this.code = code;
    this.details = details;
  }

  get isUserError(): boolean {
    return USER_ERRORS.has(this.code);
  }
}

export function isUpbridgeError(e: unknown): e is UpbridgeError {
  return e instanceof UpbridgeError;
}

export function cancelledError(): UpbridgeError {
  return new UpbridgeError('UPB_CANCELLED', 'upscale cancelled');
}

/** Every step that can be cancelled checks with this, so a cancel reads the same everywhere. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError();
}
