import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { catalogue, findModel, ModelEntry } from '../../core/catalogue';
import { UpbridgeError } from '../../core/errors';
import { Raster } from '../../core/raster';
import { upscaleRaster, validateUpscaleOptions, UpscaleOptions } from '../../core/upscale';
import { encodeImage, ImageMetadata, sharpResampler } from '../../core/node/image-io';
import { oneOf } from '../../core/validate';
import { BridgeLimits, Engine } from '../config';
import { decodeBody, IMAGE_CONTENT_TYPES, precheckBody, RAW_CONTENT_TYPE, RESULT_FORMATS, TransferFormat } from '../job-input';
import { InProcessQueue, Job, JobEvent } from '../queue';

export interface BridgeJobInput {
  model: ModelEntry;
  options: Omit<UpscaleOptions, 'signal' | 'onProgress'>;
  raster: Raster;
  metadata: ImageMetadata;
  format: TransferFormat;
}

export type BridgeJob = Job<BridgeJobInput>;

/** Runs one job: the same pipeline call as the CLI, so results are identical byte for byte. */
export function jobExecutor(engine: Engine) {
  return async (input: BridgeJobInput, signal: AbortSignal, onProgress: (p: { done: number; total: number }) => void) => {
    const runner = await engine.runner(input.model.id);
    const result = await upscaleRaster(input.raster, runner, input.model.scale, sharpResampler, { ...input.options, signal, onProgress });
    return result.raster;
  };
}

const JobQuery = Type.Object({
  model: Type.Optional(Type.String({ description: `model id; default ${catalogue.defaultModel}` })),
  scale: Type.Optional(Type.String({ description: 'output scale, 1 to 16, fractional allowed; default 4' })),
  tile: Type.Optional(Type.String({ description: 'tile size in input pixels, 16 to 4096; default per model' })),
  overlap: Type.Optional(Type.String({ description: 'context pixels around each tile, 0 to 256; default per model' })),
  alpha: Type.Optional(Type.String({ description: 'model | lanczos' })),
  width: Type.Optional(Type.String({ description: 'raw bodies: width in pixels' })),
  height: Type.Optional(Type.String({ description: 'raw bodies: height in pixels' })),
  channels: Type.Optional(Type.String({ description: 'raw bodies: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (default)' })),
  depth: Type.Optional(Type.String({ description: 'raw bodies: 8 or 16 (little-endian); default 8' })),
  wait: Type.Optional(Type.String({ description: 'true: answer with the result when done; a client that disconnects cancels the job' })),
  format: Type.Optional(Type.String({ description: 'with wait=true: result format, raw | png | jpeg | webp | tiff' })),
});

const IdParams = Type.Object({ id: Type.String() });
const ErrorBody = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });

const JobStatus = Type.Object({
  id: Type.String(),
  state: Type.Union(['queued', 'running', 'done', 'failed', 'cancelled'].map((s) => Type.Literal(s))),
  model: Type.String(),
  scale: Type.Number(),
  progress: Type.Object({ done: Type.Number(), total: Type.Number() }),
  timings: Type.Object({ queuedMs: Type.Number(), runMs: Type.Number() }),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  result: Type.Object({
    available: Type.Boolean(),
    expired: Type.Boolean(),
    width: Type.Optional(Type.Number()),
    height: Type.Optional(Type.Number()),
  }),
});

function status(job: BridgeJob) {
  return {
    id: job.id,
    state: job.state,
    model: job.input.model.id,
    scale: job.input.options.scale,
    progress: job.progress,
    timings: job.timings(),
    ...(job.error ? { error: job.error } : {}),
    result: {
      available: job.result !== undefined,
      expired: job.resultExpired,
      ...(job.result ? { width: job.result.width, height: job.result.height } : {}),
    },
  };
}

export async function sendResult(reply: FastifyReply, job: BridgeJob, format: TransferFormat): Promise<FastifyReply> {
  const raster = job.result;
  if (!raster) {
    if (job.resultExpired) throw new UpbridgeError('UPB_RESULT_EXPIRED', `the result of job ${job.id} was dropped after the retention time; submit it again`);
    const why = job.state === 'failed' ? `failed: ${job.error?.message}` : `is ${job.state}`;
    throw new UpbridgeError('UPB_RESULT_NOT_READY', `job ${job.id} ${why}`);
  }
  if (format === 'raw') {
    // The pixels go out as they are: a view on the result, not a copy.
    return reply
      .header('content-type', RAW_CONTENT_TYPE)
      .header('x-upbridge-width', raster.width)
      .header('x-upbridge-height', raster.height)
      .header('x-upbridge-channels', raster.channels)
      .header('x-upbridge-depth', raster.depth)
      .send(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength));
  }
  const { bytes } = await encodeImage(raster, format, job.input.metadata);
  return reply.header('content-type', `image/${format}`).send(bytes);
}

/** A comment line every so often, so a client (or proxy) that went away is noticed and freed. */
const HEARTBEAT_MS = 15_000;

export async function jobRoutes(app: FastifyInstance, opts: { queue: InProcessQueue<BridgeJobInput>; limits: BridgeLimits; maxEventStreams: number }): Promise<void> {
  const { queue, limits } = opts;
  let openStreams = 0;
  const getJob = (id: string): BridgeJob => {
    const job = queue.get(id);
    if (!job) throw new UpbridgeError('UPB_JOB_NOT_FOUND', `no job ${JSON.stringify(id)} (finished jobs are forgotten after a while)`);
    return job;
  };

  // What preParsing validated from the query, for the handler (validated once per request).
  const validated = new WeakMap<FastifyRequest, Pick<BridgeJobInput, 'model' | 'options'>>();

  for (const type of [RAW_CONTENT_TYPE, ...IMAGE_CONTENT_TYPES]) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes }, (_req, body, done) => done(null, body));
  }

  app.post(
    '/v1/jobs',
    {
      schema: {
        summary: 'Submit an image: raw pixels (application/octet-stream + width/height/channels/depth) or PNG/JPEG/WebP/TIFF',
        querystring: JobQuery,
        response: { 202: Type.Object({ id: Type.String() }), '4xx': ErrorBody },
      },
      bodyLimit: limits.maxBodyBytes,
      preParsing: async (request, _reply, payload) => {
        // A full queue answers 429 before the body is read, not after buffering and decoding it.
        queue.checkRoom();
        const q = request.query as Record<string, unknown>;
        const model = findModel(String(q.model ?? catalogue.defaultModel));
        const options = validateUpscaleOptions(q, model);
        precheckBody(request, options.scale, limits);
        validated.set(request, { model, options });
        return payload;
      },
    },
    async (request, reply) => {
      const q = request.query as Record<string, string | undefined>;
      const { model, options } = validated.get(request)!;
      const wait = q.wait === 'true' || q.wait === '1';
      const resultFormat = q.format === undefined ? undefined : oneOf('format', q.format, RESULT_FORMATS);
      const decoded = await decodeBody(request, request.body as Buffer, options.scale, limits);
      const job = queue.submit({ model, options, ...decoded });
      if (!wait) return reply.code(202).send({ id: job.id });

      // Synchronous: answer with the image; a client that goes away cancels its job.
      const onClose = () => {
        if (!reply.raw.writableFinished) queue.cancel(job.id);
      };
      reply.raw.once('close', onClose);
      await finished(job);
      if (job.state === 'done') return sendResult(reply, job, resultFormat ?? job.input.format);
      if (job.state === 'failed') throw new UpbridgeError(job.error!.code as never, job.error!.message);
      throw new UpbridgeError('UPB_CANCELLED', `job ${job.id} was cancelled`);
    },
  );

  app.get('/v1/jobs/:id', { schema: { summary: 'Job state, progress, timings, error', params: IdParams, response: { 200: JobStatus, '4xx': ErrorBody } } }, async (request) =>
    status(getJob((request.params as { id: string }).id)),
  );

  app.delete('/v1/jobs/:id', { schema: { summary: 'Cancel a job (a running one stops within one tile)', params: IdParams, response: { 200: JobStatus, '4xx': ErrorBody } } }, async (request) =>
    status(queue.cancel((request.params as { id: string }).id)),
  );

  app.get(
    '/v1/jobs/:id/result',
    { schema: { summary: 'The result image; default format: the input\'s', params: IdParams, querystring: Type.Object({ format: Type.Optional(Type.String({ description: 'raw | png | jpeg | webp | tiff' })) }) } },
    async (request, reply) => {
      const job = getJob((request.params as { id: string }).id);
      const q = request.query as { format?: string };
      return sendResult(reply, job, q.format === undefined ? job.input.format : oneOf('format', q.format, RESULT_FORMATS));
    },
  );

  app.get('/v1/jobs/:id/events', { schema: { summary: 'Server-sent events: queued, running, progress (per tile), done | failed | cancelled', params: IdParams } }, async (request, reply) => {
    const job = getJob((request.params as { id: string }).id);
    if (!job.finished && openStreams >= opts.maxEventStreams) {
      throw new UpbridgeError('UPB_RATE_LIMITED', `too many open event streams (${opts.maxEventStreams}); poll GET /v1/jobs/${job.id} instead`);
    }
    reply.hijack();
    reply.raw.writeHead(200, { ...(reply.getHeaders() as Record<string, string>), 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (event: JobEvent) => reply.raw.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    const stop = () => {
      job.events.off('event', onEvent);
      reply.raw.end();
    };
    const onEvent = (event: JobEvent) => {
      send(event);
      if (job.finished) stop();
    };
    // Replay where the job stands, so a late subscriber still sees a complete story.
    if (job.state === 'queued') send({ type: 'queued', position: 0 });
    if (job.state === 'running') {
      send({ type: 'running' });
      if (job.progress.total > 0) send({ type: 'progress', progress: job.progress });
    }
    const ended = job.terminalEvent();
    if (ended) {
      send(ended);
      reply.raw.end();
      return;
    }
    openStreams++;
    const heartbeat = setInterval(() => reply.raw.write(':\n\n'), HEARTBEAT_MS);
    job.events.on('event', onEvent);
    reply.raw.once('close', () => {
      openStreams--;
      clearInterval(heartbeat);
      job.events.off('event', onEvent);
    });
  });
}

function finished(job: BridgeJob): Promise<void> {
  if (job.finished) return Promise.resolve();
  return new Promise((resolve) => {
    const onEvent = () => {
      if (job.finished) {
        job.events.off('event', onEvent);
        resolve();
      }
    };
    job.events.on('event', onEvent);
  });
}
