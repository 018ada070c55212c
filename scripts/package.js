#!/usr/bin/env node
// `npm run package`: the artifacts a registry publish needs, written into dist/:
//   - app-redis-<version>.tgz: the main package (JavaScript, types and the Rust sources for a
//     build from source; no binary), whose optionalDependencies name every platform package;
//   - app-redis-<platform>-<version>.tgz: one per npm/<platform>/ folder that has its addon.
// On Linux x64 it first builds linux-x64-gnu against glibc 2.17 with cargo-zigbuild (ziglang and
// cargo-zigbuild come from PyPI: `pip install ziglang cargo-zigbuild`) and prints the highest
// GLIBC_ symbol version the addon needs. The other platforms are built by the release workflow
// (.github/workflows/release.yml), which places each addon in npm/<platform>/ and runs
// `npm run package -- --no-build`.
//   node scripts/package.js                  build what this machine can, then pack
//   node scripts/package.js --no-build       pack the addons already in npm/<platform>/
//   node scripts/package.js --sync-versions  set every npm/<platform>/package.json to the main version
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const args = process.argv.slice(2);
const main = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const GLIBC_FLOOR = '2.17';

function run(cmd, cmdArgs, options = {}) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, encoding: 'utf8', stdio: options.capture ? 'pipe' : 'inherit', ...options });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${cmdArgs.join(' ')} exited with ${r.status}${options.capture ? `\n${r.stderr}` : ''}`);
  return r.stdout;
}

/** npm/<platform>/ folders, each a platform package. */
function platforms() {
  return fs.readdirSync(path.join(root, 'npm')).filter((d) => fs.existsSync(path.join(root, 'npm', d, 'package.json')));
}

function readPlatform(name) {
  const file = path.join(root, 'npm', name, 'package.json');
  return { file, pkg: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

/** Keeps every platform package at the main package's version. */
function syncVersions() {
  for (const name of platforms()) {
    const { file, pkg } = readPlatform(name);
    if (pkg.version !== main.version) {
      pkg.version = main.version;
      fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
      console.log(`npm/${name}/package.json: version ${main.version}`);
    }
  }
}

/** The highest GLIBC_x.y[.z] symbol version an ELF file needs (from its version-needed strings). */
function highestGlibc(file) {
  const text = fs.readFileSync(file).toString('latin1');
  const versions = [...text.matchAll(/GLIBC_(\d+)\.(\d+)(?:\.(\d+))?/g)].map((m) => [+m[1], +m[2], +(m[3] || 0)]);
  if (versions.length === 0) return null;
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const top = versions[versions.length - 1];
  return top[2] ? top.join('.') : `${top[0]}.${top[1]}`;
}

const versionLess = (a, b) => {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if ((pa[i] || 0) !== (pb[i] || 0)) return (pa[i] || 0) < (pb[i] || 0);
  }
  return false;
};

/** Builds linux-x64-gnu against glibc 2.17 and places it in npm/linux-x64-gnu/. */
function buildLinuxGnu() {
  const probe = spawnSync('cargo', ['zigbuild', '--help'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    throw new Error('cargo-zigbuild is not installed: `pip install ziglang cargo-zigbuild` (both from PyPI), then run again');
  }
  const triple = 'x86_64-unknown-linux-gnu';
  console.log(`building ${triple} against glibc ${GLIBC_FLOOR} (cargo zigbuild, release)`);
  // A target folder of its own: the zig toolchain's artifacts would otherwise replace the host
  // build's (same file names), and the next `npm test` would rebuild every dependency.
  const targetDir = path.join(root, 'target', 'zigbuild');
  run('cargo', ['zigbuild', '--release', '--lib', '--target', `${triple}.${GLIBC_FLOOR}`, '--target-dir', targetDir]);
  const built = path.join(targetDir, triple, 'release', 'libapp_redis.so');
  const dest = path.join(root, 'npm', 'linux-x64-gnu', 'app-redis.linux-x64-gnu.node');
  fs.copyFileSync(built, dest);
  // The addon must load in this Node and be the one this checkout's JavaScript expects.
  const probeLoad = spawnSync(process.execPath, ['-e', `const b = require(${JSON.stringify(dest)}); ` +
    "if (typeof b.RedisService !== 'function') process.exit(3)"], { stdio: 'inherit' });
  if (probeLoad.status !== 0) throw new Error(`${dest} does not load in Node ${process.version}`);
  return dest;
}

function pack(dir) {
  const out = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dist], { cwd: dir, capture: true });
  const [info] = JSON.parse(out);
  return { file: path.join(dist, info.filename), size: info.size, entries: info.entryCount };
}

/** The main package as published: optionalDependencies on every platform package, no dev-only fields. */
function stageMain(stage) {
  const listed = JSON.parse(run('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { capture: true }))[0].files;
  for (const { path: rel } of listed) {
    if (rel === 'package.json') continue;
    fs.mkdirSync(path.dirname(path.join(stage, rel)), { recursive: true });
    fs.copyFileSync(path.join(root, rel), path.join(stage, rel));
  }
  const pkg = { ...main };
  delete pkg.devDependencies;
  // Only `build` (a build from source, run by hand) survives: no install script, nothing for npm to run.
  pkg.scripts = { build: main.scripts.build };
  pkg.optionalDependencies = Object.fromEntries(platforms().map((name) => [readPlatform(name).pkg.name, main.version]));
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
}

function main_() {
  syncVersions();
  if (args.includes('--sync-versions')) return;
  fs.rmSync(dist, { recursive: true, force: true });
  fs.mkdirSync(dist, { recursive: true });

  let glibc = null;
  if (!args.includes('--no-build') && process.platform === 'linux' && process.arch === 'x64') {
    const addon = buildLinuxGnu();
    glibc = highestGlibc(addon);
    if (glibc && versionLess(GLIBC_FLOOR, glibc)) {
      throw new Error(`${addon} needs GLIBC_${glibc}, above the ${GLIBC_FLOOR} floor`);
    }
  }

  const written = [];
  for (const name of platforms()) {
    const { pkg } = readPlatform(name);
    const dir = path.join(root, 'npm', name);
    const addon = path.join(dir, pkg.main);
    if (!fs.existsSync(addon)) {
      console.log(`skipped ${pkg.name}: no ${pkg.main} (built by .github/workflows/release.yml)`);
      continue;
    }
    if (name.startsWith('linux-') && name.endsWith('-gnu') && glibc === null) glibc = highestGlibc(addon);
    written.push(pack(dir));
  }
  const stage = path.join(dist, 'stage');
  stageMain(stage);
  written.unshift(pack(stage));
  fs.rmSync(stage, { recursive: true, force: true });

  console.log('\nwrote:');
  for (const t of written) console.log(`  ${path.relative(root, t.file)}  (${(t.size / 1024).toFixed(0)} KiB, ${t.entries} files)`);
  if (glibc) console.log(`linux-x64-gnu addon: highest glibc symbol version needed: GLIBC_${glibc} (floor ${GLIBC_FLOOR})`);
}

try {
  main_();
} catch (e) {
  console.error(`npm run package: ${e.message}`);
  process.exit(1);
}
