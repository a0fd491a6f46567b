import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { catalogue } from '../core/catalogue';
import { buildBridge } from './app';
import { nodeEngine } from './engine';
import { freePort } from './free-port';
import { Pairing, TokenStore } from './tokens';

function request(port: number, token: string, method: string, url: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {}) } }, (res) => {
      // Read into one buffer of the announced size: a plugin gets the pixels the same way, and
      // collecting thousands of chunks then concatenating them would be the client's cost, not the bridge's.
      const length = Number(res.headers['content-length']);
      const body = Number.isFinite(length) ? Buffer.allocUnsafe(length) : Buffer.alloc(0);
      const chunks: Buffer[] = [];
      let offset = 0;
      res.on('data', (c: Buffer) => {
        if (offset + c.length <= body.length) c.copy(body, offset);
        else chunks.push(c);
        offset += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: chunks.length === 0 ? body.subarray(0, offset) : Buffer.concat([body, ...chunks]) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves when the job's event stream says it is over. */
function untilFinished(port: number, token: string, id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: `/v1/jobs/${id}/events`, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(/event: (done|failed|cancelled)/.exec(text)?.[1] ?? 'unknown'));
      })
      .on('error', reject);
  });
}

/**
 * What the bridge adds on top of the pipeline, for a size×size RGBA8 raw upload at 4x: upload,
 * queue, events and the raw download, measured by a client on loopback, as a fraction of the
 * job's own run time (the pipeline: tiling, inference, blending).
 */
export async function runBridgeBenchmark(size: number) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-bench-'));
  const port = await freePort();
  const tokens = new TokenStore(dir);
  const { app, queue } = await buildBridge({ port }, { engine: nodeEngine(), tokens, pairing: new Pairing(tokens) });
  await app.listen({ port, host: '127.0.0.1' });
  try {
    const { token } = await tokens.create('bench');
    const model = catalogue.defaultModel;
    const submit = async (side: number) => {
      const pixels = Buffer.alloc(side * side * 4);
      for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + (i >> 10)) & 0xff;
      for (let i = 3; i < pixels.length; i += 4) pixels[i] = 255;
      const started = performance.now();
      const posted = await request(port, token, 'POST', `/v1/jobs?model=${model}&scale=4&width=${side}&height=${side}&channels=4&depth=8`, pixels);
      if (posted.status !== 202) throw new Error(`submit failed: ${posted.status} ${posted.body}`);
      const { id } = JSON.parse(posted.body.toString());
      const state = await untilFinished(port, token, id);
      if (state !== 'done') throw new Error(`job ${state}`);
      const result = await request(port, token, 'GET', `/v1/jobs/${id}/result?format=raw`);
      const totalMs = performance.now() - started;
      if (result.body.length !== side * 4 * side * 4 * 4) throw new Error(`result has ${result.body.length} bytes`);
      return { totalMs, runMs: queue.get(id)!.timings().runMs };
    };
    await submit(64); // warm-up: session creation
    const { totalMs, runMs } = await submit(size);
    return {
      model,
      input: `${size}x${size} RGBA8 raw`,
      output: `${size * 4}x${size * 4}`,
      clientSeconds: Number((totalMs / 1000).toFixed(3)),
      jobRunSeconds: Number((runMs / 1000).toFixed(3)),
      bridgeOverheadFraction: Number(((totalMs - runMs) / runMs).toFixed(4)),
    };
  } finally {
    await app.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
