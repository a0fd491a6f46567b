// onnxruntime-web's builds by entry point (its package.json `exports`), which TypeScript's
// "node" resolution does not read: each has the package's own types. `/wasm` is the
// WebAssembly-only build (ort-wasm-simd-threaded.wasm, 14 MB); `/webgpu` adds the WebGPU
// provider (ort-wasm-simd-threaded.asyncify.wasm, 27 MB) and is loaded only when an adapter exists.
declare module 'onnxruntime-web/wasm' {
  export * from 'onnxruntime-web';
}
declare module 'onnxruntime-web/webgpu' {
  export * from 'onnxruntime-web';
}
