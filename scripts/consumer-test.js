#!/usr/bin/env node
// `npm run test:consumer`: installs @app/redis as a user would and uses it.
//   1. Starts a throwaway npm registry (verdaccio, installed into a temporary folder from the
//      lock file in scripts/consumer/registry/) on 127.0.0.1 and publishes dist/*.tgz to it
//      (`npm run package` first when dist/ is missing).
//   2. In fresh temporary projects, with no cargo on PATH, `npm install`s @app/redis from it
//      (every other package from the usual registry) and runs:
//      - cjs-nest11: a NestJS 11 CommonJS app's jest suite (RedisModule.forRoot from
//        process.env.REDIS_URL, RedisService injected: set/get, withLock, rateLimit, a session),
//        a plain `require` script and a plain `import` script, and the types test (TypeScript 5
//        with node10, node16 and bundler resolution; TypeScript 7 with nodenext and bundler);
//      - esm-nest12: the same suite as ES modules on NestJS 12 (ES modules only), written once
//        and run under jest's ESM mode and under vitest, and the app under plain Node;
//      - both: a parallel suite written with @app/redis/testing (4 jest workers in cjs-nest11,
//        on REDIS_URL and on the global setup's own redis-server; vitest in esm-nest12).
//   3. Prints what it installed and how long each install took, then tears everything down.
// The projects live in scripts/consumer/<name>/ (their files, not node_modules).
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort, startRedis, sleep } = require('./redis-server');

const root = path.resolve(__dirname, '..');
const consumerDir = path.join(__dirname, 'consumer');
const dist = path.join(root, 'dist');
const KEEP = process.env.CONSUMER_KEEP === '1';

function log(msg) { console.log(`[consumer] ${msg}`); }

function run(cmd, args, { cwd, env, quiet = false } = {}) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: quiet ? 'pipe' : 'inherit' });
  const seconds = (Date.now() - started) / 1000;
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = quiet ? `\n${r.stdout}${r.stderr}` : '';
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited with ${r.status}${out}`);
  }
  return { seconds, stdout: r.stdout };
}

/** PATH without any folder that holds cargo or rustc: the consumer never builds Rust. */
function pathWithoutRust() {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter((d) =>
    d && !['cargo', 'rustc', 'cargo-zigbuild'].some((bin) => fs.existsSync(path.join(d, bin))));
  return dirs.join(path.delimiter);
}

function tarballs() {
  if (!fs.existsSync(dist) || !fs.readdirSync(dist).some((f) => f.endsWith('.tgz'))) {
    log('dist/ has no tarballs: running npm run package');
    run(process.execPath, [path.join(__dirname, 'package.js')], { cwd: root });
  }
  return fs.readdirSync(dist).filter((f) => f.endsWith('.tgz')).map((f) => path.join(dist, f));
}

/** verdaccio, installed once per lock file into the temp folder (not into the repository). */
function installRegistry() {
  const lock = fs.readFileSync(path.join(consumerDir, 'registry', 'package-lock.json'));
  const dir = path.join(os.tmpdir(), `app-redis-verdaccio-${crypto.createHash('sha256').update(lock).digest('hex').slice(0, 12)}`);
  const bin = path.join(dir, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
  if (!fs.existsSync(bin)) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(consumerDir, 'registry', f), path.join(dir, f));
    const { seconds } = run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir });
    log(`installed verdaccio 6.8.0 in ${seconds.toFixed(1)} s`);
  }
  return bin;
}

async function startRegistry(bin, work) {
  const port = await freePort();
  const storage = path.join(work, 'storage');
  const config = path.join(work, 'config.yaml');
  fs.writeFileSync(config, [
    `storage: ${storage}`,
    'auth:',
    '  htpasswd:',
    `    file: ${path.join(work, 'htpasswd')}`,
    'uplinks: {}',
    'packages:',
    "  '@app/*':",
    '    access: $all',
    '    publish: $authenticated',
    "  '**':",
    '    access: $all',
    'log: { type: stdout, format: pretty, level: warn }',
    '',
  ].join('\n'));
  const child = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}-/ping`);
      if (res.ok) return { child, url, port };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill();
  throw new Error(`verdaccio did not answer on ${url} within 15 s:\n${output}`);
}

/** Adds a user (the registry's own htpasswd) and returns its token. */
async function addUser(url) {
  const name = 'consumer-test';
  const res = await fetch(`${url}-/user/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: crypto.randomBytes(12).toString('hex'), type: 'user', roles: [] }),
  });
  const body = await res.json();
  if (!body.token) throw new Error(`verdaccio refused the test user: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

function npmrc(dir, registryUrl, token) {
  const host = registryUrl.replace(/^http:/, '');
  const lines = [`@app:registry=${registryUrl}`, 'fund=false', 'audit=false', 'update-notifier=false'];
  if (token) lines.push(`${host}:_authToken=${token}`);
  fs.writeFileSync(path.join(dir, '.npmrc'), `${lines.join('\n')}\n`);
}

/** Copies scripts/consumer/<name>/ into a fresh folder and installs it. */
function project(name, work, registryUrl, env) {
  const dir = path.join(work, name);
  fs.cpSync(path.join(consumerDir, name), dir, { recursive: true });
  npmrc(dir, registryUrl);
  const { seconds } = run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env });
  const installed = JSON.parse(run('npm', ['ls', '--json', '--depth=0'], { cwd: dir, env, quiet: true }).stdout).dependencies;
  const versions = Object.entries(installed).map(([k, v]) => `${k}@${v.version}`).join(', ');
  const platform = fs.readdirSync(path.join(dir, 'node_modules', '@app')).filter((d) => d !== 'redis');
  log(`${name}: npm install took ${seconds.toFixed(1)} s: ${versions}; platform packages: ${platform.join(', ') || 'none'}`);
  return { dir, seconds };
}

async function main() {
  const files = tarballs();
  log(`packages: ${files.map((f) => path.basename(f)).join(', ')}`);
  const bin = installRegistry();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-consumer-'));
  let registry = null;
  let redis = null;
  const results = [];
  try {
    registry = await startRegistry(bin, work);
    log(`registry at ${registry.url}`);
    const token = await addUser(registry.url);
    const publishDir = path.join(work, 'publish');
    fs.mkdirSync(publishDir);
    npmrc(publishDir, registry.url, token);
    for (const file of files) {
      run('npm', ['publish', file, '--registry', registry.url, '--loglevel=error'], { cwd: publishDir, quiet: true });
    }
    redis = await startRedis();
    // The projects see what a user's shell would: no cargo, none of `npm run`'s own variables.
    const env = { ...process.env, PATH: pathWithoutRust(), REDIS_URL: redis.url };
    for (const k of Object.keys(env)) if (k.startsWith('npm_') || k === 'NODE_OPTIONS' || k === 'INIT_CWD') delete env[k];
    const cargo = spawnSync('cargo', ['--version'], { env, stdio: 'ignore' });
    if (!cargo.error) throw new Error('cargo is still on the PATH given to the consumer projects');
    log('PATH for the projects has no cargo');

    const check = (name, fn) => {
      const started = Date.now();
      fn();
      results.push(`${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      log(`passed: ${name}`);
    };

    const cjs = project('cjs-nest11', work, registry.url, env);
    check('NestJS 11, CommonJS, jest', () => run(process.execPath, ['node_modules/jest/bin/jest.js', '--ci'], { cwd: cjs.dir, env }));
    check('plain Node, require', () => run(process.execPath, ['plain.cjs'], { cwd: cjs.dir, env }));
    check('plain Node, import', () => run(process.execPath, ['plain.mjs'], { cwd: cjs.dir, env }));
    check('types', () => run(process.execPath, ['types.js'], { cwd: cjs.dir, env }));
    // @app/redis/testing as an app's own suite uses it: 4 files in 4 jest workers, on the
    // project's Redis (which must be left as it was found) and on the global setup's own server.
    const noUrl = { ...env };
    delete noUrl.REDIS_URL;
    const testingJest = [path.join('node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--config', path.join('testing', 'jest.config.js'), '--maxWorkers=4'];
    check('@app/redis/testing, 4 parallel jest files, REDIS_URL', () => {
      const before = redis.cli('KEYS', '*').split('\n').sort().join(',');
      run(process.execPath, testingJest, { cwd: cjs.dir, env });
      const after = redis.cli('KEYS', '*').split('\n').sort().join(',');
      if (after !== before) throw new Error(`the parallel suite left keys behind: ${after}`);
    });
    check('@app/redis/testing, 4 parallel jest files, the global setup\'s redis-server', () => run(process.execPath, testingJest, { cwd: cjs.dir, env: noUrl }));

    const esm = project('esm-nest12', work, registry.url, env);
    check('NestJS 12, ES modules, jest ESM mode', () => run(process.execPath,
      ['--experimental-vm-modules', '--no-warnings', 'node_modules/jest/bin/jest.js', '--ci'], { cwd: esm.dir, env }));
    check('NestJS 12, ES modules, vitest', () => run(process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--dir', 'vitest'], { cwd: esm.dir, env }));
    check('NestJS 12, ES modules, plain Node', () => run(process.execPath, ['main.js'], { cwd: esm.dir, env }));
    check('@app/redis/testing, NestJS 12, vitest in parallel, the global setup\'s redis-server', () => run(process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--config', path.join('testing', 'vitest.config.js')], { cwd: esm.dir, env: noUrl }));
  } finally {
    if (registry) registry.child.kill();
    if (redis) await redis.stop();
    if (KEEP) log(`kept ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
  log(`all ${results.length} checks passed: ${results.join(', ')}`);
}

main().catch((e) => {
  console.error(`[consumer] FAILED: ${e.stack || e.message}`);
  process.exit(1);
});
