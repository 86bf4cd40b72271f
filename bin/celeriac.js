#!/usr/bin/env node
// Runs the compiled CLI when built (npm run build), else the TypeScript source through tsx.
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const built = join(__dirname, '..', 'dist', 'scripts', 'celeriac.js');
if (existsSync(built)) require(built);
else {
  require('tsx/cjs/api').register();
  require(join(__dirname, '..', 'scripts', 'celeriac.ts'));
}
