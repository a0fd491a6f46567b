// Bundles the CLI with esbuild. Native and large runtime packages stay external: they are
// dependencies, loaded from node_modules at run time.
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['bridge-server/cli.ts'],
  outfile: 'dist/cli.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['sharp', 'onnxruntime-node', 'pacote'],
  logLevel: 'warning',
  define: { UPBRIDGE_VERSION: JSON.stringify(version) },
});
