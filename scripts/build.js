#!/usr/bin/env node
// Builds the native addon (release by default) and regenerates native.js (the napi-rs loader that
// index.js requires) and index.d.ts.
//   node scripts/build.js              always build (release)
//   node scripts/build.js --debug      debug build
//   node scripts/build.js --if-needed  skip when the .node file is newer than every source file
// In a clone, @napi-rs/cli comes from the dev dependencies. In an installed package (building from
// source on a platform with no prebuilt addon: `cd node_modules/@app/redis && npm run build`) it is
// run through npx.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const debug = args.includes('--debug');
const ifNeeded = args.includes('--if-needed');
// The CLI an installed package builds with (a clone uses its dev dependency).
const NAPI_CLI = '@napi-rs/cli@^3.10.0';

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
  // js/addon-realm.js is compiled in (include_str!).
  for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs', 'js/addon-realm.js']) {
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

const header = fs.readFileSync(path.join(root, 'src', 'binding', 'header.d.ts'), 'utf8');
const napiArgs = ['build', '--platform', '--no-const-enum', '--js', 'native.js', '--dts', 'index.d.ts',
  '--dts-header', header];
if (!debug) napiArgs.push('--release');
const localCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
const [cmd, cmdArgs] = fs.existsSync(localCli)
  ? [process.execPath, [localCli, ...napiArgs]]
  : ['npx', ['--yes', '--package', NAPI_CLI, 'napi', ...napiArgs]];
console.log(`@app/redis: building the native addon (${debug ? 'debug' : 'release'}); the first build takes a few minutes`);
const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
if (r.error) {
  console.error(`@app/redis: could not run the napi-rs CLI (${r.error.message}). Building from source needs Node.js with npx, ` +
    'Rust (https://rustup.rs) and a C compiler.');
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);

// The loader's `__napiBindingTarget` marker is internal (index.js makes it non-enumerable): its
// declaration is dropped from the generated typings so it is not part of the typed API.
const dts = path.join(root, 'index.d.ts');
const typings = fs.readFileSync(dts, 'utf8');
const withoutMarker = typings.replace(/\/\*\*(?:(?!\*\/)[\s\S])*?\*\/\nexport declare const __napiBindingTarget:[^\n]*\n\n?/, '');
if (withoutMarker !== typings) fs.writeFileSync(dts, withoutMarker);
