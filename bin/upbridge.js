#!/usr/bin/env node
'use strict';
// Ctrl-C before a command has set up its own handling (while the CLI loads, or between steps)
// still ends as a cancel: exit 130 and one line, never a half-written file (nothing is written
// yet). Commands that run work register their own SIGINT listener, and this one then stands back.
process.on('SIGINT', () => {
  if (process.listenerCount('SIGINT') > 1) return;
  process.stderr.write('upbridge: cancelled [UPB_CANCELLED]\n');
  process.exit(130);
});
// The CLI is bundled by esbuild (npm run build, run by `npm ci` through `prepare`).
const { main } = require('../dist/cli.js');
main(process.argv).then((code) => process.exit(code));
