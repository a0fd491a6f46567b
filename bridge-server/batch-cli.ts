import * as path from 'node:path';
import { MultiBar, Presets } from 'cli-progress';
import { Command, Option } from 'commander';
import { catalogue, MODEL_MODES } from '../core/catalogue';
import { UpbridgeError } from '../core/errors';
import { CREATIVITY_LIMITS } from '../core/fidelity/creativity';
import { TTA_TRANSFORM_COUNTS } from '../core/fidelity/tta';
import { CONTENT_CHOICES } from '../core/modes';
import { OUTPUT_FORMATS } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { PROVIDER_CHOICES } from '../core/node/providers';
import { upscaleFile } from '../core/node/upscale-file';
import { ALPHA_MODES, LIMITS } from '../core/upscale';
import { integerInRange, oneOf } from '../core/validate';
import { BatchEvent, BatchRunner, BatchSettings, checkSettings, listBatchInputs, MANIFEST_NAME, runBatch } from './batch';
import { BATCH_BENCH_DEFAULTS, runBatchBenchmark } from './bench-batch';
import { DirectoryStore } from './job-store';
import { withCustomModels } from './models-cli';
import { queueBatchRunner, redisOptions, startWorker } from './redis-queue';
import { onInterrupt } from '../core/node/temp-files';

interface BatchCommandOptions {
  output: string;
  scale: string;
  model?: string;
  mode?: string;
  creativity?: string;
  content: string;
  tta?: string;
  consistent?: boolean;
  tile?: string;
  overlap?: string;
  alpha: string;
  format?: string;
  provider?: string;
  json?: boolean;
  queue?: string;
  store?: string;
}

const PROVIDER_HELP = `execution provider: ${PROVIDER_CHOICES.join(', ')} (default: $UPBRIDGE_PROVIDER or auto; see \`upbridge doctor\`)`;

/** In this process, one image at a time: the single-image path (`upbridge upscale`), unchanged. */
export function localRunner(provider: string | undefined, quiet: boolean): BatchRunner {
  const store = new ModelStore();
  return {
    concurrency: 1,
    async run(item, settings, signal, onProgress) {
      const { format: _f, ...upscaleSettings } = settings;
      const report = await upscaleFile({
        input: item.input,
        output: item.output,
        ...upscaleSettings,
        provider,
        store,
        signal,
        onProgress,
        onInstallStep: (id, step) => {
          if (!quiet) process.stderr.write(`model ${id}: ${step}...\n`);
        },
      });
      const { exifKept: _e, ...rest } = report;
      return { model: report.model, report: rest as unknown as Record<string, unknown> };
    },
  };
}

/** A bar with ETA over the images on a terminal; a plain line per image otherwise (or JSON lines with --json). */
function batchReporter(json: boolean, tty: boolean) {
  let bar: ReturnType<MultiBar['create']> | undefined;
  let multi: MultiBar | undefined;
  return {
    event(e: BatchEvent) {
      if (e.type === 'start') {
        if (json) process.stdout.write(JSON.stringify({ event: 'start', total: e.total, toRun: e.toRun, skipped: e.skipped }) + '\n');
        else if (e.skipped > 0) process.stderr.write(`${e.skipped} of ${e.total} images already done (verified by sha256); ${e.toRun} to go\n`);
        if (!json && tty && e.toRun > 0) {
          multi = new MultiBar({ format: 'batch [{bar}] {value}/{total} images | ETA {eta_formatted} | {file}', stream: process.stderr, hideCursor: true, etaBuffer: 20 }, Presets.shades_classic);
          bar = multi.create(e.toRun, 0, { file: '' });
        }
      } else if (e.type === 'progress') {
        bar?.update({ file: `${e.key} ${e.done}/${e.total} tiles` });
      } else if (e.type === 'warning') {
        if (json) process.stdout.write(JSON.stringify({ event: 'warning', message: e.message }) + '\n');
        else if (multi) multi.log(`warning: ${e.message}\n`);
        else process.stderr.write(`warning: ${e.message}\n`);
      } else {
        const { entry } = e;
        if (json) process.stdout.write(JSON.stringify({ event: 'image', ...entry, repaired: e.repaired }) + '\n');
        else {
          const line = entry.status === 'done' ? `[${e.index}/${e.toRun}] ${entry.key}: done in ${entry.seconds} s${e.repaired ? ' (its earlier output was damaged: redone)' : ''}${entry.worker ? ` on ${entry.worker}` : ''}` : `[${e.index}/${e.toRun}] ${entry.key}: FAILED: ${entry.error?.message} [${entry.error?.code}]`;
          if (multi) multi.log(line + '\n');
          else process.stdout.write(line + '\n');
        }
        bar?.increment(1, { file: entry.key });
      }
    },
    stop() {
      multi?.stop();
      multi = undefined;
      bar = undefined;
    },
  };
}

export function registerBatchCommands(program: Command): void {
  program
    .command('batch')
    .description('upscale every image of a folder or glob into an output folder, resumably, with a JSON manifest')
    .argument('<inputs...>', "input folder(s), quoted glob(s) such as 'shoot/**/*.jpg', or files")
    .requiredOption('-o, --output <dir>', `output folder: the same relative paths, and ${MANIFEST_NAME}`)
    .option('-s, --scale <n>', `output scale, ${LIMITS.scale.min}–${LIMITS.scale.max}, fractional allowed`, '4')
    .option('-m, --model <id|file.onnx>', `model id or your own .onnx (default: ${catalogue.defaultModel}; with --mode, the mode's model)`)
    .addOption(new Option('--mode <mode>', 'fidelity, balanced or creative (as `upbridge upscale`)').choices([...MODEL_MODES]))
    .option('--creativity <c>', `with --mode: ${CREATIVITY_LIMITS.min} to ${CREATIVITY_LIMITS.max}`)
    .addOption(new Option('--content <type>', 'which models a mode picks').choices([...CONTENT_CHOICES]).default('auto'))
    .addOption(new Option('--tta <n>', 'average the model over 4 or 8 flips/turns').choices(TTA_TRANSFORM_COUNTS.map(String)))
    .option('--consistent', 'project each result so that downscaling it gives back its input (default in fidelity mode)')
    .option('--no-consistent', 'never project')
    .option('--tile <px>', `tile size in input pixels, ${LIMITS.tile.min}–${LIMITS.tile.max} (default: tuned)`)
    .option('--overlap <px>', `context pixels around each tile, ${LIMITS.overlap.min}–${LIMITS.overlap.max}`)
    .addOption(new Option('--alpha <mode>', 'how alpha is upscaled').choices([...ALPHA_MODES]).default('model'))
    .addOption(new Option('--format <format>', "output format for every image (default: each input's own)").choices([...OUTPUT_FORMATS]))
    .option('--provider <name>', PROVIDER_HELP)
    .option('--queue <redis-url>', 'fan the images out over `upbridge worker` processes through BullMQ on Redis: redis://[user:password@]host[:port][/db], rediss:// for TLS')
    .option('--store <dir>', 'with --queue: the folder shared with the workers (NAS); images travel through it, never through Redis')
    .option('--json', 'one JSON line per image and a summary line, instead of a progress bar')
    .action(async (inputs: string[], opts: BatchCommandOptions) => {
      if (opts.queue && !opts.store) throw new UpbridgeError('UPB_INVALID_OPTION', '--queue needs --store <dir>: the folder the workers share, through which the images travel');
      if (opts.store && !opts.queue) throw new UpbridgeError('UPB_INVALID_OPTION', '--store is used with --queue <redis-url> only');
      if (opts.queue) redisOptions(opts.queue);
      // Workers know only their own models: a file on this machine would fail every image there.
      if (opts.queue && opts.model && /\.onnx$/i.test(opts.model)) {
        throw new UpbridgeError('UPB_INVALID_OPTION', `with --queue, --model must be a model id that every worker has, not a file (${JSON.stringify(opts.model)}): put the .onnx in each worker's models/custom folder and give its id, custom:<name without .onnx>`);
      }
      const model = await withCustomModels(new ModelStore(), opts.model);
      const settings: BatchSettings = {
        ...(model !== undefined ? { model } : {}),
        scale: opts.scale,
        ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
        ...(opts.creativity !== undefined ? { creativity: opts.creativity } : {}),
        content: opts.content,
        ...(opts.tta !== undefined ? { tta: opts.tta } : {}),
        ...(opts.consistent !== undefined ? { consistent: opts.consistent } : {}),
        ...(opts.tile !== undefined ? { tile: opts.tile } : {}),
        ...(opts.overlap !== undefined ? { overlap: opts.overlap } : {}),
        alpha: opts.alpha,
        ...(opts.format !== undefined ? { format: opts.format } : {}),
      };
      // Everything that would fail every image fails now, before the first one.
      checkSettings(settings);
      if (opts.tile !== undefined) integerInRange('tile', opts.tile, LIMITS.tile.min, LIMITS.tile.max);
      if (opts.overlap !== undefined) integerInRange('overlap', opts.overlap, LIMITS.overlap.min, LIMITS.overlap.max);
      oneOf('alpha', opts.alpha, ALPHA_MODES);
      const items = await listBatchInputs(inputs, opts.output, opts.format);

      let runner: BatchRunner;
      if (opts.queue) {
        const store = new DirectoryStore(opts.store!);
        await store.check();
        runner = await queueBatchRunner({ url: opts.queue }, store);
      } else runner = localRunner(opts.provider, opts.json === true);

      const reporter = batchReporter(opts.json === true, process.stderr.isTTY === true);
      const controller = new AbortController();
      const interrupts = onInterrupt(() => controller.abort());
      let summary;
      try {
        ({ summary } = await runBatch(items, settings, opts.output, runner, { signal: controller.signal, onEvent: (e) => reporter.event(e) }));
      } finally {
        reporter.stop();
        try {
          // A queued batch's close cancels remote jobs: a Ctrl-C meanwhile still ends it cleanly.
          await runner.close?.();
        } finally {
          interrupts.dispose();
        }
      }
      const manifest = path.join(path.resolve(opts.output), MANIFEST_NAME);
      if (opts.json) process.stdout.write(JSON.stringify({ event: 'summary', ...summary, manifest }) + '\n');
      else process.stdout.write(`${summary.done} upscaled${summary.repaired ? ` (${summary.repaired} repaired)` : ''}, ${summary.skipped} already done, ${summary.failed} failed, of ${summary.total} images in ${summary.seconds} s; manifest: ${manifest}\n`);
      if (summary.failed > 0) throw new UpbridgeError('UPB_BATCH_INCOMPLETE', `${summary.failed} of ${summary.total} images failed (each is named in ${manifest}); run the same command again to retry them`);
    });

  program
    .command('worker')
    .description('take upscale jobs from a Redis queue (serve --queue, batch --queue), one at a time; listens on no port')
    .requiredOption('--queue <redis-url>', 'redis://[user:password@]host[:port][/db], rediss:// for TLS')
    .requiredOption('--store <dir>', 'the folder shared with the bridge and batch clients (NAS)')
    .option('--provider <name>', PROVIDER_HELP)
    .option('--name <name>', 'what this worker is called in logs and manifests (default: host:pid)')
    .addOption(new Option('--lock-ms <ms>', 'job lock; a killed worker\'s job is picked up by another after about this long').default('30000').hideHelp())
    .action(async (opts: { queue: string; store: string; provider?: string; name?: string; lockMs: string }) => {
      const store = new DirectoryStore(opts.store);
      await store.check();
      const lockDurationMs = integerInRange('lock-ms', opts.lockMs, 1000, 600_000);
      const worker = await startWorker({ url: opts.queue, store, provider: opts.provider, name: opts.name, lockDurationMs });
      await new Promise<void>((resolve) => {
        // SIGINT or SIGTERM: stop after the running job; a second signal stops now.
        const interrupts = onInterrupt(
          () => {
            process.stderr.write(`${worker.name}: stopping after the running job (Ctrl-C again to stop now; its job then goes to another worker)\n`);
            void worker.close().then(() => {
              interrupts.dispose();
              resolve();
            });
          },
          { terminate: true },
        );
      });
    });

  // Run by `upbridge bench` (one JSON line): images per minute locally and with 1 and 2 workers.
  program
    .command('bench-batch', { hidden: true })
    .option('--images <n>', 'images in the batch', String(BATCH_BENCH_DEFAULTS.images))
    .option('--size <px>', 'input side', String(BATCH_BENCH_DEFAULTS.size))
    .option('--scale <n>', 'scale', String(BATCH_BENCH_DEFAULTS.scale))
    .option('--model <id>', 'model', BATCH_BENCH_DEFAULTS.model)
    .action(async (opts: { images: string; size: string; scale: string; model: string }) => {
      const report = await runBatchBenchmark({
        images: integerInRange('images', opts.images, 1, 1000),
        size: integerInRange('size', opts.size, 16, 2048),
        scale: integerInRange('scale', opts.scale, 1, 16),
        model: opts.model,
      });
      process.stdout.write(JSON.stringify(report) + '\n');
    });
}
