import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Fastify, { FastifyInstance } from 'fastify';
import { removeResultFile, resultGoesToFile, ResultFile, runJobToFile, sendResultFile } from '../../bridge-server/result-file';
import { TransferFormat } from '../../bridge-server/job-input';
import { planUpscale, resolveContent, runUpscalePlan } from '../../core/modes';
import { decodeImage, encodeImage, ImageMetadata, sharpResampler } from '../../core/node/image-io';
import { Raster } from '../../core/raster';
import { runnerFor, syntheticRaster } from '../helpers';

const FAST = 'realesr-general-x4v3';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-result-file-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));
const afterCleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of afterCleanup.splice(0)) await close();
});

/** A real server on loopback (as the bridge tests use), answering one route with the file. */
async function serve(file: ResultFile, metadata: Partial<ImageMetadata>): Promise<{ app: FastifyInstance; get: (format: string) => Promise<{ status: number; headers: Headers; body: Buffer }> }> {
  const app = Fastify();
  app.get('/result', async (request, reply) => sendResultFile(reply, file, (request.query as { format: TransferFormat }).format, metadata));
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    get: async (format) => {
      const response = await fetch(`${address}/result?format=${format}`);
      return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
    },
  };
}

const bytesOf = (r: Raster) => Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);

describe('results kept on disk', () => {
  test('which jobs: large outputs of plans with no float steps or TTA', () => {
    const plain = planUpscale({ model: FAST, scale: 16 });
    expect(resultGoesToFile(plain, { width: 1024, height: 1024 })).toBe(true);
    expect(resultGoesToFile(plain, { width: 256, height: 256 })).toBe(false);
    expect(resultGoesToFile(planUpscale({ model: FAST, scale: 16, tta: 4 }), { width: 1024, height: 1024 })).toBe(false);
  });

  test.each([
    ['RGB 8-bit at 16x', syntheticRaster(9, 7, 3, 8), 16],
    ['RGBA 16-bit at 4x (alpha through the model)', syntheticRaster(33, 21, 4, 16), 4],
  ])('%s: the job report and every format equal the in-memory path', async (_name, raster, scale) => {
    const plan = planUpscale({ model: FAST, scale, tile: 16 });
    const content = resolveContent(plan, raster);
    const metadata: ImageMetadata = { format: 'png', density: 144 };
    const runner = await runnerFor(FAST);
    const progress: number[] = [];
    const { resultFile, report } = await runJobToFile(`job-${scale}`, { plan, content, raster, metadata }, async () => runner, new AbortController().signal, (p) => progress.push(p.done), dir);
    const usual = await runUpscalePlan(raster, plan, { runnerFor: async () => runner, resampler: sharpResampler }, undefined, content);
    expect(JSON.stringify(report)).toBe(JSON.stringify(usual.report));
    expect(progress[progress.length - 1]).toBe(usual.report.tiles);
    expect(resultFile).toMatchObject({ width: usual.raster.width, height: usual.raster.height, channels: raster.channels, depth: raster.depth });

    const { app, get } = await serve(resultFile, metadata);
    afterCleanup.push(() => app.close());
    const raw = await get('raw');
    expect(raw.status).toBe(200);
    expect(raw.headers.get('x-upbridge-width')).toBe(String(usual.raster.width));
    expect(raw.headers.get('x-upbridge-depth')).toBe(String(raster.depth));
    expect(raw.headers.get('content-length')).toBe(String(usual.raster.data.byteLength));
    expect(raw.body.equals(bytesOf(usual.raster))).toBe(true);

    const png = await get('png');
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(png.body.equals(await fs.readFile(resultFile.path))).toBe(true);
    const decoded = await decodeImage(png.body);
    expect(bytesOf(decoded.raster).equals(bytesOf(usual.raster))).toBe(true);
    expect(decoded.metadata.density).toBe(144);

    // Other formats: byte for byte what the in-memory path (and the CLI) encodes.
    const tiff = await get('tiff');
    expect(tiff.status).toBe(200);
    expect(tiff.body.equals((await encodeImage(usual.raster, 'tiff', metadata)).bytes)).toBe(true);

    await removeResultFile(resultFile);
    await expect(fs.stat(resultFile.path)).rejects.toThrow(/ENOENT/);
  });

  test('a cancelled job leaves no file in the results folder', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'cancel-'));
    const plan = planUpscale({ model: FAST, scale: 4, tile: 16 });
    const raster = syntheticRaster(40, 40, 3, 8);
    const runner = await runnerFor(FAST);
    const controller = new AbortController();
    const job = runJobToFile('cancelled', { plan, content: resolveContent(plan, raster), raster, metadata: { format: 'png' } }, async () => runner, controller.signal, (p) => {
      if (p.done === 5) controller.abort();
    }, sub);
    await expect(job).rejects.toMatchObject({ code: 'UPB_CANCELLED' });
    expect(await fs.readdir(sub)).toEqual([]);
  });
});
