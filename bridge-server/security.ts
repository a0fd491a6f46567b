import cors from '@fastify/cors';
import { FastifyInstance, FastifyRequest } from 'fastify';
import { UpbridgeError } from '../core/errors';
import { TokenStore } from './tokens';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes reachable without a token: health, pairing, the page, the OpenAPI document. */
    public?: boolean;
  }
}

export const EXPOSED_HEADERS = ['X-Upbridge-Width', 'X-Upbridge-Height', 'X-Upbridge-Channels', 'X-Upbridge-Depth', 'Retry-After'];

/**
 * The threat is any website the user visits: it can make the browser send requests to
 * 127.0.0.1. Three layers:
 * - Host must name this server on loopback, so a DNS-rebinding page (evil.com → 127.0.0.1)
 *   is refused (421);
 * - a request carrying a foreign Origin is refused outright (403), not just denied CORS headers,
 *   because "simple" cross-site POSTs would otherwise still run;
 * - every route but health, pairing and the page needs a bearer token, which only a paired
 *   plugin (or `upbridge tokens create`) has.
 */
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

/** The origins of this server's own page. */
export function loopbackOrigins(port: number): string[] {
  return LOOPBACK_NAMES.map((h) => `http://${h}:${port}`);
}

/**
 * Photoshop's UXP runtime sends an Origin of its own scheme (`uxp://<plugin id>` or
 * `uxp-internal://…`, per peers' servers; Adobe does not document it). No browser can send such
 * an Origin, so allowing the scheme opens nothing to web pages; the token remains the lock.
 */
const UXP_ORIGIN = /^uxp(-internal)?:\/\/[\w.-]*$/i;

export function isAllowedOrigin(origin: string, allowed: ReadonlySet<string>): boolean {
  return allowed.has(origin) || UXP_ORIGIN.test(origin);
}

export async function registerSecurity(app: FastifyInstance, opts: { port: number; allowRemote: boolean; extraOrigins: string[]; tokens: TokenStore }): Promise<void> {
  const hosts = new Set(LOOPBACK_NAMES.map((h) => `${h}:${opts.port}`));
  const origins = new Set(['null', ...loopbackOrigins(opts.port), ...opts.extraOrigins]);

  app.addHook('onRequest', async (request) => {
    if (!opts.allowRemote && !hosts.has((request.headers.host ?? '').toLowerCase())) {
      throw new UpbridgeError('UPB_FORBIDDEN_HOST', `Host ${JSON.stringify(request.headers.host ?? '')} is not this server; use http://127.0.0.1:${opts.port}`);
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !isAllowedOrigin(origin, origins)) {
      throw new UpbridgeError('UPB_FORBIDDEN_ORIGIN', `requests from ${JSON.stringify(origin)} are not allowed`);
    }
  });

  await app.register(cors, {
    origin: (origin, cb) => cb(null, origin === undefined || isAllowedOrigin(origin, origins)),
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    // A preflight without Access-Control-Request-Method gets plain 204 headers, not a text 400.
    strictPreflight: false,
  });

  // Chrome's Private Network Access: a page on figma.com reaching localhost asks first, with
  // Access-Control-Request-Private-Network on the preflight. Allowed origins get the yes.
  app.addHook('onSend', async (request, reply) => {
    if (request.method === 'OPTIONS' && request.headers['access-control-request-private-network'] === 'true' && reply.getHeader('access-control-allow-origin')) {
      reply.header('access-control-allow-private-network', 'true');
    }
  });

  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS' || request.routeOptions.config?.public) return;
    await authenticate(request, opts.tokens);
  });
}

async function authenticate(request: FastifyRequest, tokens: TokenStore): Promise<void> {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) throw new UpbridgeError('UPB_UNAUTHORIZED', 'missing "Authorization: Bearer <token>"; pair with the code the server shows (POST /v1/pair)');
  if (!(await tokens.verify(match[1]))) throw new UpbridgeError('UPB_UNAUTHORIZED', 'unknown or revoked token; pair again');
}
