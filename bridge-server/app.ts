import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ErrorCode, isUpbridgeError, UpbridgeError } from '../core/errors';
import { STREAM_MIN_OUTPUT_PIXELS } from '../core/node/upscale-stream';
import { BridgeLimits, BridgeOptions, DEFAULT_LIMITS, Engine } from './config';
import { HTTP_STATUS } from './http-status';
import { InProcessQueue, JobQueue } from './queue';
import { infoRoutes, VERSION } from './routes/info';
import { BridgeJobInput, jobExecutor, jobRoutes } from './routes/jobs';
import { pairRoutes } from './routes/pair';
import { webEngineRoutes } from './routes/web-engine';
import { newResultDir } from './result-file';
import { registerSecurity } from './security';
import { Pairing, TokenStore } from './tokens';

export interface BridgeDeps {
  engine: Engine;
  tokens: TokenStore;
  pairing: Pairing;
  logger?: boolean;
  /** TLS for serve --allow-remote. */
  https?: { key: Buffer; cert: Buffer };
  /** Another queue than the in-process one: BullMQ on Redis for serve --queue (redis-queue.ts). */
  queue?: JobQueue<BridgeJobInput>;
}

export interface Bridge {
  app: FastifyInstance;
  queue: JobQueue<BridgeJobInput>;
  limits: BridgeLimits;
  /** Where this server keeps results on disk (created on first use, removed on close). */
  resultDir: string;
}

/** The page's static files: dist/page beside the bundle, or from a source checkout after `npm run build`. */
function pageDir(): string {
  const candidates = [path.join(__dirname, 'page'), path.join(__dirname, '..', 'dist', 'page')];
  return candidates.find((d) => existsSync(path.join(d, 'page.js'))) ?? candidates[0];
}

function errorBody(code: ErrorCode, message: string) {
  return { error: { code, message } };
}

/** Maps fastify's own errors (validation, body limit, media type, rate limit) onto our codes. */
function toUpbridgeError(error: FastifyError): UpbridgeError {
  if (isUpbridgeError(error)) return error;
  if (error.validation) return new UpbridgeError('UPB_INVALID_OPTION', error.message);
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new UpbridgeError('UPB_TOO_LARGE', 'request body is larger than the server accepts');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UpbridgeError('UPB_INPUT_NOT_IMAGE', 'send image/png, image/jpeg, image/webp, image/tiff, or raw pixels as application/octet-stream');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new UpbridgeError('UPB_INVALID_OPTION', error.message);
  }
  if (error.statusCode === 429) return new UpbridgeError('UPB_RATE_LIMITED', 'too many pairing attempts; wait a minute');
  if (error.statusCode && error.statusCode < 500) return new UpbridgeError('UPB_INVALID_OPTION', error.message);
  return new UpbridgeError('UPB_INTERNAL', `internal error: ${error.message}`);
}

export async function buildBridge(options: BridgeOptions, deps: BridgeDeps): Promise<Bridge> {
  const limits: BridgeLimits = { ...DEFAULT_LIMITS, ...options.limits };
  // One folder per server, so two bridges in one process (tests) never share or remove each other's files.
  const resultDir = options.resultDir ?? newResultDir();
  const files = { dir: resultDir, minOutputPixels: options.resultFileMinPixels ?? STREAM_MIN_OUTPUT_PIXELS };
  const queue = deps.queue ?? new InProcessQueue<BridgeJobInput>(jobExecutor(deps.engine, files), {
    capacity: options.queueCapacity ?? 16,
    resultTtlMs: options.resultTtlMs ?? 10 * 60 * 1000,
    resultBudgetBytes: options.resultBudgetBytes ?? 4 * 1024 ** 3,
    resultFileBudgetBytes: options.resultFileBudgetBytes ?? 16 * 1024 ** 3,
    // The input's pixels are not needed once the job has run; its metadata is (to encode results).
    releaseInput: (input) => {
      input.raster = { width: 0, height: 0, channels: input.raster.channels, depth: input.raster.depth, data: new Uint8Array(0) };
    },
  });
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: 64 * 1024,
    forceCloseConnections: true,
    // A client that announces a body and stalls does not hold its connection forever.
    requestTimeout: 60_000,
    // Errors raised before routing (bad URL encoding, over-long ids) get our JSON body too.
    frameworkErrors: (error, _request, reply) => {
      const code: ErrorCode = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'UPB_JOB_NOT_FOUND' : 'UPB_INVALID_OPTION';
      void (reply as unknown as FastifyReply).code(HTTP_STATUS[code]).send(errorBody(code, error.message));
    },
    // ... and so do requests Node's HTTP parser refuses (malformed, oversized headers).
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
      const code: ErrorCode = tooLarge ? 'UPB_HEADERS_TOO_LARGE' : 'UPB_INVALID_OPTION';
      const body = JSON.stringify(errorBody(code, tooLarge ? 'request line and headers are too large' : 'malformed HTTP request'));
      socket.end(`HTTP/1.1 ${HTTP_STATUS[code]} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
    ...(deps.https ? { https: deps.https } : {}),
  }) as unknown as FastifyInstance;

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const e = toUpbridgeError(error);
    if (e.code === 'UPB_INTERNAL') request.log.error(error);
    if (e.code === 'UPB_QUEUE_FULL') reply.header('retry-after', String(e.details?.retryAfterSeconds ?? 5));
    return reply.code(HTTP_STATUS[e.code]).send(errorBody(e.code, e.message));
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody('UPB_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)));

  await app.register(swagger, {
    openapi: {
      info: { title: 'upbridge', version: VERSION, description: 'Local AI upscaling bridge. Every route but /v1/health and /v1/pair needs Authorization: Bearer <token>.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await registerSecurity(app, { port: options.port, allowRemote: options.allowRemote ?? false, extraOrigins: options.extraOrigins ?? [], tokens: deps.tokens });
  await app.register(rateLimit, { global: false });

  await app.register(infoRoutes, { engine: deps.engine, queue, limits });
  await app.register(pairRoutes, { pairing: deps.pairing, tokens: deps.tokens, port: options.port, perMinute: options.pairingRateLimitPerMinute ?? 10 });
  await app.register(jobRoutes, { queue, limits, maxEventStreams: options.maxEventStreams ?? 64 });
  // The page's "in this browser" engine: ORT's .wasm and the web model's graph (issue 10).
  await app.register(webEngineRoutes, {});

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  const dir = pageDir();
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    const html = await fs.readFile(path.join(dir, 'index.html'), 'utf8').catch(() => null);
    if (html === null) throw new UpbridgeError('UPB_NOT_FOUND', 'the page is not built; run npm run build');
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      // Not framable, not readable by other origins.
      .header('content-security-policy', "frame-ancestors 'none'")
      .header('x-frame-options', 'DENY')
      .header('cross-origin-resource-policy', 'same-origin')
      // Cross-origin isolated: the page loads nothing from other origins anyway, and isolation
      // lets onnxruntime-web run wasm on several threads ("in this browser").
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-embedder-policy', 'require-corp')
      .send(html);
  });
  app.get('/page.js', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    const script = await fs.readFile(path.join(dir, 'page.js')).catch(() => null);
    if (script === null) throw new UpbridgeError('UPB_NOT_FOUND', 'the page is not built; run npm run build');
    return reply.header('content-type', 'text/javascript; charset=utf-8').send(script);
  });

  app.addHook('onClose', async () => {
    await queue.close();
    // What the queue removed file by file, and whatever an aborted job was still writing.
    await fs.rm(resultDir, { recursive: true, force: true });
  });
  return { app, queue, limits, resultDir };
}
