/**
 * Photoshop's 16-bit samples run 0..32768 (PSDOCS imaging.md, "16 → 0..32768"); the bridge's raw
 * 16-bit format runs 0..65535. Converted with lookup tables rather than `fullRange: true`, which
 * is documented since 24.4 but unverified at run time (RESEARCH.md §3.3); every 0..32768 value
 * survives the round trip exactly.
 */
const PS_MAX = 32768;
const FULL_MAX = 65535;

let toFull: Uint16Array | undefined;
let toPs: Uint16Array | undefined;

export function photoshopToFullRange(data: Uint16Array): Uint16Array {
  toFull ??= Uint16Array.from({ length: PS_MAX + 1 }, (_, v) => Math.round((v * FULL_MAX) / PS_MAX));
  const lut = toFull;
  const out = new Uint16Array(data.length);
  // Values above 32768 do not occur in Photoshop's data; clamp rather than read past the table.
  for (let i = 0; i < data.length; i++) out[i] = lut[Math.min(data[i], PS_MAX)];
  return out;
}

export function fullRangeToPhotoshop(data: Uint16Array): Uint16Array {
  toPs ??= Uint16Array.from({ length: FULL_MAX + 1 }, (_, v) => Math.round((v * PS_MAX) / FULL_MAX));
  const lut = toPs;
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = lut[data[i]];
  return out;
}
