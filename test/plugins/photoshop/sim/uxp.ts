/**
 * A simulated `uxp` module (jest maps `uxp` here): the part the Photoshop plugin uses, following
 * Adobe's UXP reference (AdobeDocs/uxp-photoshop, src/pages/uxp-api/reference-js/modules/uxp/…):
 * - key-value-storage/secure-storage.md: values are stored as bytes (string, ArrayBuffer or
 *   TypedArray in) and read back as a Uint8Array; setItem rejects an empty value, removeItem
 *   rejects when nothing is stored under the key; a wrong key type is a TypeError. What getItem
 *   answers for a missing key is not documented: the sim resolves null.
 * - entry-points/entry-points.md: setup "can only be called once … throws … if its called more
 *   than once".
 * Pure TypeScript (no Node modules): it is bundled into a browser page too.
 */

const store = new Map<string, Uint8Array>();
const setups: unknown[] = [];

function checkKey(key: unknown, what: string): string {
  if (typeof key !== 'string') throw new TypeError(`secureStorage.${what}: the key must be a string`);
  return key;
}

function bytesOf(value: unknown): Uint8Array {
  if (typeof value === 'string') return new TextEncoder().encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  throw new TypeError('secureStorage.setItem: the value must be a string, an ArrayBuffer or a TypedArray');
}

export const storage = {
  secureStorage: {
    get length(): number {
      return store.size;
    },
    async setItem(key: string, value: string | ArrayBuffer | Uint8Array): Promise<void> {
      checkKey(key, 'setItem');
      const bytes = bytesOf(value);
      if (bytes.length === 0) throw new Error('secureStorage.setItem: the value is empty');
      store.set(key, bytes);
    },
    async getItem(key: string): Promise<Uint8Array | null> {
      checkKey(key, 'getItem');
      const bytes = store.get(key);
      return bytes ? bytes.slice() : null;
    },
    async removeItem(key: string): Promise<void> {
      checkKey(key, 'removeItem');
      if (!store.delete(key)) throw new Error(`secureStorage.removeItem: nothing is stored under "${key}"`);
    },
    key(index: number): string | undefined {
      return [...store.keys()][index];
    },
    async clear(): Promise<void> {
      if (store.size === 0) throw new Error('secureStorage.clear: nothing to clear');
      store.clear();
    },
  },
};

export const entrypoints = {
  setup(entrypoints: unknown): void {
    if (setups.length > 0) throw new Error('entrypoints.setup can only be called once');
    if (!entrypoints || typeof entrypoints !== 'object') throw new Error('entrypoints.setup: expected an object');
    setups.push(entrypoints);
  },
};

/** Test control: what the plugin registered and stored. */
export const uxpSim = {
  reset(): void {
    store.clear();
    setups.length = 0;
  },
  /** The objects passed to entrypoints.setup, in order. */
  get setups(): readonly unknown[] {
    return setups;
  },
  /** A copy of the stored bytes, or undefined. */
  stored(key: string): Uint8Array | undefined {
    return store.get(key)?.slice();
  },
  keys(): string[] {
    return [...store.keys()];
  },
};
