import { createHash } from 'node:crypto';
import { sha256, sha256Hex } from '../../../core/web/digest';

/** The plain SHA-256 (for iframes without crypto.subtle) against Node's, at every padding edge and on a real model file. */
test('sha256 equals node:crypto on lengths around the padding boundaries and on 3 MB of data', async () => {
  const node = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const hex = (b: Uint8Array) => Buffer.from(sha256(b)).toString('hex');
  for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000]) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);
    expect(hex(bytes)).toBe(node(bytes));
  }
  expect(hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const big = Uint8Array.from({ length: 3_000_001 }, (_, i) => (i * 2654435761) >>> 24);
  expect(hex(big)).toBe(node(big));
  // And the Web Crypto path (Node 20 has crypto.subtle) agrees.
  await expect(sha256Hex(big)).resolves.toBe(node(big));
});
