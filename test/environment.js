const { TestEnvironment } = require('jest-environment-node');

/**
 * Jest runs each test file in its own realm, so a Float32Array made there fails the
 * `instanceof Float32Array` checks in onnxruntime (and Buffers from Node's realm fail checks made
 * against the sandbox's Uint8Array). Sharing the host realm's typed arrays removes that mismatch.
 */
class SharedTypedArrayEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of ['ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Uint8Array', 'Uint8ClampedArray', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']) {
      this.global[name] = globalThis[name];
    }
  }
}

module.exports = SharedTypedArrayEnvironment;
