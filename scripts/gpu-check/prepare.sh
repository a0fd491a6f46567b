#!/usr/bin/env bash
# Prepares, in the repo root, the two git-ignored folders that the gpu-check carries to the
# device machine (see README.md beside this script):
#   .gpu/  node.xz (this machine's node binary), ort-node.tar.xz (onnxruntime-node + common,
#          linux-x64 binaries only) and x4plus-weightless.onnx (our converted Real-ESRGAN x4plus
#          graph, Conv weights stripped: fill_and_torch.py fills them with seeded values)
#   .gl/   the Vulkan loader and GL/EGL .debs that onnxruntime's WebGPU EP (Dawn) needs
# Usage: bash scripts/gpu-check/prepare.sh [MODEL.onnx]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MODEL=${1:-${UPBRIDGE_X4PLUS:-$HOME/.cache/upbridge/models/realesrgan-x4plus.onnx}}

grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >>.git/info/exclude
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >>.git/info/exclude
mkdir -p .gpu

# 1. node (the device has none). The official linux-x64 build needs only glibc >= 2.28.
NODE_BIN=$(readlink -f "$(command -v node)")
if [ ! -s .gpu/node.xz ] || [ "$NODE_BIN" -nt .gpu/node.xz ]; then
  echo "xz $NODE_BIN ($(node --version)) ..."
  xz -T0 -6 -c "$NODE_BIN" >.gpu/node.xz.tmp && mv .gpu/node.xz.tmp .gpu/node.xz
fi
node --version >.gpu/node.version

# 2. onnxruntime-node + onnxruntime-common: JS and the linux-x64 native files only.
ORT=node_modules/onnxruntime-node
test -f "$ORT/bin/napi-v6/linux/x64/libonnxruntime.so.1" || { echo "missing $ORT (npm ci first)" >&2; exit 1; }
if [ ! -s .gpu/ort-node.tar.xz ] || [ "$ORT/package.json" -nt .gpu/ort-node.tar.xz ]; then
  echo "tar onnxruntime-node $(node -p "require('./$ORT/package.json').version") ..."
  tar -C . -cf - \
    "$ORT/package.json" "$ORT/dist" "$ORT/lib" "$ORT/bin/napi-v6/linux/x64" \
    node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist \
    | xz -T0 -6 >.gpu/ort-node.tar.xz.tmp && mv .gpu/ort-node.tar.xz.tmp .gpu/ort-node.tar.xz
fi

# 3. the x4plus graph without its weights.
test -s "$MODEL" || { echo "missing model $MODEL (npx upbridge models install realesrgan-x4plus)" >&2; exit 1; }
node scripts/gpu-check/strip-weights.js "$MODEL" .gpu/x4plus-weightless.onnx
sha256sum "$MODEL" | cut -d' ' -f1 >.gpu/x4plus-source.sha256

# 4. the Vulkan loader .debs (as the device docs say).
if ! ls .gl/*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

du -b .gpu/* .gl/* | sort -k2
echo "total carried: $(du -cb .gpu .gl | tail -1 | cut -f1) bytes"
