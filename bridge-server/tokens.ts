import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import envPaths from 'env-paths';
import { UpbridgeError } from '../core/errors';
import { writeFileAtomic } from '../core/node/atomic-write';
import { oneAtATime } from '../core/one-at-a-time';

/** Where tokens live: $UPBRIDGE_CONFIG_DIR, else the platform config folder (env-paths). */
export function configDir(): string {
  return process.env.UPBRIDGE_CONFIG_DIR || envPaths('upbridge', { suffix: '' }).config;
}

export interface TokenRecord {
  id: string;
  name: string;
  /** sha256 of the token: the file never holds a usable token. */
  sha256: string;
  createdAt: string;
}

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Long-lived bearer tokens, stored hashed in tokens.json (mode 0600) in the config folder. Tokens
 * are 256-bit random, so a plain hash is enough (no password stretching needed).
 */
export class TokenStore {
  readonly file: string;
  private cache?: { records: TokenRecord[]; stamp: string };
  /** Changes one at a time, each reading the list afresh: two pairings at once must both be kept. */
  private readonly change = oneAtATime();

  constructor(dir: string = configDir()) {
    this.file = path.join(dir, 'tokens.json');
  }

  /**
   * The file's identity: `upbridge tokens create/revoke` in another process replaces it (atomic
   * rename, so a new inode), and a running server must see that at once, above all a revocation.
   */
  private async stamp(): Promise<string> {
    const st = await fs.stat(this.file).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    return st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'absent';
  }

  async list(): Promise<TokenRecord[]> {
    const stamp = await this.stamp();
    if (this.cache?.stamp !== stamp) {
      const records = stamp === 'absent' ? [] : (JSON.parse(await fs.readFile(this.file, 'utf8')) as TokenRecord[]);
      this.cache = { records, stamp };
    }
    return this.cache.records;
  }

  private async save(records: TokenRecord[]): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file, JSON.stringify(records, null, 2) + '\n');
    await fs.chmod(this.file, 0o600);
    this.cache = { records, stamp: await this.stamp() };
  }

  /** Returns the token itself; only its hash is kept. */
  create(name: string): Promise<{ token: string; record: TokenRecord }> {
    return this.change(async () => {
      const token = `upb_${randomBytes(32).toString('base64url')}`;
      const record: TokenRecord = { id: randomBytes(4).toString('hex'), name, sha256: hash(token), createdAt: new Date().toISOString() };
      await this.save([...(await this.list()), record]);
      return { token, record };
    });
  }

  /** Revokes by id or by name (every token of that name). */
  revoke(idOrName: string): Promise<TokenRecord[]> {
    return this.change(async () => {
      const records = await this.list();
      const gone = records.filter((r) => r.id === idOrName || r.name === idOrName);
      if (gone.length === 0) throw new UpbridgeError('UPB_INVALID_OPTION', `no token with id or name ${JSON.stringify(idOrName)}`);
      await this.save(records.filter((r) => !gone.includes(r)));
      return gone;
    });
  }

  async verify(token: string): Promise<TokenRecord | undefined> {
    const digest = Buffer.from(hash(token), 'hex');
    return (await this.list()).find((r) => {
      const stored = Buffer.from(r.sha256, 'hex');
      // A damaged record must not make every request fail (timingSafeEqual throws on lengths).
      return stored.length === digest.length && timingSafeEqual(stored, digest);
    });
  }
}

/** Unambiguous characters: no 0/O, 1/I/L. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const PAIRING_CODE_LENGTH = 6;
const CODE_TTL_MS = 10 * 60 * 1000;

/**
 * The short one-time code a person copies from the server's console into a plugin. It changes
 * after each successful pairing and after ten minutes. Wrong guesses do not rotate it (that would
 * let any local page keep the user from pairing); the rate limit (10 a minute) allows about 100
 * guesses in a code's lifetime against 31^6 ≈ 887M codes.
 */
export class Pairing {
  private code = '';
  private expiresAt = 0;

  constructor(
    private readonly tokens: TokenStore,
    private readonly onNewCode: (code: string) => void = () => {},
  ) {
    this.rotate();
  }

  current(): string {
    if (Date.now() > this.expiresAt) this.rotate();
    return this.code;
  }

  private rotate(): void {
    this.code = Array.from({ length: PAIRING_CODE_LENGTH }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
    this.expiresAt = Date.now() + CODE_TTL_MS;
    this.onNewCode(this.code);
  }

  async pair(code: string, name: string): Promise<string> {
    const expected = this.current();
    const given = Buffer.from(code.trim().toUpperCase());
    const want = Buffer.from(expected);
    // timingSafeEqual needs equal byte lengths (non-ASCII characters take several bytes).
    const ok = given.length === want.length && timingSafeEqual(given, want);
    if (!ok) {
      throw new UpbridgeError('UPB_PAIRING_FAILED', 'wrong or expired pairing code; use the code the upbridge server shows now');
    }
    this.rotate();
    return (await this.tokens.create(name)).token;
  }
}
