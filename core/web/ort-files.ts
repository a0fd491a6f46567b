/**
 * onnxruntime-web's version and .wasm file names, apart from the runner so the bridge (Node) can
 * serve the files without importing onnxruntime-web's browser builds.
 */
export const ORT_WEB_VERSION = '1.30.0';
/** The WebAssembly build (SIMD, threads where allowed). */
export const ORT_WASM_FILE = 'ort-wasm-simd-threaded.wasm';
/** The build with the WebGPU provider (asyncify), loaded only when an adapter exists. */
export const ORT_WEBGPU_WASM_FILE = 'ort-wasm-simd-threaded.asyncify.wasm';
/**
 * The WebAssembly build's JavaScript glue. The bundles embed it, but ORT can start its thread
 * workers only from a script URL, which an inlined bundle has none of: with threads it is fetched
 * (pinned like the .wasm) and handed to ORT as a blob URL.
 */
export const ORT_WASM_GLUE_FILE = 'ort-wasm-simd-threaded.mjs';
