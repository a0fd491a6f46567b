#!/usr/bin/env python3
"""Merges the two halves of the gpu-check into one JSON with a summary on top.
   python3 merge.py TORCH.json ORT.json ENV.txt OUT.json   (any input may be missing)"""
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:
        return {"missing": f"{path}: {type(e).__name__}: {e}"}


def g(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def main():
    torch_p, ort_p, env_p, out_p = sys.argv[1:5]
    t, o = load(torch_p), load(ort_p)
    try:
        with open(env_p) as f:
            env = f.read()
    except Exception as e:
        env = f"missing: {e}"
    sizes = sorted({int(s) for s in (g(t, "timing") or {})} | {int(s) for s in (g(o, "webgpu_fp32", "sizes") or {})})
    table = {}
    for s in sizes:
        k = str(s)
        row = {
            "input": f"1x3x{s}x{s}",
            "output_megapixels": (4 * s) ** 2 / 1e6,
            "torch_fp16_s": g(t, "timing", k, "torch_fp16", "median_s"),
            "torch_fp16_e2e_s": g(t, "timing", k, "torch_fp16_e2e", "median_s"),
            "torch_fp32_s": g(t, "timing", k, "torch_fp32", "median_s"),
            "torch_fp32_tf32_s": g(t, "timing", k, "torch_fp32_tf32", "median_s"),
            "ort_webgpu_fp32_s": g(o, "webgpu_fp32", "sizes", k, "median_s"),
            "ort_webgpu_fp32_first_run_s": g(o, "webgpu_fp32", "sizes", k, "first_run_s"),
            "ort_webgpu_fp16_s": g(o, "webgpu_fp16", "sizes", k, "median_s"),
            "ort_cpu_fp32_s": g(o, "cpu_fp32", "sizes", k, "median_s"),
            "ort_webgpu_fp32_vs_torch_fp32": g(o, "webgpu_fp32", "sizes", k, "vs_torch_fp32"),
            "ort_webgpu_fp16_vs_torch_fp32": g(o, "webgpu_fp16", "sizes", k, "vs_torch_fp32"),
            "torch_fp16_vs_torch_fp32": g(t, "timing", k, "torch_fp16_vs_fp32"),
        }
        for key in ("torch_fp16_s", "torch_fp16_e2e_s", "torch_fp32_s", "ort_webgpu_fp32_s", "ort_webgpu_fp16_s", "ort_cpu_fp32_s"):
            if row[key]:
                row[key.replace("_s", "_mpix_per_s")] = row["output_megapixels"] / row[key]

        def ratio(a, b):
            return row[a] / row[b] if row[a] and row[b] else None

        # the figure: seconds of torch fp16 / seconds of ORT WebGPU (< 1: torch is faster)
        row["ratio_torch_fp16_over_ort_webgpu_fp32"] = ratio("torch_fp16_s", "ort_webgpu_fp32_s")
        row["ratio_torch_fp16_e2e_over_ort_webgpu_fp32"] = ratio("torch_fp16_e2e_s", "ort_webgpu_fp32_s")
        row["ratio_torch_fp16_over_ort_webgpu_fp16"] = ratio("torch_fp16_s", "ort_webgpu_fp16_s")
        row["ratio_torch_fp32_over_ort_webgpu_fp32"] = ratio("torch_fp32_s", "ort_webgpu_fp32_s")
        table[k] = row
    summary = {
        "gpu": g(t, "nvidia_smi") or g(t, "torch_device"),
        "webgpu_ran_on": g(o, "webgpu_fp32", "ran_on"),
        "webgpu_fp16_ran_on": g(o, "webgpu_fp16", "ran_on"),
        "webgpu_probe": {k: g(o, "probe_webgpu", k) for k in ("ok", "all_on_requested", "nodes_on_cpu", "placement", "webgpu_context", "errors")},
        "mapping_proof": {
            "check_size": g(t, "agreement_cpu", "size"),
            "ort_python_cpu_vs_torch_fp32": g(t, "agreement_cpu", "ort_python_cpu_vs_torch_fp32"),
            "ort_node_cpu_vs_torch_fp32": g(o, "cpu_fp32", "sizes", str(g(t, "agreement_cpu", "size")), "vs_torch_fp32"),
            "torch_fp32_vs_torch_fp64": g(t, "agreement_cpu", "torch_fp32_vs_torch_fp64"),
            "mapping_problems": g(t, "mapping", "problems"),
        },
        "sizes": table,
        "errors": (g(t, "errors") or []) + (g(o, "errors") or []) + ([t["missing"]] if "missing" in t else []) + ([o["missing"]] if "missing" in o else []),
        "versions": {**(g(t, "versions") or {}), **{f"node_{k}": v for k, v in (g(o, "versions") or {}).items()}},
    }
    out = {"summary": summary, "env": env, "torch": t, "ort": o}
    with open(out_p, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
