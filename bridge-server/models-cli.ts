import { Command } from 'commander';
import { catalogue, findModel, ModelEntry, sourceFiles } from '../core/catalogue';
import { UpbridgeError } from '../core/errors';
import { CUSTOM_PREFIX, registerCustomModel, registerCustomModels } from '../core/node/custom-models';
import { ModelCheck, ModelStore, REPAIR_COMMAND } from '../core/node/model-store';
import { calibrationTarget, modelRunner } from '../core/node/model-runner';
import { parseProvider, PROVIDER_CHOICES } from '../core/node/providers';
import { tileCalibration, withExactOverlap } from '../core/node/tile-calibration';
import { installWithProgress } from './install-progress';

/**
 * Registers the user's custom models (models/custom/*.onnx) before a command uses the catalogue,
 * and a model passed by path (`--model ./mine.onnx`). Problems with custom files are warnings.
 */
export async function withCustomModels(store: ModelStore, model?: string): Promise<string | undefined> {
  const { problems } = await registerCustomModels(store.modelsDir);
  for (const p of problems) process.stderr.write(`warning: custom model skipped: ${p.message}\n`);
  if (model && /\.onnx$/i.test(model)) return (await registerCustomModel(model, `${store.modelsDir}/custom`)).id;
  return model;
}

function row(m: ModelEntry, installed: ModelCheck['state']) {
  return {
    id: m.id,
    name: m.name,
    scale: m.scale,
    content: m.content,
    mode: m.mode,
    format: m.source.format,
    default: m.id === catalogue.defaultModel,
    installed: installed === 'ok',
    state: installed,
    licence: m.licence,
    source: m.source.package,
  };
}

export function registerModelCommands(program: Command): void {
  const models = program.command('models').description('model catalogue: list, install, verify, info');

  models
    .command('list')
    .description('list installed and installable models')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const store = new ModelStore();
      await withCustomModels(store);
      const rows = await Promise.all(catalogue.models.map(async (m) => row(m, (await store.check(m.id)).state)));
      const corrupt = rows.filter((r) => r.state === 'corrupt');
      if (opts.json) return void process.stdout.write(JSON.stringify({ home: store.modelsDir, models: rows, ...(corrupt.length ? { repair: REPAIR_COMMAND } : {}) }) + '\n');
      process.stdout.write(`models in ${store.modelsDir}\n`);
      const width = Math.max(...rows.map((r) => r.id.length));
      for (const r of rows) {
        const state = r.state === 'ok' ? 'installed  ' : r.state === 'corrupt' ? 'CORRUPT    ' : 'installable';
        process.stdout.write(`${state}  ${r.id.padEnd(width)}  ${String(r.scale).padStart(2)}x  ${r.content.padEnd(12)} ${r.mode.padEnd(9)} ${r.name}${r.default ? '  (default)' : ''}\n`);
      }
      if (corrupt.length) process.stdout.write(`${corrupt.length} corrupt model file(s): repair with \`${REPAIR_COMMAND}\`\n`);
    });

  models
    .command('install')
    .description('download, verify and convert models now')
    .argument('[ids...]', 'model ids (see `upbridge models list`)')
    .option('--all', 'every model of the catalogue (about 300 MB of downloads)')
    .action(async (ids: string[], opts: { all?: boolean }) => {
      if (ids.length === 0 && !opts.all) throw new UpbridgeError('UPB_INVALID_OPTION', 'name the models to install (see `upbridge models list`), or --all');
      const chosen = opts.all ? catalogue.models.filter((m) => !m.customPath).map((m) => m.id) : ids.map((id) => findModel(id).id);
      const store = new ModelStore();
      const installed = await installWithProgress(store, chosen, { repair: true });
      for (const [id, m] of installed) process.stdout.write(`${id}: ${m.onnxPath}\n`);
    });

  models
    .command('verify')
    .description('re-hash every installed model against its pinned sha256; --repair re-installs what is corrupt')
    .option('--repair', 're-download and convert corrupt models')
    .option('--json', 'print JSON')
    .action(async (opts: { repair?: boolean; json?: boolean }) => {
      const store = new ModelStore();
      await withCustomModels(store);
      const checks = await Promise.all(catalogue.models.map((m) => store.check(m.id, true)));
      const present = checks.filter((c) => c.state !== 'missing');
      const corrupt = checks.filter((c): c is Extract<ModelCheck, { state: 'corrupt' }> => c.state === 'corrupt');
      let repaired: string[] = [];
      if (opts.repair && corrupt.length > 0) {
        const fixable = corrupt.filter((c) => !c.id.startsWith(CUSTOM_PREFIX)).map((c) => c.id);
        repaired = [...(await installWithProgress(store, fixable, { repair: true })).keys()];
      }
      if (opts.json) process.stdout.write(JSON.stringify({ checked: present.length, corrupt, repaired }) + '\n');
      else {
        for (const c of present) process.stdout.write(`${c.state === 'ok' ? 'ok     ' : 'CORRUPT'}  ${c.id}  ${c.path}\n`);
        for (const c of corrupt) process.stdout.write(`  ${c.id}: sha256 ${c.actual}, expected ${c.expected}${repaired.includes(c.id) ? ' — repaired' : ''}\n`);
        process.stdout.write(`${present.length} installed model(s) checked, ${corrupt.length} corrupt${repaired.length ? `, ${repaired.length} repaired` : ''}\n`);
      }
      const left = corrupt.filter((c) => !repaired.includes(c.id));
      if (left.length > 0) {
        throw new UpbridgeError('UPB_MODEL_INTEGRITY', `${left.length} corrupt model(s): ${left.map((c) => c.id).join(', ')}; repair with \`${REPAIR_COMMAND}\``);
      }
    });

  models
    .command('calibrate')
    .description('measure again how fast each model runs per tile size on this machine (the tile autotuning uses it; first use measures it anyway)')
    .argument('<ids...>', 'model ids (see `upbridge models list`)')
    .option('--provider <name>', `execution provider: ${PROVIDER_CHOICES.join(', ')} (default: $UPBRIDGE_PROVIDER or auto)`)
    .option('--json', 'print JSON')
    .action(async (ids: string[], opts: { provider?: string; json?: boolean }) => {
      const store = new ModelStore();
      await withCustomModels(store);
      const chosen = ids.map((id) => findModel(id).id);
      await installWithProgress(store, chosen);
      const out = [];
      for (const id of chosen) {
        const runner = await modelRunner(store, id, { provider: parseProvider(opts.provider) });
        const target = await calibrationTarget(store, id, runner.provider);
        const calibration = await withExactOverlap(target, await tileCalibration(target, { remeasure: true }), runner);
        out.push(calibration);
        if (!opts.json) {
          const rate = calibration.timings.map((t) => `${t.side}²: ${((t.side * t.side) / t.seconds / 1e3).toFixed(1)} kpx/s`).join(', ');
          process.stdout.write(
            `${id} on ${calibration.provider}: ${rate}; ${(calibration.bytesPerPixel / 1024).toFixed(1)} KiB per window pixel (${calibration.memorySource}); ` +
              `overlap ${calibration.exactOverlap}${calibration.overlapInexact ? ' (no overlap makes tiles exact: the model pools globally)' : ' (tiled = whole within 1/255)'}\n`,
          );
        }
      }
      if (opts.json) process.stdout.write(JSON.stringify({ calibrations: out }) + '\n');
    });

  models
    .command('info')
    .description('everything the catalogue knows about one model, and its state on disk')
    .argument('<id>', 'model id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const store = new ModelStore();
      await withCustomModels(store);
      const m = findModel(id);
      const check = await store.check(m.id);
      const info = { ...m, state: check.state, path: check.path, files: sourceFiles(m.source), integrity: catalogue.packages[m.source.package]?.integrity };
      if (opts.json) return void process.stdout.write(JSON.stringify(info) + '\n');
      const lines = [
        `${m.name} (${m.id})`,
        `  ${m.description}`,
        `  scale ${m.scale}x · ${m.content} · ${m.mode} · ${m.architecture}`,
        `  licence: ${m.licence}`,
        `  source: ${m.source.package} (${m.source.format})${info.integrity ? ` ${info.integrity}` : ''}`,
        ...info.files.map((f) => `    ${f.path}  sha256 ${f.sha256}`),
        ...(m.source.format === 'ncnn' && m.source.conventions ? [`  conventions: ${JSON.stringify(m.source.conventions)}`] : []),
        ...(m.source.format === 'tfjs' ? [`  value range of the original: 0–${m.source.inputRange}`] : []),
        `  onnx sha256 ${m.onnxSha256}`,
        `  tile ${m.tile}, overlap ${m.overlap}${m.exactOverlap !== undefined ? ` (exact from ${m.exactOverlap})` : ''}`,
        ...(m.notes ? [`  note: ${m.notes}`] : []),
        `  ${check.state === 'ok' ? 'installed' : check.state === 'corrupt' ? `CORRUPT (repair: ${REPAIR_COMMAND})` : 'not installed'}: ${check.path}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
