/**
 * The bridge token lives in UXP's secure storage (encrypted by the OS keychain). Adobe warns it
 * "can be lost" (secure-storage.md), so it is a cache: a missing or revoked token means pairing
 * again, never an error the user must fix by hand. UXP has no TextEncoder/TextDecoder
 * guarantee, and the token is ASCII, so bytes are converted by hand.
 */
import { storage } from 'uxp';

const KEY = 'upbridge.bridgeToken';

export interface TokenStore {
  get(): Promise<string | undefined>;
  set(token: string): Promise<void>;
  clear(): Promise<void>;
}

export const secureTokenStore: TokenStore = {
  async get() {
    const bytes = await storage.secureStorage.getItem(KEY).catch(() => undefined);
    if (!bytes || bytes.length === 0) return undefined;
    return String.fromCharCode(...Array.from(bytes));
  },
  async set(token) {
    await storage.secureStorage.setItem(KEY, Uint8Array.from(token, (c) => c.charCodeAt(0) & 0x7f));
  },
  async clear() {
    await storage.secureStorage.removeItem(KEY).catch(() => undefined);
  },
};
