/** FNV-1a over the values: compares megabytes of pixels across the browser boundary cheaply. */
export function fingerprint(data: ArrayLike<number>): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], 0x01000193) >>> 0;
  return `${data.length}:${h.toString(16)}`;
}
