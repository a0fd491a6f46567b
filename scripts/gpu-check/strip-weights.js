#!/usr/bin/env node
// Writes a copy of an ONNX graph whose Conv weights and biases are stripped: each such
// initializer keeps its name, dims and data type, loses its data, and gets the doc string
// "upbridge-gpu-check:stripped". Every other initializer (the 0.2 residual coefficients, the
// Resize scales) is kept verbatim, since those are structure, not weights.
// fill_and_torch.py fills the stripped ones with seeded random values on the device.
//   node scripts/gpu-check/strip-weights.js IN.onnx OUT.onnx
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { onnx } = require(require.resolve('onnx-proto', { paths: [path.join(__dirname, '..', '..')] }));

const MARK = 'upbridge-gpu-check:stripped';
const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  console.error('usage: strip-weights.js IN.onnx OUT.onnx');
  process.exit(2);
}
const model = onnx.ModelProto.decode(fs.readFileSync(src));
const graph = model.graph;
const weightNames = new Set();
for (const node of graph.node) {
  if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
    for (const name of node.input.slice(1)) if (name) weightNames.add(name);
  }
}
let stripped = 0;
let kept = 0;
let strippedBytes = 0;
for (const t of graph.initializer) {
  if (!weightNames.has(t.name)) {
    kept++;
    continue;
  }
  strippedBytes += (t.rawData ? t.rawData.length : 0) + 4 * (t.floatData ? t.floatData.length : 0);
  t.rawData = new Uint8Array(0);
  t.floatData = [];
  t.doubleData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.docString = MARK;
  stripped++;
}
model.docString = `${model.docString || ''}\n[${MARK}] weights of ${path.basename(src)} removed for the gpu-check`.trim();
const out = onnx.ModelProto.encode(model).finish();
fs.writeFileSync(dst, out);
console.log(
  JSON.stringify({ src: path.basename(src), dst, stripped, kept, strippedBytes, bytes: out.length, nodes: graph.node.length }),
);
