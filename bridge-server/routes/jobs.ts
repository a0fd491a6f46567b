import { randomUUID } from 'node:crypto';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { catalogue } from '../../core/catalogue';
import { UpbridgeError } from '../../core/errors';
import { mapToRaster } from '../../core/fidelity/detail-map';
import { checkModeLimits, planUpscale, resolveContent, resultModel, runUpscalePlan, UpscalePlan } from '../../core/modes';
import { Raster } from '../../core/raster';
import { checkFormatFits, encodeImage, ImageMetadata, sharpResampler } from '../../core/node/image-io';
import { outputSize } from '../../core/scale';
import { oneOf } from '../../core/validate';
import { BridgeLimits, Engine } from '../config';
import { decodeBody, IMAGE_CONTENT_TYPES, precheckBody, RAW_CONTENT_TYPE, RESULT_FORMATS, TransferFormat } from '../job-input';
import { Job, JobEvent, JobOutput, JobQueue } from '../queue';
import { resultGoesToFile, runJobToFile, sendResultFile } from '../result-file';

export interface BridgeJobInput {
  plan: UpscalePlan;
  /** Resolved at submit time (auto: detected from the pixels), so the status names the model from the start. */
  content: ReturnType<typeof resolveContent>;
  raster: Raster;
  metadata: ImageMetadata;
  format: TransferFormat;
}

export type BridgeJob = Job<BridgeJobInput>;

/** Where results kept on disk go, and from which output size on (result-file.ts). */
export interface ResultFileOptions {
  dir: string;
  minOutputPixels: number;
}

/**
 * Runs one job: the same pipeline call as the CLI, so results are identical byte for byte. A huge
 * output of a single model is written to a PNG in `files.dir` as its rows are made, as the CLI
 * writes it (result-file.ts); everything else is kept in memory.
 */
export function jobExecutor(engine: Engine, files?: ResultFileOptions) {
  return async (input: BridgeJobInput, signal: AbortSignal, onProgress: (p: { done: number; total: number }) => void, onStage: (stage: string) => void = () => {}): Promise<JobOutput> => {
    const runnerFor = (id: string) => engine.runner(id, (step) => onStage(`installing ${id} (first use): ${step}`));
    if (files && resultGoesToFile(input.plan, input.raster, files.minOutputPixels)) {
      const run = await runJobToFile(
        randomUUID(),
        input,
        async (id) => {
          const runner = await runnerFor(id);
          // As runUpscalePlan's onStep: the stage is named once the model is ready to run.
          onStage(STAGE_NAMES.result);
          return runner;
        },
        signal,
        onProgress,
        files.dir,
      );
      return { resultFile: run.resultFile, report: { ...run.report } };
    }
    const runtime = {
      runnerFor: (m: { id: string }) => runnerFor(m.id),
      resampler: sharpResampler,
      signal,
      onProgress,
      onStep: (step: string) => onStage(STAGE_NAMES[step] ?? step),
    };
    const result = await runUpscalePlan(input.raster, input.plan, runtime, undefined, input.content);
    return { raster: result.raster, map: result.map && mapToRaster(result.map), report: { ...result.report } };
  };
}

const STAGE_NAMES: Record<string, string> = {
  result: 'model',
  fidelity: 'fidelity model',
  creative: 'creative model',
  'colour-fix': 'colour fix',
  projection: 'consistency projection',
  map: 'invented-detail map',
};

const JobQuery = Type.Object({
  model: Type.Optional(Type.String({ description: `model id; default ${catalogue.defaultModel}` })),
  scale: Type.Optional(Type.String({ description: 'output scale, 1 to 16, fractional allowed; default 4' })),
  tile: Type.Optional(Type.String({ description: 'tile size in input pixels, 16 to 4096; default per model' })),
  overlap: Type.Optional(Type.String({ description: 'context pixels around each tile, 0 to 256; default per model' })),
  alpha: Type.Optional(Type.String({ description: 'model | lanczos' })),
  mode: Type.Optional(Type.String({ description: 'fidelity | balanced | creative: which models run and how (default: none, the model alone)' })),
  creativity: Type.Optional(Type.String({ description: 'with a mode: 0 (the fidelity result) to 1 (the creative result), blended in between' })),
  content: Type.Optional(Type.String({ description: 'auto | photo | illustration: which models a mode picks; default auto (detected)' })),
  tta: Type.Optional(Type.String({ description: '4 | 8: average the model over flips/turns' })),
  map: Type.Optional(Type.String({ description: 'true: also make the invented-detail map (GET /v1/jobs/:id/map)' })),
  consistent: Type.Optional(Type.String({ description: 'true: project the result onto the input (default in fidelity mode); false: never' })),
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
  stage: Type.Optional(Type.String({ description: 'what a running job does now, in words: installing a model on first use, which model, colour fix, projection, map' })),
  timings: Type.Object({ queuedMs: Type.Number(), runMs: Type.Number() }),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  result: Type.Object({
    available: Type.Boolean(),
    expired: Type.Boolean(),
    width: Type.Optional(Type.Number()),
    height: Type.Optional(Type.Number()),
    map: Type.Boolean(),
  }),
  report: Type.Optional(
    Type.Object(
      {
        mode: Type.Optional(Type.String()),
        content: Type.String(),
        contentDetected: Type.Boolean(),
        creativity: Type.Optional(Type.Number()),
        consistent: Type.Boolean(),
        tta: Type.Optional(Type.Number()),
        models: Type.Record(Type.String(), Type.String()),
        lrPsnr: Type.Number({ description: 'PSNR between the result downscaled (area average) and the input, dB; 100 = identical' }),
        map: Type.Optional(
          Type.Object({
            mean: Type.Number(),
            shareOver: Type.Number({ description: 'share of pixels over 0.5' }),
            regions: Type.Array(Type.Object({ x: Type.Number(), y: Type.Number(), width: Type.Number(), height: Type.Number(), pixels: Type.Number() })),
          }),
        ),
        tiles: Type.Number(),
        passes: Type.Number(),
      },
      { additionalProperties: true },
    ),
  ),
});

function status(job: BridgeJob) {
  return {
    id: job.id,
    state: job.state,
    model: resultModel(job.input.plan, job.input.content.content).id,
    scale: job.input.plan.scale,
    progress: job.progress,
    ...(job.state === 'running' && job.stage ? { stage: job.stage } : {}),
    timings: job.timings(),
    ...(job.error ? { error: job.error } : {}),
    result: {
      available: (job.result ?? job.resultFile) !== undefined,
      expired: job.resultExpired,
      ...(job.result ? { width: job.result.width, height: job.result.height } : {}),
      ...(job.resultFile ? { width: job.resultFile.width, height: job.resultFile.height } : {}),
      map: job.map !== undefined,
    },
    ...(job.report ? { report: job.report } : {}),
  };
}

export async function sendResult(reply: FastifyReply, job: BridgeJob, format: TransferFormat, which: 'result' | 'map' = 'result'): Promise<FastifyReply> {
  if (which === 'map' && !job.input.plan.map) throw new UpbridgeError('UPB_NO_MAP', `job ${job.id} was submitted without map=true; submit it again with map=true to get its invented-detail map`);
  // A result kept on disk: PNG and raw streamed from the file, other formats encoded from it.
  if (which === 'result' && job.resultFile) return sendResultFile(reply, job.resultFile, format, job.input.metadata);
  const raster = which === 'map' ? job.map : job.result;
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
  // The map is a measurement, not the user's image: none of the input's metadata goes with it.
  const { bytes } = await encodeImage(raster, format, which === 'map' ? {} : job.input.metadata);
  return reply.header('content-type', `image/${format}`).send(bytes);
}

/** A comment line every so often, so a client (or proxy) that went away is noticed and freed. */
const HEARTBEAT_MS = 15_000;

export async function jobRoutes(app: FastifyInstance, opts: { queue: JobQueue<BridgeJobInput>; limits: BridgeLimits; maxEventStreams: number }): Promise<void> {
  const { queue, limits } = opts;
  let openStreams = 0;
  const getJob = (id: string): BridgeJob => {
    const job = queue.get(id);
    if (!job) throw new UpbridgeError('UPB_JOB_NOT_FOUND', `no job ${JSON.stringify(id)} (finished jobs are forgotten after a while)`);
    return job;
  };

  // What preParsing validated from the query, for the handler (validated once per request).
  const validated = new WeakMap<FastifyRequest, UpscalePlan>();

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
        // A bad query or header is named first (it would fail on retry too); then a full queue
        // answers 429 before the body is read, not after buffering and decoding it.
        const q = request.query as Record<string, unknown>;
        const plan = planUpscale(q);
        precheckBody(request, plan.scale, limits, (width, height) => checkModeLimits(plan, width, height));
        queue.checkRoom();
        validated.set(request, plan);
        return payload;
      },
    },
    async (request, reply) => {
      const q = request.query as Record<string, string | undefined>;
      const plan = validated.get(request)!;
      const wait = q.wait === 'true' || q.wait === '1';
      const resultFormat = q.format === undefined ? undefined : oneOf('format', q.format, RESULT_FORMATS);
      const decoded = await decodeBody(request, request.body as Buffer, plan.scale, limits, (width, height) => checkModeLimits(plan, width, height));
      // A synchronous answer's format is known now: a result it cannot hold is refused before any
      // inference, as the CLI does, not after (an asynchronous job's result can be fetched as PNG).
      const answerFormat = resultFormat ?? decoded.format;
      if (wait && answerFormat !== 'raw') {
        const size = outputSize(decoded.raster.width, decoded.raster.height, plan.scale);
        checkFormatFits(answerFormat, size.width, size.height);
      }
      const job = queue.submit({ plan, content: resolveContent(plan, decoded.raster), ...decoded });
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

  app.get(
    '/v1/jobs/:id/map',
    {
      schema: {
        summary: 'The invented-detail map of a job submitted with map=true: grey, output size, black = supported by the input, white = invented',
        params: IdParams,
        querystring: Type.Object({ format: Type.Optional(Type.String({ description: 'png (default) | raw | webp | tiff' })) }),
      },
    },
    async (request, reply) => {
      const job = getJob((request.params as { id: string }).id);
      const q = request.query as { format?: string };
      return sendResult(reply, job, q.format === undefined ? 'png' : oneOf('format', q.format, RESULT_FORMATS), 'map');
    },
  );

  app.get('/v1/jobs/:id/events', { schema: { summary: 'Server-sent events: queued, running, stage (what runs, in words), progress (per tile), done | failed | cancelled', params: IdParams } }, async (request, reply) => {
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
      if (job.stage) send({ type: 'stage', stage: job.stage });
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
