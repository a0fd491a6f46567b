import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { UpbridgeError } from '../../core/errors';
import { ModelStore } from '../../core/node/model-store';
import { ORT_WASM_FILE, ORT_WASM_GLUE_FILE, ORT_WEBGPU_WASM_FILE } from '../../core/web/ort-files';
import { WEB_DEFAULT_MODEL } from '../../core/web/web-model';

/**
 * What the page's "in this browser" engine (core/web) needs from the bridge, so it works on a
 * machine without internet: onnxruntime-web's two .wasm builds (and the glue threads start from)
 * from the installed package, and the
 * default web model's converted graph from the model store. The page checks both against hashes
 * pinned in its own bundle (the .wasm by build-time sha256, the graph by the catalogue's
 * onnxSha256), so these routes are trusted for nothing. Public like the page itself: they serve
 * only public files (an npm package's and a BSD-licensed model), and the Host/Origin checks still
 * apply. Only the default web model, which the bridge installs at start anyway, so no request
 * here can start another model's download.
 */
const ORT_FILES = new Set([ORT_WASM_FILE, ORT_WEBGPU_WASM_FILE, ORT_WASM_GLUE_FILE]);

/** onnxruntime-web's dist folder (its Node entry lives there; package.json is not exported). */
function ortDist(): string {
  return path.dirname(require.resolve('onnxruntime-web'));
}

export async function webEngineRoutes(app: FastifyInstance, options: { store?: ModelStore }): Promise<void> {
  const store = options.store ?? new ModelStore();

  app.get<{ Params: { file: string } }>('/web/ort/:file', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    const { file } = request.params;
    if (!ORT_FILES.has(file)) throw new UpbridgeError('UPB_NOT_FOUND', `no runtime file ${file}`);
    const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript; charset=utf-8';
    return reply.header('content-type', type).header('cache-control', 'max-age=86400').send(createReadStream(path.join(ortDist(), file)));
  });

  app.get<{ Params: { file: string } }>('/web/models/:file', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    if (request.params.file !== `${WEB_DEFAULT_MODEL}.onnx`) throw new UpbridgeError('UPB_NOT_FOUND', `the page's engine runs ${WEB_DEFAULT_MODEL} only`);
    const installed = await store.ensureOne(WEB_DEFAULT_MODEL);
    return reply.header('content-type', 'application/octet-stream').header('cache-control', 'no-cache').send(createReadStream(installed.onnxPath));
  });
}
