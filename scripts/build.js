#!/usr/bin/env node
// Builds the native addon (release by default) and regenerates index.js / index.d.ts
// (index.js gets a one-line footer: see js/realm.js).
//   node scripts/build.js              always build (release)
//   node scripts/build.js --debug      debug build
//   node scripts/build.js --if-needed  skip when the .node file is newer than every source file
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const debug = args.includes('--debug');
const ifNeeded = args.includes('--if-needed');

function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(root, 'src'));
  for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs']) {
    const p = path.join(root, f);
    if (fs.existsSync(p)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

function builtAddon() {
  const files = fs.readdirSync(root).filter((f) => /^app-redis\..*\.node$/.test(f));
  if (files.length === 0) return null;
  return Math.max(...files.map((f) => fs.statSync(path.join(root, f)).mtimeMs));
}

if (ifNeeded) {
  const built = builtAddon();
  if (built !== null && built >= newestSource()) {
    process.exit(0);
  }
}

const cli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
if (!fs.existsSync(cli)) {
  // Installed as a dependency: a prebuilt @app/redis-<platform> package may already provide the addon.
  if (ifNeeded) {
    try {
      require(path.join(root, 'index.js'));
      process.exit(0);
    } catch {
      // fall through to the error below
    }
  }
  console.error('@app/redis: no prebuilt addon for this platform and @napi-rs/cli is not installed.\n' +
    '  In a clone of the package run `npm install`; elsewhere install Rust (https://rustup.rs) and run `npm run build` in node_modules/@app/redis.');
  process.exit(1);
}
const header = fs.readFileSync(path.join(root, 'src', 'binding', 'header.d.ts'), 'utf8');
const buildArgs = [cli, 'build', '--platform', '--no-const-enum', '--dts-header', header];
if (!debug) buildArgs.push('--release');
console.log(`@app/redis: building the native addon (${debug ? 'debug' : 'release'}); the first build takes a few minutes`);
const r = spawnSync(process.execPath, buildArgs, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);

// `env` defaults must be read in the caller's realm (see js/realm.js): the generated loader ends
// by handing the binding to it.
const FOOTER = "\n// @app/redis: `process.env` defaults come from the caller's realm (js/realm.js).\nrequire('./js/realm.js').install(module.exports)\n";
const indexJs = path.join(root, 'index.js');
const generated = fs.readFileSync(indexJs, 'utf8');
if (!generated.includes("require('./js/realm.js')")) fs.writeFileSync(indexJs, generated + FOOTER);
