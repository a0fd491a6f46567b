// Builds the Photoshop (UXP) plugin into dist/photoshop/ (load it in the UXP Developer Tool) and
// packs that folder into a .ccx: a plain ZIP with manifest.json at its root (Adobe's packaging
// docs; RESEARCH.md §5), named like the UXP Developer Tool names its packages.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { zipSync } from 'fflate';

const SRC = 'plugins/photoshop';
const OUT = 'dist/photoshop';

function files(dir, prefix = '') {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

export async function buildPlugin() {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(`${OUT}/icons`, { recursive: true });
  // photoshop and uxp are the host's modules: UXP provides `require` for them at run time.
  await build({
    entryPoints: [`${SRC}/src/index.ts`],
    outfile: `${OUT}/index.js`,
    bundle: true,
    platform: 'browser',
    target: 'es2020',
    format: 'iife',
    external: ['photoshop', 'uxp'],
    logLevel: 'warning',
  });
  for (const file of ['manifest.json', 'index.html']) copyFileSync(`${SRC}/${file}`, `${OUT}/${file}`);
  for (const icon of readdirSync(`${SRC}/icons`)) copyFileSync(`${SRC}/icons/${icon}`, `${OUT}/icons/${icon}`);

  const { id } = JSON.parse(readFileSync(`${OUT}/manifest.json`, 'utf8'));
  // A fixed date keeps the package byte-identical from identical inputs.
  const mtime = new Date('2026-01-01T00:00:00Z');
  const entries = Object.fromEntries(files(OUT).sort().map((f) => [f, [readFileSync(path.join(OUT, f)), { mtime }]]));
  writeFileSync(`dist/${id}_PS.ccx`, zipSync(entries, { level: 9 }));
}
