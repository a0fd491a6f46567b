/**
 * The part of the `uxp` module this plugin uses. `@adobe/cc-ext-uxp-types` declares the whole
 * runtime, but also global `fs`/`os` modules that clash with @types/node in this repository, so
 * the few signatures are restated here from its 7.3.1 declarations and Adobe's docs
 * (secure-storage.md: values are stored as bytes and read back as a Uint8Array).
 */
declare module 'uxp' {
  export const entrypoints: {
    setup(entrypoints: {
      plugin?: { create?(): void; destroy?(): void };
      panels?: Record<string, { create?(rootNode: HTMLElement): void | Promise<void>; show?(rootNode: HTMLElement, data?: unknown): void | Promise<void>; hide?(): void; destroy?(): void }>;
    }): void;
  };
  export const storage: {
    secureStorage: {
      getItem(key: string): Promise<Uint8Array | null | undefined>;
      setItem(key: string, value: string | ArrayBuffer | Uint8Array): Promise<void>;
      removeItem(key: string): Promise<void>;
    };
  };
}
