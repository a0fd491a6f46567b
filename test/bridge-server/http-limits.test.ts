/**
 * Limits and malformed requests over real HTTP on loopback: what is refused, with which code, and
 * that refusals happen before the body is read or decoded (so a hostile or careless client cannot
 * make the bridge buffer or decode more than it allows).
 */
import { promises as fs } from 'node:fs';
import sharp from 'sharp';
import { syntheticRaster } from '../helpers';
import { expectError, FAST_MODEL, INPUT_A, jobsPath, pngHeaderOnly, rawBody, request, startBridge, streamUpload, TestBridge } from './bridge-harness';

const RAW = { 'content-type': 'application/octet-stream' };
const PNG = { 'content-type': 'image/png' };
const MiB = 1024 * 1024;

describe('limits and malformed requests', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await startBridge({ limits: { maxBodyBytes: 4 * MiB, maxInputPixels: 1024 * 1024, maxOutputSide: 4096, maxOutputPixels: 8 * 1024 * 1024 } });
  });
  afterAll(() => bridge.close());
  afterEach(() => {
    // Nothing refused here may reach the queue.
    expect(bridge.submitted).toHaveLength(0);
  });

  describe('body size', () => {
    it('a body declared over maxBodyBytes is 413 UPB_TOO_LARGE, answered before the body is sent', async () => {
      const total = 256 * MiB;
      const result = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL }), { headers: PNG, total, token: bridge.token });
      expect(result.response).toBeDefined();
      expectError(result.response!, 413, 'UPB_TOO_LARGE');
      expect(result.finishedSending).toBe(false);
      expect(result.bytesSent).toBeLessThan(total / 4);
    });

    it('a chunked body (no Content-Length) over maxBodyBytes is cut off near the limit with 413', async () => {
      const total = 256 * MiB;
      const result = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL }), { headers: PNG, total, chunked: true, token: bridge.token });
      expect(result.response).toBeDefined();
      expectError(result.response!, 413, 'UPB_TOO_LARGE');
      expect(result.finishedSending).toBe(false);
      expect(result.bytesSent).toBeLessThan(total / 4);
    });

    it('a raw body whose descriptor is over maxBodyBytes is 413 before it is read', async () => {
      // 1024 × 1024 × 4 × 2 = 8 MiB > 4 MiB, with a Content-Length that matches the descriptor.
      const total = 1024 * 1024 * 4 * 2;
      const result = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL, scale: 1, width: 1024, height: 1024, depth: 16 }), { headers: RAW, total, token: bridge.token });
      expect(result.response).toBeDefined();
      expectError(result.response!, 413, 'UPB_TOO_LARGE');
    });
  });

  describe('raw descriptor', () => {
    it('a Content-Length not matching width × height × channels × depth/8 is 400, answered before the body is read', async () => {
      const total = 64 * MiB; // the descriptor says 64 × 64 × 4 = 16384 bytes
      const result = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL, width: 64, height: 64 }), { headers: RAW, total, token: bridge.token });
      expect(result.response).toBeDefined();
      expect(expectError(result.response!, 400, 'UPB_INVALID_OPTION').message).toMatch(/16384 bytes/);
      expect(result.finishedSending).toBe(false);
      expect(result.bytesSent).toBeLessThan(total / 4);
    });

    it('a raw body of the wrong length (too short, too long, chunked) is 400 UPB_INVALID_OPTION', async () => {
      const url = jobsPath({ model: FAST_MODEL, width: 8, height: 8, channels: 4, depth: 8 });
      expectError(await request(bridge.port, url, { method: 'POST', headers: RAW, body: Buffer.alloc(255), token: bridge.token }), 400, 'UPB_INVALID_OPTION');
      expectError(await request(bridge.port, url, { method: 'POST', headers: RAW, body: Buffer.alloc(257), token: bridge.token }), 400, 'UPB_INVALID_OPTION');
      // 16-bit needs twice the bytes.
      const url16 = jobsPath({ model: FAST_MODEL, width: 8, height: 8, channels: 4, depth: 16 });
      expectError(await request(bridge.port, url16, { method: 'POST', headers: RAW, body: Buffer.alloc(256), token: bridge.token }), 400, 'UPB_INVALID_OPTION');
      const chunked = await streamUpload(bridge.port, url, { headers: RAW, total: 300, chunked: true, token: bridge.token });
      expect(expectError(chunked.response!, 400, 'UPB_INVALID_OPTION').message).toMatch(/256 bytes/);
    });

    it('a missing or invalid descriptor is 400 UPB_INVALID_OPTION naming the option and its range', async () => {
      const body = Buffer.alloc(256);
      const cases: Array<[Record<string, string | number>, RegExp]> = [
        [{ height: 8 }, /width must be an integer from 1 to 4096/],
        [{ width: 8 }, /height must be an integer from 1 to 4096/],
        [{ width: 0, height: 8 }, /width must be an integer from 1 to 4096, got "0"/],
        [{ width: 8.5, height: 8 }, /width must be an integer/],
        [{ width: 8, height: 8, channels: 5 }, /channels must be an integer from 1 to 4/],
        [{ width: 8, height: 8, depth: 32 }, /depth must be one of 8, 16/],
        [{ width: 'eight', height: 8 }, /width must be an integer/],
      ];
      for (const [query, message] of cases) {
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, ...query }), { method: 'POST', headers: RAW, body, token: bridge.token });
        expect(expectError(res, 400, 'UPB_INVALID_OPTION').message).toMatch(message);
      }
    });
  });

  describe('pixel limits', () => {
    it('raw input over maxInputPixels is 413, answered before the body is read', async () => {
      // 2048 × 1024 = 2 Mpx > 1 Mpx; 8 MiB declared and never sent.
      const result = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL, scale: 1, width: 2048, height: 1024 }), { headers: RAW, total: 2048 * 1024 * 4, token: bridge.token });
      expect(expectError(result.response!, 413, 'UPB_TOO_LARGE').message).toMatch(/2097152 pixels; at most 1048576/);
      expect(result.finishedSending).toBe(false);
    });

    it('a PNG whose header claims 30000 × 30000 is 413 without being decoded', async () => {
      const bomb = pngHeaderOnly(30000, 30000);
      expect(bomb.length).toBeLessThan(100);
      expect(await sharp(bomb, { limitInputPixels: false }).metadata()).toMatchObject({ width: 30000, height: 30000 });
      const rssBefore = process.memoryUsage().rss;
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 1 }), { method: 'POST', headers: PNG, body: bomb, token: bridge.token });
      expect(expectError(res, 413, 'UPB_TOO_LARGE').message).toMatch(/30000×30000 = 900000000 pixels/);
      // Decoding would need 2.7 GB.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(500 * MiB);
    });

    it('the same 30000 × 30000 header is refused under the default limits too', async () => {
      const defaults = await startBridge();
      try {
        const res = await request(defaults.port, jobsPath({ model: FAST_MODEL, scale: 1 }), { method: 'POST', headers: PNG, body: pngHeaderOnly(30000, 30000), token: defaults.token });
        expectError(res, 413, 'UPB_TOO_LARGE');
        expect(defaults.submitted).toHaveLength(0);
      } finally {
        await defaults.close();
      }
    });

    it('output over maxOutputSide is 413 (raw before reading, PNG after its header)', async () => {
      // 300 × 200 at 16x = 4800 × 3200: a side over 4096.
      const raw = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL, scale: 16, width: 300, height: 200 }), { headers: RAW, total: 300 * 200 * 4, token: bridge.token });
      expect(expectError(raw.response!, 413, 'UPB_TOO_LARGE').message).toMatch(/output would be 4800×3200; at most 4096 px a side.*largest scale that fits: 11\.8\)/);
      const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#808080' } }).png().toBuffer();
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 16 }), { method: 'POST', headers: PNG, body: png, token: bridge.token });
      expect(expectError(res, 413, 'UPB_TOO_LARGE').message).toMatch(/output would be 4800×3200/);
    });

    it('output over maxOutputPixels (each side allowed) is 413', async () => {
      // 800 × 800 at 4x = 3200 × 3200 = 10.24 Mpx > 8 Mpx, both sides under 4096.
      const raw = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL, scale: 4, width: 800, height: 800 }), { headers: RAW, total: 800 * 800 * 4, token: bridge.token });
      // The largest fitting tenth: 3.6 (2880² = 8.29 Mpx); 3.7 gives 2960² = 8.76 Mpx.
      expect(expectError(raw.response!, 413, 'UPB_TOO_LARGE').message).toMatch(/output would be 3200×3200.*largest scale that fits: 3\.6\)/);
    });

    it('a raw side over maxOutputSide is refused as an option out of range', async () => {
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale: 1, width: 5000, height: 1 }), { method: 'POST', headers: RAW, body: Buffer.alloc(5000 * 4), token: bridge.token });
      expect(expectError(res, 400, 'UPB_INVALID_OPTION').message).toMatch(/width must be an integer from 1 to 4096/);
    });
  });

  describe('options', () => {
    it('a scale out of range is 400 UPB_INVALID_OPTION with the range in the message', async () => {
      const body = rawBody(syntheticRaster(8, 8, 4, 8).data);
      for (const scale of ['0.5', '17', '0', '-4', 'abc', '', 'Infinity', 'NaN']) {
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, scale, width: 8, height: 8 }), { method: 'POST', headers: RAW, body, token: bridge.token });
        expect([scale, expectError(res, 400, 'UPB_INVALID_OPTION').message]).toEqual([scale, expect.stringContaining('scale must be a number from 1 to 16')]);
      }
      // For image bodies too, before the body is read.
      const result = await streamUpload(bridge.port, jobsPath({ model: FAST_MODEL, scale: 20 }), { headers: PNG, total: 64 * MiB, token: bridge.token });
      expect(expectError(result.response!, 400, 'UPB_INVALID_OPTION').message).toMatch(/scale must be a number from 1 to 16, got "20"/);
      expect(result.finishedSending).toBe(false);
    });

    it('tile, overlap and alpha out of range are 400 UPB_INVALID_OPTION', async () => {
      const body = rawBody(syntheticRaster(8, 8, 4, 8).data);
      const cases: Array<[Record<string, string | number | boolean>, RegExp]> = [
        [{ tile: 4 }, /tile must be an integer from 16 to 4096, got "4"/],
        [{ overlap: 300 }, /overlap must be an integer from 0 to 256/],
        [{ alpha: 'blur' }, /alpha must be one of model, lanczos/],
        [{ wait: true, format: 'gif' }, /format must be one of raw, png, jpeg, webp, tiff/],
      ];
      for (const [query, message] of cases) {
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, width: 8, height: 8, ...query }), { method: 'POST', headers: RAW, body, token: bridge.token });
        expect(expectError(res, 400, 'UPB_INVALID_OPTION').message).toMatch(message);
      }
    });

    it('an unknown model is 400 UPB_UNKNOWN_MODEL naming the known ones', async () => {
      const res = await request(bridge.port, jobsPath({ model: 'nope', width: 8, height: 8 }), { method: 'POST', headers: RAW, body: Buffer.alloc(256), token: bridge.token });
      expect(expectError(res, 400, 'UPB_UNKNOWN_MODEL').message).toMatch(/unknown model "nope"; known models: realesr-general-x4v3/);
      const png = await request(bridge.port, jobsPath({ model: 'nope' }), { method: 'POST', headers: PNG, body: await fs.readFile(INPUT_A), token: bridge.token });
      expectError(png, 400, 'UPB_UNKNOWN_MODEL');
    });
  });

  describe('malformed and unsupported bodies', () => {
    it('text sent as image/png is 415 UPB_INPUT_NOT_IMAGE', async () => {
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL }), { method: 'POST', headers: PNG, body: 'this is not a picture', token: bridge.token });
      expect(expectError(res, 415, 'UPB_INPUT_NOT_IMAGE').message).toMatch(/not an image/);
    });

    it('a truncated PNG is 415 UPB_INPUT_NOT_IMAGE', async () => {
      const png = await fs.readFile(INPUT_A);
      for (const length of [png.length - 20, Math.floor(png.length / 2), 40]) {
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL }), { method: 'POST', headers: PNG, body: png.subarray(0, length), token: bridge.token });
        expect([length, res.status]).toEqual([length, 415]);
        expectError(res, 415, 'UPB_INPUT_NOT_IMAGE');
      }
    });

    it('an empty body is 415 UPB_INPUT_NOT_IMAGE as an image, 400 as raw (length mismatch)', async () => {
      for (const headers of [PNG, RAW]) {
        const query: Record<string, number> = headers === RAW ? { width: 8, height: 8 } : {};
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL, ...query }), { method: 'POST', headers, body: Buffer.alloc(0), token: bridge.token });
        // Raw: the declared length (0) does not match the descriptor, a 400; an image: 415.
        if (headers === RAW) expectError(res, 400, 'UPB_INVALID_OPTION');
        else expectError(res, 415, 'UPB_INPUT_NOT_IMAGE');
      }
    });

    it('an unsupported content type is 415 UPB_INPUT_NOT_IMAGE', async () => {
      for (const type of ['image/gif', 'text/html', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']) {
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL }), { method: 'POST', headers: { 'content-type': type }, body: 'GIF89a....', token: bridge.token });
        expect([type, res.status]).toEqual([type, 415]);
        expectError(res, 415, 'UPB_INPUT_NOT_IMAGE');
      }
    });

    it('text/plain and application/json bodies are 415 UPB_INPUT_NOT_IMAGE too, whatever they contain', async () => {
      for (const [type, body] of [
        ['text/plain', 'hello'],
        ['application/json', '{"image": "data"}'],
        ['application/json', 'not json at all'],
      ]) {
        const res = await request(bridge.port, jobsPath({ model: FAST_MODEL }), { method: 'POST', headers: { 'content-type': type }, body, token: bridge.token });
        expect([type, body, res.status]).toEqual([type, body, 415]);
        expect(expectError(res, 415, 'UPB_INPUT_NOT_IMAGE').message).not.toMatch(/empty/);
      }
    });

    it('a large text/plain or application/json body (within maxBodyBytes) is refused with 415 before it is read', async () => {
      // Default limits: 512 MiB of body allowed, so only the content type can stop this early.
      const defaults = await startBridge();
      try {
        for (const type of ['text/plain', 'application/json']) {
          const total = 64 * MiB;
          const result = await streamUpload(defaults.port, jobsPath({ model: FAST_MODEL }), { headers: { 'content-type': type }, total, token: defaults.token });
          expect([type, result.response?.status, result.finishedSending]).toEqual([type, 415, false]);
        }
      } finally {
        await defaults.close();
      }
    });

    it('a body without a content type is 415 UPB_INPUT_NOT_IMAGE', async () => {
      const res = await request(bridge.port, jobsPath({ model: FAST_MODEL }), { method: 'POST', body: await fs.readFile(INPUT_A), token: bridge.token });
      expectError(res, 415, 'UPB_INPUT_NOT_IMAGE');
    });
  });

  describe('routes', () => {
    it('an unknown route is 404 UPB_NOT_FOUND in JSON, naming the method and path', async () => {
      for (const [method, url] of [
        ['GET', '/v2/jobs'],
        ['GET', '/v1/nope?x=1'],
        ['PUT', '/v1/jobs'],
        ['POST', '/v1/health'],
      ]) {
        const res = await request(bridge.port, url, { method, token: bridge.token });
        expect(expectError(res, 404, 'UPB_NOT_FOUND').message).toBe(`no route ${method} ${url.split('?')[0]}`);
      }
    });
  });
});

describe('server memory', () => {
  it('does not grow with rejected bodies: 60 oversize or malformed requests stay under +100 MB RSS', async () => {
    const bridge = await startBridge({ limits: { maxBodyBytes: 8 * MiB, maxInputPixels: 1024 * 1024 } });
    try {
      const url = jobsPath({ model: FAST_MODEL });
      const garbage = Buffer.alloc(6 * MiB, 0x5a);
      const send = async (i: number) => {
        switch (i % 4) {
          case 0: // declared over the limit
            return (await streamUpload(bridge.port, url, { headers: PNG, total: 64 * MiB, token: bridge.token })).response?.status;
          case 1: // chunked over the limit: read up to the limit, then refused
            return (await streamUpload(bridge.port, url, { headers: PNG, total: 64 * MiB, chunked: true, token: bridge.token })).response?.status;
          case 2: // within the limit but not an image: read, refused, dropped
            return (await request(bridge.port, url, { method: 'POST', headers: PNG, body: garbage, token: bridge.token })).status;
          default: // a decompression bomb's header
            return (await request(bridge.port, url, { method: 'POST', headers: PNG, body: pngHeaderOnly(30000, 30000), token: bridge.token })).status;
        }
      };
      // Warm up allocators and caches, then measure.
      for (let i = 0; i < 8; i++) await send(i);
      const before = process.memoryUsage().rss;
      const statuses: Array<number | undefined> = [];
      for (let i = 0; i < 60; i++) statuses.push(await send(i));
      const grown = process.memoryUsage().rss - before;
      expect(new Set(statuses)).toEqual(new Set([413, 415]));
      expect(grown).toBeLessThan(100 * MiB);
      expect(bridge.submitted).toHaveLength(0);
    } finally {
      await bridge.close();
    }
  });
});
