#!/usr/bin/env python3
"""gpu-check, Python half (issue 8): WebGPU EP vs PyTorch on the same RRDBNet weights.

1. Loads our converted Real-ESRGAN x4plus graph without its weights (strip-weights.js) and maps
   its Conv nodes, in graph order, onto the parameters of the standard Real-ESRGAN RRDBNet
   (conv_first, 23 RRDB x 3 ResidualDenseBlock x conv1..5, conv_body, conv_up1, conv_up2,
   conv_hr, conv_last), checking every shape and the structure around them (the 0.2 residual
   Mul constants, the two nearest x2 Resize nodes).
2. Fills every stripped initializer with seeded random values (kaiming-normal, x0.1 inside the
   RRDB trunk as basicsr initialises it, small uniform biases) and saves the full graph (and an
   fp16 copy for the WebGPU fp16 run) to WORK; loads the SAME arrays into the PyTorch model.
3. Proves the mapping: PyTorch fp32 (CPU) against onnxruntime's CPU EP (Python) on a small input.
4. Writes seeded inputs and PyTorch fp32 reference outputs (TF32 off) for the timed sizes to
   WORK, for ort-webgpu.js to compare against.
5. Times PyTorch on CUDA: fp32 (TF32 off), fp32 (TF32 on), fp16 GPU-resident and fp16
   end-to-end (host float32 in, host float32 out, as onnxruntime-node is timed).
Every step is in its own try; the JSON is rewritten after each step, so a kill leaves a partial
result. Runs on CPU only as well (the local test): then steps 4-5 use the CPU and skip fp16.
"""
import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time
import traceback

import numpy as np

MARK = "upbridge-gpu-check:stripped"
T0 = time.perf_counter()


def log(*args):
    print(f"[py {time.perf_counter() - T0:7.1f}s]", *args, flush=True)


class Result:
    def __init__(self, path):
        self.path = path
        self.data = {"steps": {}, "errors": []}

    def step(self, name, fn, *args, **kwargs):
        t = time.perf_counter()
        log(f"step {name} ...")
        try:
            value = fn(*args, **kwargs)
            self.data["steps"][name] = {"ok": True, "s": round(time.perf_counter() - t, 2)}
            log(f"step {name} ok ({time.perf_counter() - t:.1f}s)")
            return value
        except Exception as e:  # fail soft: record and go on
            tb = traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
            self.data["steps"][name] = {"ok": False, "s": round(time.perf_counter() - t, 2), "error": f"{type(e).__name__}: {e}"}
            self.data["errors"].append(f"{name}: {type(e).__name__}: {e}")
            log(f"step {name} FAILED: {type(e).__name__}: {e}")
            return None
        finally:
            self.save()

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, default=str)
        os.replace(tmp, self.path)


# ---------------------------------------------------------------- the network (Real-ESRGAN)
def build_rrdbnet(torch, num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32):
    """basicsr.archs.rrdbnet_arch.RRDBNet, scale 4 (as used by Real-ESRGAN x4plus)."""
    nn = torch.nn
    F = torch.nn.functional

    class ResidualDenseBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
            self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
            self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
            self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
            self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        def forward(self, x):
            x1 = self.lrelu(self.conv1(x))
            x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
            x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
            x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
            x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
            return x5 * 0.2 + x

    class RRDB(nn.Module):
        def __init__(self):
            super().__init__()
            self.rdb1 = ResidualDenseBlock()
            self.rdb2 = ResidualDenseBlock()
            self.rdb3 = ResidualDenseBlock()

        def forward(self, x):
            out = self.rdb3(self.rdb2(self.rdb1(x)))
            return out * 0.2 + x

    class RRDBNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
            self.body = nn.Sequential(*[RRDB() for _ in range(num_block)])
            self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

        def forward(self, x):
            feat = self.conv_first(x)
            body_feat = self.conv_body(self.body(feat))
            feat = feat + body_feat
            feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
            feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
            return self.conv_last(self.lrelu(self.conv_hr(feat)))

    return RRDBNet()


def torch_convs_in_forward_order(model):
    """(name, module, in_rrdb) in the order the forward pass runs them."""
    out = [("conv_first", model.conv_first, False)]
    for i, rrdb in enumerate(model.body):
        for r in ("rdb1", "rdb2", "rdb3"):
            rdb = getattr(rrdb, r)
            for c in ("conv1", "conv2", "conv3", "conv4", "conv5"):
                out.append((f"body.{i}.{r}.{c}", getattr(rdb, c), True))
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        out.append((name, getattr(model, name), False))
    return out


# ---------------------------------------------------------------- the graph
def load_weightless(path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    convs = []
    for n in g.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            b = inits[n.input[2]] if len(n.input) > 2 and n.input[2] else None
            attrs = {a.name: list(a.ints) if a.ints else (a.i if a.type == 2 else a.f) for a in n.attribute}
            convs.append({"node": n.name or n.output[0], "w": w, "b": b, "attrs": attrs, "input": n.input[0]})
    stripped = [t.name for t in g.initializer if t.doc_string == MARK or (not t.raw_data and not t.float_data and int(np.prod(t.dims)) > 0)]
    # structure around the convs
    muls = []
    for n in g.node:
        if n.op_type == "Mul":
            consts = [numpy_helper.to_array(inits[i]).ravel().tolist() for i in n.input if i in inits]
            muls.append(consts)
    resizes = []
    for n in g.node:
        if n.op_type == "Resize":
            attrs = {a.name: a.s.decode() if a.type == 3 else a.i for a in n.attribute}
            scales = numpy_helper.to_array(inits[n.input[2]]).tolist() if len(n.input) > 2 and n.input[2] in inits else None
            resizes.append({"scales": scales, **attrs})
    ops = {}
    for n in g.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return model, convs, stripped, {"muls": muls, "resizes": resizes, "ops": ops}


def map_graph_to_torch(convs, tconvs, structure):
    """Checks that graph conv k <-> torch conv k (shapes, kernel, pads, strides) and the rest."""
    problems = []
    if len(convs) != len(tconvs):
        problems.append(f"conv count: graph {len(convs)} vs torch {len(tconvs)}")
    for k, (c, (name, mod, _)) in enumerate(zip(convs, tconvs)):
        gw = tuple(int(d) for d in c["w"].dims)
        tw = tuple(mod.weight.shape)
        if gw != tw:
            problems.append(f"conv {k} ({c['node']} -> {name}): weight {gw} vs {tw}")
        if c["b"] is None or tuple(int(d) for d in c["b"].dims) != tuple(mod.bias.shape):
            problems.append(f"conv {k} ({c['node']} -> {name}): bias")
        a = c["attrs"]
        if a.get("pads", [0, 0, 0, 0]) != [1, 1, 1, 1] or a.get("strides", [1, 1]) != [1, 1] or a.get("dilations", [1, 1]) != [1, 1] or a.get("group", 1) != 1:
            problems.append(f"conv {k} ({c['node']}): attributes {a}")
    coeffs = [m for m in structure["muls"]]
    bad_mul = [m for m in coeffs if not (len(m) == 1 and len(m[0]) == 1 and abs(m[0][0] - 0.2) < 1e-6)]
    if len(coeffs) != 23 * 4 or bad_mul:
        problems.append(f"Mul nodes: {len(coeffs)} (want 92 x 0.2), odd ones: {bad_mul[:3]}")
    rs = structure["resizes"]
    if len(rs) != 2 or any(r.get("scales") != [1.0, 1.0, 2.0, 2.0] or r.get("mode") != "nearest" for r in rs):
        problems.append(f"Resize nodes: {rs}")
    return problems


RRDB_SCALE = 0.1
BODY_SCALE = 0.02
LAST_SCALE = 0.15
SCALES = {-5: BODY_SCALE, -1: LAST_SCALE}  # by position from the end: conv_body .. conv_last


def fill_values(convs, tconvs, seed):
    """Seeded values for every conv, in graph order: list of (w, b) float32 arrays."""
    rng = np.random.default_rng(seed)
    gain = np.sqrt(2.0 / (1 + 0.2**2))  # kaiming for LeakyReLU(0.2)
    values = []
    for k, (c, (_, _, in_rrdb)) in enumerate(zip(convs, tconvs)):
        shape = tuple(int(d) for d in c["w"].dims)
        fan_in = shape[1] * shape[2] * shape[3]
        # x RRDB_SCALE inside the trunk, as basicsr initialises it. With near-identity dense
        # blocks each RRDB (out*0.2 + x) multiplies its input by ~1.2, so the trunk grows ~60x
        # over 23 blocks (std ~60, still far inside fp16's range); conv_body x BODY_SCALE brings
        # that back to ~1 and conv_last x LAST_SCALE makes the output image-like (std ~0.3).
        scale = RRDB_SCALE if in_rrdb else SCALES.get(k - len(convs), 1.0)
        std = gain / np.sqrt(fan_in) * scale
        w = (rng.standard_normal(shape) * std).astype(np.float32)
        b = rng.uniform(-0.01, 0.01, size=(shape[0],)).astype(np.float32)
        values.append((w, b))
    return values


def write_filled(model, convs, values, path, path16):
    import onnx
    from onnx import numpy_helper, TensorProto

    by_name = {}
    for c, (w, b) in zip(convs, values):
        by_name[c["w"].name] = w
        by_name[c["b"].name] = b
    g = model.graph
    filled = 0
    for t in g.initializer:
        if t.name in by_name:
            t.CopyFrom(numpy_helper.from_array(by_name[t.name], t.name))
            filled += 1
    left = [t.name for t in g.initializer if t.doc_string == MARK]
    if left:
        raise RuntimeError(f"stripped initializers not filled: {left[:5]}")
    onnx.save(model, path)
    # fp16 copy: float16 weights and I/O; Resize scales stay float32 (the op wants them so).
    m16 = onnx.load(path)
    keep32 = set()
    for n in m16.graph.node:
        if n.op_type == "Resize":
            keep32.update(n.input[1:])
    for t in m16.graph.initializer:
        if t.data_type == TensorProto.FLOAT and t.name not in keep32:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    for v in list(m16.graph.input) + list(m16.graph.output):
        v.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.save(m16, path16)
    return {"filled": filled, "bytes": os.path.getsize(path), "bytes_fp16": os.path.getsize(path16)}


def load_into_torch(torch, tconvs, values):
    with torch.no_grad():
        for (_, mod, _), (w, b) in zip(tconvs, values):
            mod.weight.copy_(torch.from_numpy(w))
            mod.bias.copy_(torch.from_numpy(b))


# ---------------------------------------------------------------- comparisons and timing
def compare(out, ref):
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        return {"shape_mismatch": [list(out.shape), list(ref.shape)]}
    d = out - ref
    mse = float(np.mean(d * d))
    return {
        "psnr_db_peak1": (float("inf") if mse == 0 else round(10 * np.log10(1.0 / mse), 2)),
        "max_abs_diff": float(np.max(np.abs(d))),
        "rel_rms": float(np.sqrt(mse) / (np.sqrt(np.mean(ref * ref)) + 1e-30)),
        "finite": bool(np.isfinite(out).all()),
    }


def stats_of(a):
    a = np.asarray(a, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def set_tf32(torch, on):
    """TF32 for cuDNN convs and matmuls: PyTorch >= 2.9 has fp32_precision, older allow_tf32."""
    conv = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None)
    if conv is not None:
        try:
            torch.backends.cudnn.conv.fp32_precision = "tf32" if on else "ieee"
            torch.backends.cuda.matmul.fp32_precision = "tf32" if on else "ieee"
            return "fp32_precision"
        except Exception as e:
            log(f"fp32_precision API failed ({e}); using allow_tf32")
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on
    return "allow_tf32"


def seeded_input(h, w):
    return np.random.default_rng(1000 + h * 7 + w).random((1, 3, h, w), dtype=np.float32)


def time_it(fn, sync, warmup, reps, budget_s):
    for _ in range(warmup):
        fn()
        sync()
    times = []
    t_end = time.perf_counter() + budget_s
    while len(times) < reps and (len(times) < 2 or time.perf_counter() < t_end):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_s": times[len(times) // 2], "mean_s": float(np.mean(times)), "min_s": times[0], "reps": len(times), "warmup": warmup}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weightless", required=True)
    ap.add_argument("--work", required=True, help="folder for the filled graphs, inputs and references")
    ap.add_argument("--json", required=True)
    ap.add_argument("--sizes", default="256,512", help="timed input sizes (square)")
    ap.add_argument("--check-size", type=int, default=64, help="input size of the CPU agreement check")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--budget-s", type=float, default=20.0, help="timing budget per measurement")
    ap.add_argument("--fp64-after-s", type=float, default=120.0, help="skip the fp64 precision check when this much time is gone")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    res = Result(args.json)
    d = res.data
    d["seed"] = args.seed

    def env():
        import onnx

        d["versions"] = {"python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__}
        try:
            import onnxruntime

            d["versions"]["onnxruntime_python"] = onnxruntime.__version__
        except Exception as e:
            d["versions"]["onnxruntime_python"] = f"unavailable: {e}"
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20,
            )
            d["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
        except Exception as e:
            d["nvidia_smi"] = f"unavailable: {e}"

    res.step("env", env)

    torch = res.step("import_torch", __import__, "torch")
    if torch is not None:
        d["versions"]["torch"] = torch.__version__
        d["versions"]["torch_cuda"] = getattr(torch.version, "cuda", None)
        d["cuda_available"] = bool(torch.cuda.is_available())
        if d["cuda_available"]:
            d["versions"]["cudnn"] = torch.backends.cudnn.version()
            d["torch_device"] = torch.cuda.get_device_name(0)
        torch.set_num_threads(max(1, os.cpu_count() or 1))

    loaded = res.step("load_weightless", load_weightless, args.weightless)
    if loaded is None:
        return
    model_onnx, convs, stripped, structure = loaded
    d["graph"] = {"convs": len(convs), "stripped_initializers": len(stripped), "ops": structure["ops"]}
    if torch is None:
        return

    def mapping():
        net = build_rrdbnet(torch).eval()
        tconvs = torch_convs_in_forward_order(net)
        n_params = sum(p.numel() for p in net.parameters())
        problems = map_graph_to_torch(convs, tconvs, structure)
        d["mapping"] = {
            "torch_convs": len(tconvs), "torch_params": n_params, "problems": problems,
            "first": [convs[0]["w"].name, tconvs[0][0]], "last": [convs[-1]["w"].name, tconvs[-1][0]],
        }
        if problems:
            raise RuntimeError(f"graph does not map onto RRDBNet: {problems[:5]}")
        if sorted(stripped) != sorted([c["w"].name for c in convs] + [c["b"].name for c in convs]):
            raise RuntimeError("stripped initializers are not exactly the conv weights and biases")
        return net, tconvs

    mapped = res.step("mapping", mapping)
    if mapped is None:
        return
    net, tconvs = mapped
    filled_path = os.path.join(args.work, "x4plus-filled.onnx")
    filled16_path = os.path.join(args.work, "x4plus-filled-fp16.onnx")

    def fill():
        values = fill_values(convs, tconvs, args.seed)
        info = write_filled(model_onnx, convs, values, filled_path, filled16_path)
        load_into_torch(torch, tconvs, values)
        d["fill"] = {**info, "path": filled_path, "path_fp16": filled16_path,
                     "init": f"kaiming-normal (LeakyReLU 0.2 gain), x{RRDB_SCALE} inside the RRDB trunk, x{BODY_SCALE} on conv_body, x{LAST_SCALE} on conv_last; biases U(-0.01, 0.01)"}

    if res.step("fill", fill) is None and not os.path.exists(filled_path):
        return
    manifest = {"model": filled_path, "model_fp16": filled16_path, "sizes": [], "check": None}

    def save_manifest():
        with open(os.path.join(args.work, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)

    # 3. the mapping proof: torch fp32 on the CPU vs onnxruntime CPU EP
    def agreement():
        s = args.check_size
        x = seeded_input(s, s)
        with torch.inference_mode():
            t = time.perf_counter()
            ref = net(torch.from_numpy(x)).numpy()
            torch_s = time.perf_counter() - t
        x.tofile(os.path.join(args.work, f"in_{s}.f32"))
        ref.astype("<f4").tofile(os.path.join(args.work, f"ref_{s}.f32"))
        manifest["check"] = {"size": s, "input": f"in_{s}.f32", "ref": f"ref_{s}.f32", "out_shape": list(ref.shape), "ref_from": "torch fp32 cpu"}
        save_manifest()
        a = {"size": s, "torch_cpu_s": round(torch_s, 3), "ref_stats": stats_of(ref)}
        d["agreement_cpu"] = a
        import onnxruntime as ort  # raises where Python onnxruntime is missing (the local test)

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, os.cpu_count() or 1)
        sess = ort.InferenceSession(filled_path, so, providers=["CPUExecutionProvider"])
        t = time.perf_counter()
        out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        a["ort_cpu_s"] = round(time.perf_counter() - t, 3)
        a["ort_python_cpu_vs_torch_fp32"] = compare(out, ref)
        np.asarray(out, dtype="<f4").tofile(os.path.join(args.work, f"ortpy_{s}.f32"))
        log("agreement ORT(Python, CPU) vs torch fp32:", a["ort_python_cpu_vs_torch_fp32"])

    res.step("agreement_cpu", agreement)
    save_manifest()

    # 4 + 5. references and timing on the GPU (or, without one, references on the CPU)
    cuda = bool(d.get("cuda_available"))
    dev = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def move():
        net.to(dev)

    res.step("to_device", move)
    d["timing"] = {}
    for s in sizes:
        entry = {"size": s, "input_shape": [1, 3, s, s], "output_megapixels": (4 * s) ** 2 / 1e6}
        d["timing"][str(s)] = entry
        x = seeded_input(s, s)

        def reference():
            if cuda:
                d["tf32_api"] = set_tf32(torch, False)
            xt = torch.from_numpy(x).to(dev)
            with torch.inference_mode():
                ref = net(xt).float().cpu().numpy()
            x.tofile(os.path.join(args.work, f"in_{s}.f32"))
            ref.astype("<f4").tofile(os.path.join(args.work, f"ref_{s}.f32"))
            manifest["sizes"].append({"size": s, "input": f"in_{s}.f32", "ref": f"ref_{s}.f32", "out_shape": list(ref.shape),
                                      "ref_from": f"torch fp32 {'cuda (TF32 off)' if cuda else 'cpu'}"})
            save_manifest()
            entry["ref_stats"] = stats_of(ref)
            return ref

        ref = res.step(f"reference_{s}", reference)

        def run_fp32(tf32):
            if cuda:
                set_tf32(torch, tf32)
            xt = torch.from_numpy(x).to(dev)
            with torch.inference_mode():
                return time_it(lambda: net(xt), sync, 3 if cuda else 1, args.reps if cuda else 2, args.budget_s)

        t = res.step(f"torch_fp32_{s}", run_fp32, False)
        if t:
            entry["torch_fp32"] = {**t, "mpix_per_s": entry["output_megapixels"] / t["median_s"], "tf32": False, "io": "gpu-resident" if cuda else "cpu"}
        if not cuda:
            continue
        t = res.step(f"torch_fp32_tf32_{s}", run_fp32, True)
        if t:
            entry["torch_fp32_tf32"] = {**t, "mpix_per_s": entry["output_megapixels"] / t["median_s"], "tf32": True, "io": "gpu-resident"}
        set_tf32(torch, False)

        def run_fp16():
            net.half()
            try:
                xt = torch.from_numpy(x).to(dev).half()
                with torch.inference_mode():
                    out = net(xt).float().cpu().numpy()
                    if ref is not None:
                        entry["torch_fp16_vs_fp32"] = compare(out, ref)
                    resident = time_it(lambda: net(xt), sync, 3, args.reps, args.budget_s)
                    e2e = time_it(lambda: net(torch.from_numpy(x).to(dev).half()).float().cpu(), sync, 2, args.reps, args.budget_s)
                entry["torch_fp16"] = {**resident, "mpix_per_s": entry["output_megapixels"] / resident["median_s"], "io": "gpu-resident"}
                entry["torch_fp16_e2e"] = {**e2e, "mpix_per_s": entry["output_megapixels"] / e2e["median_s"],
                                           "io": "host float32 in -> half on GPU -> host float32 out"}
                entry["cuda_max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            finally:
                net.float()
                torch.cuda.empty_cache()

        res.step(f"torch_fp16_{s}", run_fp16)

    # what "float precision" means for this deep net: fp32 (torch, ORT) against torch fp64 on
    # the CPU; last, as the slowest CPU step and the least needed (skipped when time is short).
    def precision():
        if time.perf_counter() - T0 > args.fp64_after_s:
            raise RuntimeError(f"skipped: {time.perf_counter() - T0:.0f} s gone (> {args.fp64_after_s} s)")
        chk = manifest["check"]
        s = chk["size"]
        x = np.fromfile(os.path.join(args.work, chk["input"]), dtype="<f4").reshape(1, 3, s, s)
        ref = np.fromfile(os.path.join(args.work, chk["ref"]), dtype="<f4").reshape(chk["out_shape"])
        net64 = copy.deepcopy(net).cpu().double()
        with torch.inference_mode():
            ref64 = net64(torch.from_numpy(x).double()).numpy()
        del net64
        a = d["agreement_cpu"]
        a["torch_fp32_vs_torch_fp64"] = compare(ref, ref64)
        ortpy = os.path.join(args.work, f"ortpy_{s}.f32")
        if os.path.exists(ortpy):
            a["ort_python_cpu_vs_torch_fp64"] = compare(np.fromfile(ortpy, dtype="<f4").reshape(ref.shape), ref64)
        np.asarray(ref64, dtype="<f4").tofile(os.path.join(args.work, f"ref64_{s}.f32"))
        chk["ref64"] = f"ref64_{s}.f32"
        save_manifest()
        log("torch fp32 vs torch fp64:", a["torch_fp32_vs_torch_fp64"])

    if manifest.get("check"):
        res.step("precision_fp64", precision)
    d["total_s"] = round(time.perf_counter() - T0, 1)
    res.save()


if __name__ == "__main__":
    main()
