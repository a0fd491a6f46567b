/**
 * The bridge's three layers against a web page the user happens to visit, over real HTTP on
 * loopback: the Host check (DNS rebinding), the Origin check (cross-site requests, CORS) and bearer
 * tokens (pairing, revocation, storage).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { syntheticRaster } from '../helpers';
import { expectError, FAST_MODEL, freePort, jobsPath, rawBody, request, ROOT, startBridge, TestBridge } from './bridge-harness';

const runFile = promisify(execFile);
/** The real CLI (the esbuild bundle), on the server's token folder, as a user runs it beside `serve`. */
const cli = (configDir: string, ...args: string[]) =>
  runFile(process.execPath, [path.join(ROOT, 'bin', 'upbridge.js'), ...args], { env: { ...process.env, UPBRIDGE_CONFIG_DIR: configDir } });

const JSON_CT = { 'content-type': 'application/json' };
/** A cheap protected route: 404 UPB_JOB_NOT_FOUND means the request got past Host, Origin and token checks. */
const PROTECTED = '/v1/jobs/00000000-0000-4000-8000-000000000000';
const passedChecks = (res: { status: number; json(): any }) => res.status === 404 && res.json().error.code === 'UPB_JOB_NOT_FOUND';

describe('bearer tokens', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await startBridge();
  });
  afterAll(() => bridge.close());

  it('a protected route without a token is 401 UPB_UNAUTHORIZED', async () => {
    for (const [method, url] of [
      ['GET', '/v1/models'],
      ['POST', jobsPath({ model: FAST_MODEL, width: 4, height: 4 })],
      ['GET', '/v1/jobs/00000000-0000-4000-8000-000000000000'],
      ['DELETE', '/v1/jobs/00000000-0000-4000-8000-000000000000'],
      ['GET', '/v1/jobs/00000000-0000-4000-8000-000000000000/events'],
    ]) {
      const res = await request(bridge.port, url, { method, headers: method === 'POST' ? { 'content-type': 'application/octet-stream' } : {}, body: method === 'POST' ? Buffer.alloc(64) : undefined });
      expect(expectError(res, 401, 'UPB_UNAUTHORIZED').message).toMatch(/Authorization: Bearer/);
    }
  });

  it('a job is not submitted without a valid token, whatever its body', async () => {
    const body = rawBody(syntheticRaster(8, 8, 4, 8).data);
    const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, width: 8, height: 8 }), { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body, token: 'upb_not-a-token' });
    expectError(res, 401, 'UPB_UNAUTHORIZED');
    expect(bridge.submitted).toHaveLength(0);
  });

  it('a wrong or malformed token is 401 UPB_UNAUTHORIZED', async () => {
    for (const authorization of [`Bearer ${bridge.token}x`, `Bearer upb_${'A'.repeat(43)}`, `Basic ${bridge.token}`, `Bearer`, `Bearer ${bridge.token} extra`, bridge.token]) {
      expectError(await request(bridge.port, '/v1/models', { headers: { authorization } }), 401, 'UPB_UNAUTHORIZED');
    }
  });

  it('a valid token works, the scheme case-insensitively', async () => {
    expect(passedChecks(await request(bridge.port, PROTECTED, { token: bridge.token }))).toBe(true);
    expect(passedChecks(await request(bridge.port, PROTECTED, { headers: { authorization: `bearer ${bridge.token}` } }))).toBe(true);
    expect((await request(bridge.port, '/v1/models', { token: bridge.token })).status).toBe(200);
  });

  it('a revoked token is 401 at once', async () => {
    const { token } = await bridge.tokens.create('to-revoke');
    expect(passedChecks(await request(bridge.port, PROTECTED, { token }))).toBe(true);
    await bridge.tokens.revoke('to-revoke');
    expectError(await request(bridge.port, PROTECTED, { token }), 401, 'UPB_UNAUTHORIZED');
    // Other tokens are unaffected.
    expect(passedChecks(await request(bridge.port, PROTECTED, { token: bridge.token }))).toBe(true);
  });

  it('a token made by `upbridge tokens create` while the server runs works at once', async () => {
    const { stdout } = await cli(bridge.dir, 'tokens', 'create', '--name', 'cli-made');
    const token = stdout.trim().split('\n').pop()!;
    expect(token).toMatch(/^upb_/);
    expect(passedChecks(await request(bridge.port, PROTECTED, { token }))).toBe(true);
  });

  it('a token revoked by `upbridge tokens revoke` while the server runs is 401 at once', async () => {
    const { token } = await bridge.tokens.create('cli-revoked');
    expect(passedChecks(await request(bridge.port, PROTECTED, { token }))).toBe(true);
    await cli(bridge.dir, 'tokens', 'revoke', 'cli-revoked');
    expectError(await request(bridge.port, PROTECTED, { token }), 401, 'UPB_UNAUTHORIZED');
  });

  it('/v1/health, /v1/pair and /openapi.json need no token', async () => {
    expect((await request(bridge.port, '/v1/health')).status).toBe(200);
    expect((await request(bridge.port, '/openapi.json')).status).toBe(200);
    // Without a token, pairing is judged on its code (403), not refused as unauthorised (401).
    expectError(await request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body: JSON.stringify({ code: 'XXXXXX' }) }), 403, 'UPB_PAIRING_FAILED');
  });

  it('the tokens file is mode 0600 and holds only hashes, never a token', async () => {
    const { token } = await bridge.tokens.create('file-check');
    const stat = await fs.stat(bridge.tokens.file);
    expect((stat.mode & 0o777).toString(8)).toBe('600');
    const text = await fs.readFile(bridge.tokens.file, 'utf8');
    for (const t of [token, bridge.token]) {
      expect(text).not.toContain(t);
      expect(text).not.toContain(t.slice(4)); // nor its random part
      expect(text).toContain(createHash('sha256').update(t).digest('hex'));
    }
  });
});

describe('Host check (DNS rebinding)', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await startBridge();
  });
  afterAll(() => bridge.close());

  it('a foreign Host is 421 UPB_FORBIDDEN_HOST, before authentication and on public routes', async () => {
    const otherPort = bridge.port === 65535 ? 65534 : bridge.port + 1;
    for (const host of [`evil.example:${bridge.port}`, `127.0.0.1:${otherPort}`, 'evil.example', '127.0.0.1', `127.0.0.1.evil.example:${bridge.port}`]) {
      for (const [url, token] of [
        ['/v1/health', undefined],
        ['/v1/models', bridge.token],
        ['/v1/models', undefined],
      ] as const) {
        const res = await request(bridge.port, url, { headers: { host }, token });
        expect(expectError(res, 421, 'UPB_FORBIDDEN_HOST').message).toContain(`http://127.0.0.1:${bridge.port}`);
      }
    }
  });

  it('a foreign Host cannot submit a job even with a valid token', async () => {
    const body = rawBody(syntheticRaster(8, 8, 4, 8).data);
    const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, width: 8, height: 8 }), {
      method: 'POST',
      headers: { host: `evil.example:${bridge.port}`, 'content-type': 'application/octet-stream' },
      body,
      token: bridge.token,
    });
    expectError(res, 421, 'UPB_FORBIDDEN_HOST');
    expect(bridge.submitted).toHaveLength(0);
  });

  it('127.0.0.1, localhost and [::1] on this port are accepted, in any case', async () => {
    for (const host of [`127.0.0.1:${bridge.port}`, `localhost:${bridge.port}`, `LOCALHOST:${bridge.port}`, `[::1]:${bridge.port}`]) {
      expect([host, (await request(bridge.port, '/openapi.json', { headers: { host } })).status]).toEqual([host, 200]);
      expect([host, passedChecks(await request(bridge.port, PROTECTED, { headers: { host }, token: bridge.token }))]).toEqual([host, true]);
    }
  });

  it('the Host check uses the configured port, so a server on another port refuses this one\'s Host', async () => {
    const port = await freePort();
    expect(port).not.toBe(bridge.port);
    expectError(await request(bridge.port, '/v1/health', { headers: { host: `localhost:${port}` } }), 421, 'UPB_FORBIDDEN_HOST');
  });
});

describe('Origin check and CORS', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await startBridge({ extraOrigins: ['https://www.figma.com'] });
  });
  afterAll(() => bridge.close());

  it('a foreign Origin is 403 UPB_FORBIDDEN_ORIGIN, even on /v1/health and with a valid token', async () => {
    for (const origin of ['https://evil.example', `http://127.0.0.1:${bridge.port + 1}`, `https://127.0.0.1:${bridge.port}`, 'http://127.0.0.1', 'NULL', '', 'uxp://evil.example/path', 'uxpx://plugin']) {
      for (const [url, token] of [
        ['/v1/health', undefined],
        ['/v1/models', bridge.token],
        ['/v1/pair', undefined],
      ] as const) {
        const res = await request(bridge.port, url, { headers: { origin }, token });
        expect(expectError(res, 403, 'UPB_FORBIDDEN_ORIGIN').message).toContain(JSON.stringify(origin));
        expect(res.headers['access-control-allow-origin']).toBeUndefined();
      }
    }
  });

  it('a "simple" cross-site POST (text/plain, no preflight) from a foreign Origin runs nothing', async () => {
    const res = await request(bridge.port, jobsPath({ model: FAST_MODEL }), {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
      body: 'x'.repeat(100),
      token: bridge.token,
    });
    expectError(res, 403, 'UPB_FORBIDDEN_ORIGIN');
    expect(bridge.submitted).toHaveLength(0);
  });

  it('Origin null (Figma), this server\'s own origins and configured extra origins are allowed and echoed', async () => {
    for (const origin of ['null', `http://127.0.0.1:${bridge.port}`, `http://localhost:${bridge.port}`, 'https://www.figma.com']) {
      const res = await request(bridge.port, PROTECTED, { headers: { origin }, token: bridge.token });
      expect([origin, passedChecks(res), res.headers['access-control-allow-origin']]).toEqual([origin, true, origin]);
      expect(res.headers['access-control-expose-headers']?.toLowerCase()).toContain('x-upbridge-width');
      expect(res.headers['access-control-expose-headers']?.toLowerCase()).toContain('retry-after');
    }
  });

  it("Photoshop's UXP origins (uxp://<plugin id>, uxp-internal://) are allowed, and still need the token", async () => {
    for (const origin of ['uxp://com.upbridge.photoshop', 'uxp-internal://', 'uxp://uxp-internal']) {
      const res = await request(bridge.port, PROTECTED, { headers: { origin }, token: bridge.token });
      expect([origin, passedChecks(res), res.headers['access-control-allow-origin']]).toEqual([origin, true, origin]);
      expectError(await request(bridge.port, PROTECTED, { headers: { origin } }), 401, 'UPB_UNAUTHORIZED');
    }
  });

  it('errors to an allowed origin also carry CORS headers, so the page can read them', async () => {
    const res = await request(bridge.port, '/v1/models', { headers: { origin: 'null' } });
    expectError(res, 401, 'UPB_UNAUTHORIZED');
    expect(res.headers['access-control-allow-origin']).toBe('null');
  });

  it('a CORS preflight from an allowed origin succeeds without a token and allows Authorization', async () => {
    for (const origin of ['null', `http://127.0.0.1:${bridge.port}`]) {
      const res = await request(bridge.port, '/v1/jobs', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(res.status).toBeLessThan(300);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(res.headers['access-control-allow-methods']).toMatch(/POST/);
      expect(res.headers['access-control-allow-headers']?.toLowerCase()).toMatch(/(^|,\s*)authorization(,|$)/);
      expect(res.headers['access-control-allow-headers']?.toLowerCase()).toContain('content-type');
    }
  });

  it("a Private Network Access preflight (Figma's iframe reaching localhost) is allowed for allowed origins only", async () => {
    const preflight = (origin: string) =>
      request(bridge.port, '/v1/jobs', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization', 'access-control-request-private-network': 'true' },
      });
    const allowed = await preflight('null');
    expect([allowed.status, allowed.headers['access-control-allow-private-network']]).toEqual([204, 'true']);
    const foreign = await preflight('https://evil.example');
    expect(foreign.status).toBe(403);
    expect(foreign.headers['access-control-allow-private-network']).toBeUndefined();
  });

  it('a CORS preflight from a foreign origin is refused (403, no CORS headers)', async () => {
    const res = await request(bridge.port, '/v1/jobs', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expectError(res, 403, 'UPB_FORBIDDEN_ORIGIN');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['access-control-allow-headers']).toBeUndefined();
  });

  it('SSE responses carry the CORS headers of an allowed origin', async () => {
    const body = rawBody(syntheticRaster(8, 8, 4, 8).data);
    const sync = await request(bridge.port, jobsPath({ model: FAST_MODEL, width: 8, height: 8, wait: true }), { method: 'POST', headers: { 'content-type': 'application/octet-stream', origin: 'null' }, body, token: bridge.token });
    expect(sync.status).toBe(200);
    expect(sync.headers['access-control-allow-origin']).toBe('null');
    const id = bridge.submitted[bridge.submitted.length - 1].id;
    const res = await request(bridge.port, `/v1/jobs/${id}/events`, { headers: { origin: 'null' }, token: bridge.token });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('null');
    expect(res.text).toBe('event: done\ndata: {"type":"done"}\n\n');
  });
});

describe('pairing', () => {
  let bridge: TestBridge;
  beforeEach(async () => {
    bridge = await startBridge();
  });
  afterEach(() => bridge.close());

  const pair = (code: unknown, extra: Record<string, unknown> = {}) =>
    request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body: JSON.stringify({ code, ...extra }) });

  it('the right code gives a token that works; the code is shown through onNewCode', async () => {
    const code = bridge.pairing.current();
    expect(code).toMatch(/^[A-HJKMNP-Z2-9]{6}$/);
    expect(bridge.codes[bridge.codes.length - 1]).toBe(code);
    const res = await pair(code, { name: 'photoshop' });
    expect(res.status).toBe(200);
    const { token } = res.json();
    expect(token).toMatch(/^upb_[A-Za-z0-9_-]{43}$/);
    expect(passedChecks(await request(bridge.port, PROTECTED, { token }))).toBe(true);
    expect((await bridge.tokens.list()).map((r) => r.name)).toContain('photoshop');
  });

  it('the code is accepted case-insensitively and with surrounding spaces', async () => {
    const res = await pair(` ${bridge.pairing.current().toLowerCase()} `);
    expect(res.status).toBe(200);
  });

  it('a wrong code is 403 UPB_PAIRING_FAILED and gives no token', async () => {
    const before = (await bridge.tokens.list()).length;
    const code = bridge.pairing.current();
    const wrong = code[0] === 'A' ? `B${code.slice(1)}` : `A${code.slice(1)}`;
    for (const guess of [wrong, '', 'ABC', code + 'A']) expectError(await pair(guess), 403, 'UPB_PAIRING_FAILED');
    expect((await bridge.tokens.list()).length).toBe(before);
  });

  it('a code with non-ASCII characters is a wrong code (403), not a server error', async () => {
    // Six characters but more than six bytes: timingSafeEqual must not see buffers of different lengths.
    for (const guess of ['ÄBCDEF', 'ĀĀĀĀĀĀ', '€€€€€€']) expectError(await pair(guess), 403, 'UPB_PAIRING_FAILED');
  });

  it('the code is single-use: it rotates after a successful pairing', async () => {
    const code = bridge.pairing.current();
    expect((await pair(code)).status).toBe(200);
    expect(bridge.pairing.current()).not.toBe(code);
    expectError(await pair(code), 403, 'UPB_PAIRING_FAILED');
    expect((await pair(bridge.pairing.current())).status).toBe(200);
  });

  it('wrong guesses do not rotate the code (no local page can keep the user from pairing)', async () => {
    const code = bridge.pairing.current();
    const wrong = code[0] === 'A' ? `B${code.slice(1)}` : `A${code.slice(1)}`;
    for (let i = 0; i < 8; i++) expectError(await pair(wrong), 403, 'UPB_PAIRING_FAILED');
    expect(bridge.pairing.current()).toBe(code);
    expect((await pair(code)).status).toBe(200);
  });

  it('the page holds no pairing code and cannot be framed or read by another origin', async () => {
    const res = await request(bridge.port, '/');
    expect(res.status).toBe(200);
    expect(res.body.toString()).not.toContain(bridge.pairing.current());
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
  });

  it("only the bridge's own page pairs without a code: its Origin, same-site, over loopback", async () => {
    const pagePair = (headers: Record<string, string>) => request(bridge.port, '/v1/pair/page', { method: 'POST', headers });
    const own = `http://127.0.0.1:${bridge.port}`;
    // A sandboxed iframe or file: page anywhere sends Origin: null; a website sends its own origin.
    const refused: Record<string, string>[] = [{}, { origin: 'null' }, { origin: own, 'sec-fetch-site': 'cross-site' }];
    for (const headers of refused) expectError(await pagePair(headers), 403, 'UPB_PAIRING_FAILED');
    for (const origin of ['https://evil.example', `http://127.0.0.1:${bridge.port + 1}`]) expectError(await pagePair({ origin }), 403, 'UPB_FORBIDDEN_ORIGIN');
    const first = await pagePair({ origin: own, 'sec-fetch-site': 'same-origin' });
    expect(first.status).toBe(200);
    const token = (JSON.parse(first.body.toString()) as { token: string }).token;
    expect((await request(bridge.port, '/v1/models', { token })).status).toBe(200);
    // A second page (another browser profile) replaces the first page token instead of adding one.
    const second = await pagePair({ origin: `http://localhost:${bridge.port}` });
    expect(second.status).toBe(200);
    expectError(await request(bridge.port, '/v1/models', { token }), 401, 'UPB_UNAUTHORIZED');
    expect((await bridge.tokens.list()).filter((t) => t.name === 'upbridge page')).toHaveLength(1);
  });

  it('a token name with control characters is refused (it is printed by `upbridge tokens list`)', async () => {
    expectError(await pair(bridge.pairing.current(), { name: 'evil\u001b[2J' }), 400, 'UPB_INVALID_OPTION');
  });

  it('a malformed pairing body is 400 UPB_INVALID_OPTION', async () => {
    expectError(await pair({ code: 'AAAAAA' }), 400, 'UPB_INVALID_OPTION');
    expectError(await pair('A'.repeat(33)), 400, 'UPB_INVALID_OPTION');
    expectError(await request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body: '{}' }), 400, 'UPB_INVALID_OPTION');
    expectError(await request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body: '{not json' }), 400, 'UPB_INVALID_OPTION');
    expectError(await request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body: JSON.stringify({ code: 'AAAAAA', name: 'n'.repeat(65) }) }), 400, 'UPB_INVALID_OPTION');
  });

  it('a pairing body over the server\'s small JSON limit is 413 UPB_TOO_LARGE', async () => {
    const res = await request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body: JSON.stringify({ code: 'A'.repeat(100 * 1024) }) });
    expectError(res, 413, 'UPB_TOO_LARGE');
  });
});

describe('pairing rate limit', () => {
  it('more than pairingRateLimitPerMinute attempts are 429 UPB_RATE_LIMITED, even with the right code', async () => {
    const bridge = await startBridge({ pairingRateLimitPerMinute: 3 });
    try {
      const body = JSON.stringify({ code: 'AAAAAA' });
      for (let i = 0; i < 3; i++) expectError(await request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body }), 403, 'UPB_PAIRING_FAILED');
      const limited = await request(bridge.port, '/v1/pair', { method: 'POST', headers: JSON_CT, body: JSON.stringify({ code: bridge.pairing.current() }) });
      expectError(limited, 429, 'UPB_RATE_LIMITED');
      // Other routes are not rate limited.
      expect((await request(bridge.port, '/openapi.json')).status).toBe(200);
    } finally {
      await bridge.close();
    }
  });
});
