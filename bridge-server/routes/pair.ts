import { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { UpbridgeError } from '../../core/errors';
import { loopbackOrigins } from '../security';
import { Pairing, TokenStore } from '../tokens';

export const PAGE_TOKEN_NAME = 'upbridge page';

export async function pairRoutes(app: FastifyInstance, opts: { pairing: Pairing; tokens: TokenStore; port: number; perMinute: number }): Promise<void> {
  const rateLimit = { max: opts.perMinute, timeWindow: 60_000 };

  app.post(
    '/v1/pair',
    {
      config: { public: true, rateLimit },
      schema: {
        summary: 'Exchange the one-time pairing code the server shows for a long-lived token',
        body: Type.Object({ code: Type.String({ maxLength: 32 }), name: Type.Optional(Type.String({ pattern: '^[\\x20-\\x7e]{1,64}$' })) }),
        response: { 200: Type.Object({ token: Type.String() }) },
      },
    },
    async (request) => {
      const body = request.body as { code: string; name?: string };
      return { token: await opts.pairing.pair(body.code, body.name ?? 'plugin') };
    },
  );

  // The server's own page pairs without a code: the browser names the page's origin in `Origin`,
  // which no other page can forge, and "null" (sandboxed iframes, file: pages) is not this origin.
  // It must also come over loopback, so --allow-remote does not hand tokens to the network.
  const own = new Set(loopbackOrigins(opts.port));
  app.post(
    '/v1/pair/page',
    { config: { public: true, rateLimit }, schema: { summary: "The bridge's own page pairs itself (same origin only)", response: { 200: Type.Object({ token: Type.String() }) } } },
    async (request) => {
      const origin = request.headers.origin;
      const site = request.headers['sec-fetch-site'];
      const loopback = ['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(request.socket.remoteAddress ?? '');
      if (!origin || !own.has(origin) || (site !== undefined && site !== 'same-origin') || !loopback) {
        throw new UpbridgeError('UPB_PAIRING_FAILED', "only the bridge's own page can pair without a code; plugins pair with the code the server shows");
      }
      // One page token at a time: a new browser profile replaces the last one instead of piling up.
      await opts.tokens.revoke(PAGE_TOKEN_NAME).catch(() => undefined);
      return { token: (await opts.tokens.create(PAGE_TOKEN_NAME)).token };
    },
  );
}
