#!/usr/bin/env node
'use strict';
// The CLI is bundled by esbuild (npm run build, run by `npm ci` through `prepare`).
const { main } = require('../dist/cli.js');
main(process.argv).then((code) => process.exit(code));
