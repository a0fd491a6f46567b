#!/usr/bin/env node
// gpu-check, onnxruntime-node half (issue 8). Plain JS, no build step.
// Times the filled x4plus graph (written by fill_and_torch.py) through onnxruntime-node with
// executionProviders ['webgpu'] (fp32 graph, then the fp16 copy) and ['cpu'] (small size, for
// reference), and compares every output with PyTorch's fp32 output on the same input.
// Which provider really ran: a child process first creates a WebGPU session with verbose logging
// and reports ORT's node placement lines ("All nodes placed on [...]"/"Node(s) placed on [...]")
// and the WebGPU context/adapter lines; the timed session is then created with
// session.disable_cpu_ep_fallback=1 (creation fails if any node would run on the CPU); only if
// that fails is a session that may fall back made, and the result says so.
//   node ort-webgpu.js --ort DIR/node_modules/onnxruntime-node --work WORK --json OUT.json
//        [--verbose-log FILE] [--budget-s 200] [--reps 8] [--measure-budget-s 25] [--no-fp16]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const T0 = performance.now();
const args = parseArgs(process.argv.slice(2));
const log = (...a) => console.log(`[js ${((performance.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const ortDir = args.ort || 'onnxruntime-node';
const ort = require(ortDir);
ort.env.logLevel = 'warning';

if (args.probe) {
  probeChild().then(
    () => process.exit(0),
    (e) => {
      console.error(`PROBE-ERROR ${e && e.message}`);
      process.exit(3);
    },
  );
} else {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const key = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[key] = argv[++i];
    else out[key] = true;
  }
  return out;
}

function sessionOptions(provider, extra = {}) {
  const o = { executionProviders: [provider], graphOptimizationLevel: 'all', ...extra };
  if (provider === 'cpu') o.intraOpNumThreads = os.availableParallelism();
  return o;
}

async function probeChild() {
  // Verbose session creation only (no run): the placement lines are printed while the graph is
  // partitioned; stderr is read by the parent.
  const s = await ort.InferenceSession.create(
    args.model,
    sessionOptions(args.provider || 'webgpu', { logSeverityLevel: 0, logVerbosityLevel: 0, logId: 'probe' }),
  );
  console.error(`PROBE-OK inputs=${s.inputNames} outputs=${s.outputNames}`);
  await s.release();
}

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(new Uint8Array(b).buffer);
}

function compare(out, ref) {
  if (out.length !== ref.length) return { length_mismatch: [out.length, ref.length] };
  let se = 0;
  let sr = 0;
  let maxAbs = 0;
  let finite = true;
  for (let i = 0; i < ref.length; i++) {
    const d = out[i] - ref[i];
    if (!Number.isFinite(out[i])) finite = false;
    se += d * d;
    sr += ref[i] * ref[i];
    const a = Math.abs(d);
    if (a > maxAbs) maxAbs = a;
  }
  const mse = se / ref.length;
  return {
    psnr_db_peak1: mse === 0 ? Infinity : Number((10 * Math.log10(1 / mse)).toFixed(2)),
    max_abs_diff: maxAbs,
    rel_rms: Math.sqrt(mse) / (Math.sqrt(sr / ref.length) + 1e-30),
    finite,
  };
}

// float32 <-> float16 bits (round to nearest even), for the fp16 graph's I/O.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toHalf(v) {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  let e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}
function fromHalf(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

async function main() {
  const work = args.work;
  const manifest = JSON.parse(fs.readFileSync(path.join(work, 'manifest.json'), 'utf8'));
  const budgetS = Number(args.budgetS || 200);
  const reps = Number(args.reps || 8);
  const measureBudgetS = Number(args.measureBudgetS || 25);
  const deadline = T0 + budgetS * 1000;
  const left = () => (deadline - performance.now()) / 1000;
  const R = { steps: {}, errors: [], budget_s: budgetS };
  const save = () => {
    R.total_s = Number(((performance.now() - T0) / 1000).toFixed(1));
    fs.writeFileSync(`${args.json}.tmp`, JSON.stringify(R, null, 1));
    fs.renameSync(`${args.json}.tmp`, args.json);
  };
  const step = async (name, fn) => {
    const t = performance.now();
    log(`step ${name} ...`);
    try {
      const v = await fn();
      R.steps[name] = { ok: true, s: Number(((performance.now() - t) / 1000).toFixed(2)) };
      log(`step ${name} ok (${((performance.now() - t) / 1000).toFixed(1)}s)`);
      return v;
    } catch (e) {
      const msg = e && e.message ? e.message : String(e);
      R.steps[name] = { ok: false, s: Number(((performance.now() - t) / 1000).toFixed(2)), error: msg };
      R.errors.push(`${name}: ${msg}`);
      log(`step ${name} FAILED: ${msg}`);
      return undefined;
    } finally {
      save();
    }
  };

  R.versions = {
    node: process.version,
    onnxruntime_node: require(path.join(path.dirname(require.resolve(ortDir)), '..', 'package.json')).version,
    ort_env: ort.env.versions,
    backends: (() => {
      try {
        return ort.listSupportedBackends();
      } catch (e) {
        return `unavailable: ${e.message}`;
      }
    })(),
  };
  R.platform = { arch: process.arch, cpus: os.cpus().length, cpu_model: os.cpus()[0] && os.cpus()[0].model };
  save();

  // --- which provider really takes the nodes: verbose probes in child processes
  const verboseLines = [];
  const probe = (name, model, provider) =>
    step(name, async () => {
      const r = spawnSync(process.execPath, [__filename, '--probe', '--ort', ortDir, '--model', model, '--provider', provider], {
        encoding: 'utf8',
        timeout: Math.round(Math.max(10, Math.min(90, left() - 30)) * 1000),
        maxBuffer: 256 * 1024 * 1024,
        env: process.env,
      });
      const text = `${r.stdout || ''}\n${r.stderr || ''}`;
      const lines = text.split('\n');
      const pick = (re) => [...new Set(lines.filter((l) => re.test(l)).map((l) => l.replace(/^.*?\] /, '').trim()))];
      const info = {
        exit: r.status,
        signal: r.signal,
        spawn_error: r.error ? r.error.message : undefined,
        placement: pick(/nodes placed on \[|Node\(s\) placed on \[/i),
        webgpu_context: pick(/WebGPU EP|Dawn|adapter|vulkan/i).slice(0, 40),
        errors: pick(/PROBE-ERROR|\bE:|error/i).slice(0, 20),
        ok: /PROBE-OK/.test(text),
        verbose_lines: lines.length,
      };
      const placed = info.placement.join(' ');
      info.all_on_requested = new RegExp(`All nodes placed on \\[(${provider === 'webgpu' ? 'WebGpuExecutionProvider' : 'CPUExecutionProvider'})\\]`).test(placed);
      info.nodes_on_cpu = /Node\(s\) placed on \[CPUExecutionProvider\]|All nodes placed on \[CPUExecutionProvider\]/.test(placed);
      verboseLines.push(`===== ${name} (${model}, ${provider}) exit ${r.status} ${r.signal || ''}`, ...lines);
      if (args.verboseLog) fs.writeFileSync(args.verboseLog, verboseLines.slice(0, 6000).join('\n'));
      R[name] = info;
      if (!info.ok) throw new Error(`probe session failed: ${info.errors.slice(0, 3).join(' | ') || `exit ${r.status} ${r.signal || ''}`}`);
      return info;
    });

  await probe('probe_cpu', manifest.model, 'cpu'); // checks the placement parsing itself
  await probe('probe_webgpu', manifest.model, 'webgpu');

  // --- timing
  const sizes = [manifest.check, ...manifest.sizes].filter(Boolean);
  const timeRuns = async (session, feeds, nReps, budget) => {
    const times = [];
    const end = performance.now() + budget * 1000;
    let out;
    while (times.length < nReps && (times.length < 2 || performance.now() < end)) {
      const t = performance.now();
      out = await session.run(feeds);
      times.push((performance.now() - t) / 1000);
    }
    const sorted = [...times].sort((a, b) => a - b);
    return {
      stats: {
        median_s: sorted[Math.floor(sorted.length / 2)],
        mean_s: times.reduce((a, b) => a + b, 0) / times.length,
        min_s: sorted[0],
        reps: times.length,
      },
      out,
    };
  };

  async function makeSession(label, model, provider) {
    if (provider === 'cpu') {
      // the CPU EP is itself the "fallback", so disable_cpu_ep_fallback cannot be used with it
      return { session: await ort.InferenceSession.create(model, sessionOptions(provider)), mode: 'cpu' };
    }
    try {
      const s = await ort.InferenceSession.create(model, sessionOptions(provider, { extra: { session: { disable_cpu_ep_fallback: '1' } } }));
      return { session: s, mode: `${provider} only (session.disable_cpu_ep_fallback=1 accepted: no node on the CPU EP)` };
    } catch (e) {
      R.errors.push(`${label}: strict ${provider} session failed: ${e.message}`);
      log(`${label}: strict session failed (${e.message}); trying with CPU fallback allowed`);
      const s = await ort.InferenceSession.create(model, sessionOptions(provider));
      return { session: s, mode: `${provider} WITH CPU fallback allowed (strict creation failed: ${e.message.slice(0, 300)})` };
    }
  }

  async function runProvider(key, model, provider, sizeList, fp16) {
    const res = { provider, model: path.basename(model), sizes: {} };
    R[key] = res;
    let made;
    await step(`${key}_session`, async () => {
      const t = performance.now();
      made = await makeSession(key, model, provider);
      res.session_create_s = (performance.now() - t) / 1000;
      res.ran_on = made.mode;
    });
    if (!made) return res;
    const { session } = made;
    let prev;
    for (const sz of sizeList) {
      const entry = { size: sz.size, ref_from: sz.ref_from };
      res.sizes[sz.size] = entry;
      const outMp = (4 * sz.size) ** 2 / 1e6;
      entry.output_megapixels = outMp;
      // skip what cannot finish in the time left (a single run estimated from the last size)
      if (prev) {
        const est = prev.median_s * (sz.size / prev.size) ** 2;
        entry.estimated_run_s = est;
        if (est * 3 > left() - 5) {
          entry.skipped = `estimated ${est.toFixed(1)} s a run, ${left().toFixed(0)} s left`;
          log(`${key} ${sz.size}: ${entry.skipped}`);
          save();
          continue;
        }
      }
      await step(`${key}_${sz.size}`, async () => {
        const x = readF32(path.join(work, sz.input));
        const ref = readF32(path.join(work, sz.ref));
        const dims = [1, 3, sz.size, sz.size];
        const tensor = fp16 ? new ort.Tensor('float16', Uint16Array.from(x, toHalf), dims) : new ort.Tensor('float32', x, dims);
        const feeds = { [session.inputNames[0]]: tensor };
        let t = performance.now();
        const first = await session.run(feeds);
        entry.first_run_s = (performance.now() - t) / 1000;
        t = performance.now();
        await session.run(feeds);
        entry.second_run_s = (performance.now() - t) / 1000;
        const maxReps = Math.max(2, Math.min(reps, Math.floor((left() - 5) / Math.max(entry.second_run_s, 1e-3))));
        const { stats, out } = await timeRuns(session, feeds, maxReps, Math.min(measureBudgetS, Math.max(1, left() - 5)));
        Object.assign(entry, stats, { mpix_per_s: outMp / stats.median_s, io: 'host float32 in/out (onnxruntime-node tensors)' });
        const o = out[session.outputNames[0]];
        entry.out_dims = o.dims;
        const data = fp16 ? Float32Array.from(o.data, fromHalf) : o.data;
        entry.vs_torch_fp32 = compare(data, ref);
        if (sz.ref64) entry.vs_torch_fp64 = compare(data, readF32(path.join(work, sz.ref64)));
        const f = first[session.outputNames[0]];
        entry.first_equals_last = f.data.length === o.data.length && f.data.every((v, i) => v === o.data[i]);
        prev = { size: sz.size, median_s: stats.median_s };
        log(`${key} ${sz.size}: median ${stats.median_s.toFixed(3)} s (${stats.reps} reps), first ${entry.first_run_s.toFixed(2)} s, PSNR ${entry.vs_torch_fp32.psnr_db_peak1} dB, max|d| ${entry.vs_torch_fp32.max_abs_diff.toExponential(2)}`);
      });
    }
    await session.release().catch(() => undefined);
    return res;
  }

  // --as-webgpu cpu: the local test of this script's WebGPU path on a machine without a GPU
  const gpu = args.asWebgpu || 'webgpu';
  await runProvider('webgpu_fp32', manifest.model, gpu, sizes, false);
  if (manifest.check) await runProvider('cpu_fp32', manifest.model, 'cpu', [manifest.check], false);
  if (!args.noFp16 && manifest.model_fp16 && fs.existsSync(manifest.model_fp16) && left() > 30) {
    await runProvider('webgpu_fp16', manifest.model_fp16, gpu, sizes, true);
  }
  save();
  log('done');
}
