/**
 * Local means for the maps: a box mean of radius r (a (2r+1)² window, the edge pixel repeated
 * beyond the border) in O(1) per pixel from running sums, whatever r is. Two passes make a
 * tent-shaped window, smooth enough that block edges of the signals do not show in a map.
 */
function boxAlongRows(plane: Float32Array, width: number, height: number, radius: number): Float32Array {
  const out = new Float32Array(plane.length);
  const norm = 1 / (2 * radius + 1);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const at = (x: number) => plane[row + (x < 0 ? 0 : x >= width ? width - 1 : x)];
    let sum = 0;
    for (let x = -radius; x <= radius; x++) sum += at(x);
    for (let x = 0; x < width; x++) {
      out[row + x] = sum * norm;
      sum += at(x + radius + 1) - at(x - radius);
    }
  }
  return out;
}

function transpose(plane: Float32Array, width: number, height: number): Float32Array {
  const out = new Float32Array(plane.length);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[x * height + y] = plane[y * width + x];
  return out;
}

export function boxMean(plane: Float32Array, width: number, height: number, radius: number): Float32Array {
  if (radius <= 0) return plane.slice();
  const rows = boxAlongRows(plane, width, height, radius);
  return transpose(boxAlongRows(transpose(rows, width, height), height, width, radius), height, width);
}

/** Two box means: a tent window of half-width 2r. */
export function tentMean(plane: Float32Array, width: number, height: number, radius: number): Float32Array {
  return boxMean(boxMean(plane, width, height, radius), width, height, radius);
}

/** Sobel gradient magnitude (edge pixels repeated), per pixel. */
export function sobelMagnitude(plane: Float32Array, width: number, height: number): Float32Array {
  const out = new Float32Array(plane.length);
  const at = (x: number, y: number) => plane[(y < 0 ? 0 : y >= height ? height - 1 : y) * width + (x < 0 ? 0 : x >= width ? width - 1 : x)];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const gx = at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1) - at(x - 1, y - 1) - 2 * at(x - 1, y) - at(x - 1, y + 1);
      const gy = at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1) - at(x - 1, y - 1) - 2 * at(x, y - 1) - at(x + 1, y - 1);
      out[y * width + x] = Math.hypot(gx, gy) / 8;
    }
  }
  return out;
}
