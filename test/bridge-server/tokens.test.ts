import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TokenStore } from '../../bridge-server/tokens';

/** The token file is read, changed and replaced whole: changes at the same moment must all be kept. */
test('pairings at the same moment all keep their tokens; a revocation beside them removes only its own', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-tokens-'));
  try {
    const store = new TokenStore(dir);
    const old = await store.create('old page');
    const made = await Promise.all([...Array.from({ length: 12 }, (_, i) => store.create(`client ${i}`)), store.revoke('old page').then(() => undefined)]);
    const tokens = made.filter((m) => m !== undefined);
    expect(tokens).toHaveLength(12);
    for (const { token, record } of tokens) await expect(store.verify(token)).resolves.toMatchObject({ id: record.id });
    await expect(store.verify(old.token)).resolves.toBeUndefined();
    // Another process reading the file sees the same twelve.
    expect((await new TokenStore(dir).list()).map((r) => r.name).sort()).toEqual(tokens.map((t) => t.record.name).sort());
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
