/**
 * The browser's half of the core (issue 10): what Figma's plugin iframe and the bridge's page
 * import. Everything here and below it must bundle for a browser with no Node builtins, no Buffer,
 * no sharp and no onnxruntime-node (test/core/web/bundle-purity.test.ts checks the bundle).
 */
export { decodeImageBytes, drawRaster, imageDataToRaster, rasterToRgba } from './canvas-raster';
export { sha256Hex } from './digest';
export { fetchVerified, type PinnedFile } from './fetch-verified';
export { openWebRunner, ORT_WASM_FILE, ORT_WASM_GLUE_FILE, ORT_WEB_VERSION, ORT_WEBGPU_WASM_FILE, type OrtWasmFiles, type WebProvider, type WebProviderChoice, type WebRunner } from './ort-web-runner';
export { checkWebInput, upscaleInBrowser, WEB_LIMITS, WEB_TILE, yieldToEventLoop, type WebUpscaleOptions } from './web-upscale';
export { openWorkerRunner, type WorkerWebRunner } from './worker-runner';
export { cacheKey, fp16Variant, loadWebModel, NPM_CDNS, WEB_DEFAULT_MODEL, type ModelCache, type WebModel, type WebModelSource } from './web-model';
