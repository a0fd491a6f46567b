import { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { catalogue } from '../../core/catalogue';
import { BridgeLimits, Engine } from '../config';

declare const UPBRIDGE_VERSION: string | undefined;
/** Injected by the esbuild bundle; tests run from source. */
export const VERSION = typeof UPBRIDGE_VERSION === 'string' ? UPBRIDGE_VERSION : 'dev';

export async function infoRoutes(app: FastifyInstance, opts: { engine: Engine; queue: { readonly length: number }; limits: BridgeLimits }): Promise<void> {
  app.get(
    '/v1/health',
    {
      config: { public: true },
      schema: {
        summary: 'Is the bridge up: version, providers, models ready, queue length (no token needed)',
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            version: Type.String(),
            providers: Type.Array(Type.String()),
            modelsReady: Type.Array(Type.String()),
            queue: Type.Object({ length: Type.Number() }),
            limits: Type.Object(
              { maxBodyBytes: Type.Number(), maxInputPixels: Type.Number(), maxOutputSide: Type.Number(), maxOutputPixels: Type.Number() },
              { description: 'what a job may be; plugins offer only scales that fit' },
            ),
          }),
        },
      },
    },
    async () => ({ ok: true, version: VERSION, providers: await opts.engine.providers(), modelsReady: await opts.engine.readyModels(), queue: { length: opts.queue.length }, limits: opts.limits }),
  );

  app.get(
    '/v1/models',
    {
      schema: {
        summary: 'The model catalogue, with what is ready to run',
        response: {
          200: Type.Object({
            defaultModel: Type.String(),
            modeDefaults: Type.Record(Type.String(), Type.Record(Type.String(), Type.String()), { description: 'per content type (photo, illustration), the model each mode runs (fidelity, balanced, creative)' }),
            models: Type.Array(
              Type.Object({ id: Type.String(), name: Type.String(), description: Type.String(), scale: Type.Number(), licence: Type.String(), ready: Type.Boolean(), default: Type.Boolean() }),
            ),
          }),
        },
      },
    },
    async () => {
      const ready = new Set(await opts.engine.readyModels());
      return {
        defaultModel: catalogue.defaultModel,
        modeDefaults: catalogue.modeDefaults,
        models: catalogue.models.map((m) => ({
          id: m.id,
          name: m.name,
          description: m.description,
          scale: m.scale,
          licence: m.licence,
          ready: ready.has(m.id),
          default: m.id === catalogue.defaultModel,
        })),
      };
    },
  );
}
