#!/usr/bin/env bash
# gpu-check, device side (issue 8): ORT WebGPU vs PyTorch fp16 on the same RRDBNet weights.
# Run in the repo root on the GPU machine, with .gpu/ (prepare.sh) and .gl/ carried and the .gl
# debs already unpacked (see README.md). Writes $OUT/gpu-check.json, $OUT/log.txt and
# $OUT/ort-verbose.txt. Every part fails soft; the JSON is written whatever happens.
# Knobs (env): SIZES (128,256,512), CHECK_SIZE (64), PY_TIMEOUT (170), NODE_TIMEOUT (160),
#   NODE_BUDGET (140), REPS (10), PYTHON (python3), WORK (/tmp/gpu-check)
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-check-out}
WORK=${WORK:-/tmp/gpu-check}
PY=${PYTHON:-python3}
SIZES=${SIZES:-128,256,512}
CHECK_SIZE=${CHECK_SIZE:-64}
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/log.txt") 2>&1
T0=$(date +%s)
stamp() { echo "[sh $(($(date +%s) - T0))s] $*"; }
stamp "gpu-check start $(date -u +%FT%TZ) in $PWD"

# --- environment, Vulkan driver
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] \
  && ! grep -qil nvidia /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null \
  && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  VK_SET_HERE=1
  stamp "no NVIDIA ICD in the standard places: VK_DRIVER_FILES=$VK_DRIVER_FILES"
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  stamp "libvulkan.so.1 not found by ldconfig: extracting .gl/*.deb with python"
  "$PY" scripts/gpu-check/extract_debs.py / .gl/*.deb && ldconfig
fi
{
  echo "date: $(date -u +%FT%TZ)"
  echo "uname: $(uname -a)"
  grep -E '^(PRETTY_NAME)=' /etc/os-release 2>/dev/null
  echo "glibc: $(ldd --version 2>&1 | head -1)"
  echo "nproc: $(nproc)  mem: $(free -g 2>/dev/null | awk '/Mem:/{print $2" GiB"}')"
  echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader 2>&1 | head -3)"
  echo "NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
  echo "vulkan/EGL libs:"; ldconfig -p 2>/dev/null | grep -E 'libvulkan|libEGL|libGLX_nvidia|libnvidia-glvk|libnvidia-gpucomp' | sed 's/^/  /'
  for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json /usr/local/nvidia/share/vulkan/icd.d/*.json; do
    [ -f "$f" ] && echo "ICD $f: $(tr -d '\n ' <"$f" | cut -c1-300)"
  done
  ls /usr/local/nvidia/lib64 2>/dev/null | grep -E 'GLX|vulkan|glvk|EGL' | sed 's/^/  nvidia lib64: /' | head -20
} >"$WORK/env.txt" 2>&1
cat "$WORK/env.txt"

# --- unpack node and onnxruntime-node (python's lzma/tarfile: no xz binary needed)
stamp "unpacking node and onnxruntime-node"
"$PY" - "$WORK" <<'EOF' || stamp "UNPACK FAILED"
import lzma, os, shutil, sys, tarfile
w = sys.argv[1]
with lzma.open(".gpu/node.xz") as src, open(os.path.join(w, "node"), "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 22)
os.chmod(os.path.join(w, "node"), 0o755)
with tarfile.open(".gpu/ort-node.tar.xz", "r:xz") as t:
    kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    t.extractall(os.path.join(w, "ortnode"), **kw)
EOF
"$WORK/node" --version || stamp "node does not start"

# --- Python: fill the weights, map them onto PyTorch's RRDBNet, prove it, time PyTorch
stamp "fill_and_torch.py (timeout ${PY_TIMEOUT:-170}s)"
timeout -k 5 "${PY_TIMEOUT:-170}" "$PY" scripts/gpu-check/fill_and_torch.py \
  --weightless .gpu/x4plus-weightless.onnx --work "$WORK" --json "$WORK/torch.json" \
  --sizes "$SIZES" --check-size "$CHECK_SIZE" --reps "${REPS:-10}" --budget-s 15
stamp "fill_and_torch.py exit $?"
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader 2>/dev/null

# --- node: onnxruntime-node WebGPU (fp32, fp16) and CPU
stamp "ort-webgpu.js (timeout ${NODE_TIMEOUT:-160}s)"
VK_LOADER_DEBUG=${VK_LOADER_DEBUG:-error,warn,driver} timeout -k 5 "${NODE_TIMEOUT:-160}" "$WORK/node" scripts/gpu-check/ort-webgpu.js \
  --ort "$WORK/ortnode/node_modules/onnxruntime-node" --work "$WORK" --json "$WORK/ort.json" \
  --verbose-log "$OUT/ort-verbose.txt" --budget-s "${NODE_BUDGET:-140}" --reps "${REPS:-10}" --measure-budget-s 15
stamp "ort-webgpu.js exit $?"
# no adapter through the standard ICDs: once more with the driver files the device docs name
if [ -z "${VK_SET_HERE:-}" ] && [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] \
  && grep -q 'Failed to get a WebGPU adapter' "$WORK/ort.json" 2>/dev/null && [ $(($(date +%s) - T0)) -lt 250 ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  mv "$WORK/ort.json" "$WORK/ort-first-try.json"
  stamp "no WebGPU adapter: retrying with VK_DRIVER_FILES=$VK_DRIVER_FILES"
  echo "retried with VK_DRIVER_FILES=$VK_DRIVER_FILES (first try: no WebGPU adapter)" >>"$WORK/env.txt"
  VK_LOADER_DEBUG=${VK_LOADER_DEBUG:-error,warn,driver} timeout -k 5 100 "$WORK/node" scripts/gpu-check/ort-webgpu.js \
    --ort "$WORK/ortnode/node_modules/onnxruntime-node" --work "$WORK" --json "$WORK/ort.json" \
    --verbose-log "$OUT/ort-verbose.txt" --budget-s 90 --reps "${REPS:-10}" --measure-budget-s 10
  stamp "ort-webgpu.js (retry) exit $?"
fi

# --- one JSON
"$PY" scripts/gpu-check/merge.py "$WORK/torch.json" "$WORK/ort.json" "$WORK/env.txt" "$OUT/gpu-check.json"
stamp "done: $OUT/gpu-check.json"
sleep 1 # let tee flush log.txt
