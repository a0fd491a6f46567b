/**
 * onnxruntime-web's version and .wasm file names, apart from the runner so the bridge (Node) can
 * serve the files without importing onnxruntime-web's browser builds.
 */
export const ORT_WEB_VERSION = '1.30.0';
/** The WebAssembly build (SIMD, threads where allowed). */
export const ORT_WASM_FILE = 'ort-wasm-simd-threaded.wasm';
/** The build with the WebGPU provider (asyncify), loaded only when an adapter exists. */
export const ORT_WEBGPU_WASM_FILE = 'ort-wasm-simd-threaded.asyncify.wasm';
