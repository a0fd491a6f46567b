#!/usr/bin/env bash
# Device side of the fp16 check: Vulkan and node as run.sh sets them up, then .gpu/fp16-driver.js.
set -u
W=/tmp/gp; mkdir -p $W
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && ! grep -qil nvidia /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
python3 - $W <<'PY'
import lzma, os, shutil, sys, tarfile
w = sys.argv[1]
with lzma.open(".gpu/node.xz") as s, open(os.path.join(w, "node"), "wb") as d: shutil.copyfileobj(s, d, 1 << 22)
os.chmod(os.path.join(w, "node"), 0o755)
with tarfile.open(".gpu/ort-node.tar.xz", "r:xz") as t: t.extractall(os.path.join(w, "ortnode"))
PY
NODE_PATH=$W/ortnode/node_modules timeout 300 $W/node .gpu/fp16-driver.js > $OUT/fp16-check.json 2> $OUT/fp16-stderr.txt
echo "exit $?"; grep -v "^DRIVER\|^INFO\|^DEBUG" $OUT/fp16-stderr.txt | tail -c 3000; cat $OUT/fp16-check.json
