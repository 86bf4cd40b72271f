#!/usr/bin/env node
// The package registry reachable here serves only Linux builds of platform-specific optional
// packages (msgpackr-extract's darwin/win32/arm ones answer 404), so `npm install` leaves them
// out of package-lock.json and `npm ci` then refuses the lock as out of sync. This adds a stub
// entry (version, os, cpu, optional) for each optional dependency the lock lacks; npm ci skips
// them on other platforms anyway. Run it after any `npm install` that rewrites the lock:
//   node scripts/lock-optional-stubs.js && npm ci
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const packages = lock.packages;
// Where a platform package's name says it: <name>-<os>-<cpu>.
const PLATFORM = /-(darwin|linux|win32|freebsd|android)-(x64|arm64|arm|ia32)(?:-\w+)?$/;
let added = 0;
for (const [key, meta] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const where = `node_modules/${dep}`;
    if (packages[where] || packages[`${key}/${where}`]) continue;
    const m = PLATFORM.exec(dep);
    if (!m) continue;
    packages[where] = { version, cpu: [m[2]], license: meta.license ?? 'MIT', optional: true, os: [m[1]] };
    added++;
  }
}
if (added) {
  lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)));
  fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
}
console.log(`lock-optional-stubs: ${added} stub(s) added`);
