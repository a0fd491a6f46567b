import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { BatchEvent, listBatchInputs, MANIFEST_NAME, runBatch } from '../../bridge-server/batch';
import { localRunner } from '../../bridge-server/batch-cli';
import { syntheticRaster } from '../helpers';

/**
 * The manifest is rewritten after every image. One of those writes failing (a NAS hiccup, a full
 * disk, an indexer holding the file) must not end the batch nor stop later writes.
 */
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-batch-manifest-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

test('a failed manifest write after one image is a warning: every image still runs and the next write records them all', async () => {
  const input = path.join(dir, 'in');
  await fs.mkdir(input, { recursive: true });
  for (const [i, name] of ['a.png', 'b.png', 'c.png'].entries()) {
    const r = syntheticRaster(20, 16, 3, 8, 11 + i);
    await sharp(Buffer.from(r.data), { raw: { width: 20, height: 16, channels: 3 } }).png().toFile(path.join(input, name));
  }
  const out = path.join(dir, 'out');
  // A folder where the manifest goes: the atomic rename onto it fails, as a locked file would.
  await fs.mkdir(path.join(out, MANIFEST_NAME), { recursive: true });
  const events: BatchEvent[] = [];
  const items = await listBatchInputs([input], out);
  const { summary } = await runBatch(items, { scale: '2', content: 'photo', alpha: 'model', tile: '32', overlap: '8' }, out, localRunner(undefined, true), {
    onEvent: (e) => {
      events.push(e);
      // The obstacle goes once the first write has failed.
      if (e.type === 'warning') void fs.rm(path.join(out, MANIFEST_NAME), { recursive: true, force: true });
    },
  });
  const warnings = events.filter((e) => e.type === 'warning');
  expect(warnings.length).toBeGreaterThanOrEqual(1);
  expect(warnings[0]).toMatchObject({ message: expect.stringMatching(/^could not update upbridge-manifest\.json \(.+\); the batch goes on and writes it again after the next image$/) });
  expect(summary).toMatchObject({ total: 3, done: 3, failed: 0 });
  const manifest = JSON.parse(await fs.readFile(path.join(out, MANIFEST_NAME), 'utf8'));
  expect(manifest.items.map((i: { key: string; status: string }) => [i.key, i.status])).toEqual([
    ['a.png', 'done'],
    ['b.png', 'done'],
    ['c.png', 'done'],
  ]);
  expect((await fs.readdir(out)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});
