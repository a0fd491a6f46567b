#!/usr/bin/env bash
# Here: bundles fp16-driver.ts and copies the fp32 models it checks into .gpu/ (after prepare.sh).
set -eu
cd "$(dirname "$0")/../.."
mkdir -p .gpu/models
npx esbuild scripts/gpu-check/fp16-driver.ts --bundle --platform=node --target=node20 --external:onnxruntime-node --outfile=.gpu/fp16-driver.js --log-level=warning
for id in realesr-general-x4v3 waifu2x-cunet-2x realcugan-4x-conservative esrgan-slim-x4; do
  cp "${UPBRIDGE_HOME:-$HOME/.cache/upbridge}/models/$id.onnx" .gpu/models/
done
node -e "require('sharp')('test/fixtures/photo-161x121.png').removeAlpha().raw().toBuffer({resolveWithObject:true}).then(({data,info})=>{require('fs').writeFileSync('.gpu/input.rgb',data);require('fs').writeFileSync('.gpu/input.size',info.width+'x'+info.height)})"
du -sh .gpu
