/**
 * sha256 with the Web Crypto API: the browser's (and Node 20's global) crypto.subtle, so the same
 * integrity check runs in Figma's iframe, the bridge's page and the tests without node:crypto.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
