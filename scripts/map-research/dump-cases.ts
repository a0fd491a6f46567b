/**
 * Dumps the invented-detail map's cases as raw arrays for error-net.py (issue 7 research): per
 * image the truth and input, and per configuration (single run, TTA 8) the fidelity end F as
 * modes.ts makes it (colour-fixed, projected); unless --fidelity-only, also the creative end G
 * (colour-fixed) and the map's three squared signals (mapSignals: D, T, L). Model outputs are
 * map-study.ts's, cached under CACHE.
 *
 *   node scripts/run-ts.mjs scripts/map-research/dump-cases.ts IMAGES CACHE OUT [--fidelity-only]
 *
 * Files: OUT/<image>.<what>.u8_HxWxC (8-bit, row-major) and OUT/<image>.<what>.f32_HxW (float32).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { colourFixToInput } from '../../core/fidelity/colour-fix';
import { projectToInput } from '../../core/fidelity/consistency';
import { mapSignals } from '../../core/fidelity/detail-map';
import { sharpResampler } from '../../core/node/image-io';
import { Raster } from '../../core/raster';
import { FIDELITY, loadCases, modeEnds, ModelOutputs } from '../map-study';

const [images, cache, out] = process.argv.slice(2);
const fidelityOnly = process.argv.includes('--fidelity-only');

const raw = (name: string, r: Raster) => fs.writeFileSync(path.join(out, `${name}.u8_${r.height}x${r.width}x${r.channels}`), Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength));
const float = (name: string, a: Float32Array, height: number, width: number) => fs.writeFileSync(path.join(out, `${name}.f32_${height}x${width}`), Buffer.from(a.buffer, a.byteOffset, a.byteLength));

(async () => {
  if (!images || !cache || !out) throw new Error('usage: dump-cases.ts IMAGES CACHE OUT [--fidelity-only]');
  fs.mkdirSync(out, { recursive: true });
  const outputs = new ModelOutputs(cache);
  for (const c of await loadCases(images, cache)) {
    raw(`${c.name}.truth`, c.truth);
    raw(`${c.name}.input`, c.input);
    for (const tta of [false, true]) {
      const key = tta ? 'tta' : 'single';
      if (fidelityOnly) {
        const f = await outputs.get(c, FIDELITY, tta);
        raw(`${c.name}.F_${key}`, projectToInput(await colourFixToInput(f.raster, c.input, sharpResampler), c.input));
        continue;
      }
      const { creative, fidelity, spread } = await modeEnds(c, outputs, tta);
      raw(`${c.name}.G_${key}`, creative);
      raw(`${c.name}.F_${key}`, fidelity);
      const s = mapSignals({ input: c.input, creative, fidelity, spread });
      float(`${c.name}.D_${key}`, s.disagreement, s.height, s.width);
      float(`${c.name}.T_${key}`, s.spread, s.height, s.width);
      float(`${c.name}.L_${key}`, s.inconsistency, s.height, s.width);
    }
    process.stderr.write(`${c.name}\n`);
  }
})().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
