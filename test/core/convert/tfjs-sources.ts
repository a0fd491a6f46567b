import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import pacote from 'pacote';
import { tfjsShardPaths } from '../../../core/convert/tfjs-model';
import sources from '../../fixtures/tfjs-reference/sources.json';

/**
 * The UpscalerJS TF.js models for the converter tests, straight from their npm tarballs: pacote
 * checks each tarball against its pinned registry integrity, then every file read here is checked
 * against its pinned sha256 (test/fixtures/tfjs-reference/sources.json). Tarballs are unpacked
 * once into the git-ignored .cache/upscalerjs/. This is a stand-in until the model store knows
 * these packages; nothing else in the tests knows where the files come from.
 */
export type TfjsFamily = keyof typeof sources.packages;
export const TFJS_FAMILIES = Object.keys(sources.packages) as TfjsFamily[];
export const TFJS_SCALES = [2, 3, 4, 8] as const;

interface Pinned {
  bytes: number;
  sha256: string;
}

interface PackagePins {
  spec: string;
  integrity: string;
  inputRange: number;
  files: Record<string, Pinned>;
  setupFiles?: Record<string, Pinned>;
}

export interface TfjsSource {
  id: string;
  family: TfjsFamily;
  scale: number;
  inputRange: 1 | 255;
  modelJson: unknown;
  /** The shards concatenated in manifest order. */
  weightData: Uint8Array;
}

const CACHE = path.join(__dirname, '..', '..', '..', '.cache', 'upscalerjs');
const pins = (family: TfjsFamily) => sources.packages[family] as PackagePins;

const unpacked = new Map<TfjsFamily, Promise<string>>();

/** The package folder, extracted on first use. Two jest workers may race: each extracts to its own folder and the first rename wins. */
function packageDir(family: TfjsFamily): Promise<string> {
  let pending = unpacked.get(family);
  if (!pending) {
    pending = (async () => {
      const { spec, integrity } = pins(family);
      const dir = path.join(CACHE, spec.replace('/', '+'));
      const done = await fs.stat(path.join(dir, 'package.json')).then(() => true, () => false);
      if (!done) {
        const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
        await pacote.extract(spec, tmp, { integrity });
        await fs.rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
          await fs.rm(tmp, { recursive: true, force: true });
          if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
        });
      }
      return dir;
    })();
    unpacked.set(family, pending);
  }
  return pending;
}

async function readPinned(dir: string, rel: string, pin: Pinned | undefined): Promise<Buffer> {
  if (!pin) throw new Error(`${rel}: no sha256 pin in sources.json`);
  const bytes = await fs.readFile(path.join(dir, rel));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== pin.bytes || sha256 !== pin.sha256) {
    throw new Error(`${path.join(dir, rel)}: ${bytes.length} bytes, sha256 ${sha256}; pinned ${pin.bytes} bytes, ${pin.sha256} (delete the folder to fetch it again)`);
  }
  return bytes;
}

export async function loadTfjsSource(family: TfjsFamily, scale: number): Promise<TfjsSource> {
  const dir = await packageDir(family);
  const { files, inputRange } = pins(family);
  const modelRel = `models/x${scale}/model.json`;
  const modelJson: unknown = JSON.parse((await readPinned(dir, modelRel, files[modelRel])).toString('utf8'));
  const shards = await Promise.all(tfjsShardPaths(modelJson).map((p) => readPinned(dir, `models/x${scale}/${p}`, files[`models/x${scale}/${p}`])));
  const joined = Buffer.concat(shards);
  return {
    id: `esrgan-${family}-x${scale}`,
    family,
    scale,
    inputRange: inputRange as 1 | 255,
    modelJson,
    weightData: new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength),
  };
}

/**
 * UpscalerJS' own registration of its custom layers (MultiplyBeta, PixelShuffle<scale>x) into the
 * given tfjs instance: the `setup(tf)` of esrgan-thick's model definition for that scale.
 */
export async function registerUpscalerJsLayers(tf: unknown, scale: number): Promise<void> {
  const dir = await packageDir('thick');
  const setupFiles = pins('thick').setupFiles ?? {};
  for (const rel of Object.keys(setupFiles)) await readPinned(dir, rel, setupFiles[rel]);
  const definition = require(path.join(dir, `dist/cjs/models/esrgan-thick/src/x${scale}/index.js`)).default as { setup(tf: unknown): void };
  definition.setup(tf);
}
