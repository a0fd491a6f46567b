import { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { Pairing } from '../tokens';

export async function pairRoutes(app: FastifyInstance, opts: { pairing: Pairing; perMinute: number }): Promise<void> {
  app.post(
    '/v1/pair',
    {
      config: { public: true, rateLimit: { max: opts.perMinute, timeWindow: 60_000 } },
      schema: {
        summary: 'Exchange the one-time pairing code the server shows for a long-lived token',
        body: Type.Object({ code: Type.String({ maxLength: 32 }), name: Type.Optional(Type.String({ maxLength: 64 })) }),
        response: { 200: Type.Object({ token: Type.String() }) },
      },
    },
    async (request) => {
      const body = request.body as { code: string; name?: string };
      return { token: await opts.pairing.pair(body.code, body.name ?? 'plugin') };
    },
  );
}
