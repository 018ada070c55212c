#!/usr/bin/env node
// `npm run test:bun`: the package under Bun (the `bun` dev dependency, from the npm registry),
// against a redis-server started here: the README's quick start pasted as it is, the plain-Node
// demo, and the Bun suite (__test__/bun/: commands, locks, rate limits, sessions, the cache,
// pub/sub, exiting, crash scenarios) under `bun test`.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startRedis } = require('./redis-server');

const root = path.resolve(__dirname, '..');
const bun = path.join(root, 'node_modules', 'bun', 'bin', 'bun.exe');

function run(args, opts = {}) {
  console.log(`\n$ bun ${args.join(' ')}`);
  const r = spawnSync(bun, args, { stdio: 'inherit', timeout: 600000, ...opts });
  if (r.status !== 0) {
    console.error(`bun ${args.join(' ')}: ${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}`);
    process.exit(1);
  }
}

/** The bun package's binary is put in place by its postinstall; run it when it was skipped. */
function ensureBun() {
  const version = () => spawnSync(bun, ['--version'], { encoding: 'utf8' });
  let v = version();
  if (v.status !== 0) {
    spawnSync(process.execPath, ['install.js'], { cwd: path.join(root, 'node_modules', 'bun'), stdio: 'inherit' });
    v = version();
  }
  if (v.status !== 0) {
    console.error('test:bun: no working Bun in node_modules/bun (run npm ci)');
    process.exit(1);
  }
  console.log(`Bun ${v.stdout.trim()}`);
}

/** The README's plain-Node quick start, as it is, in a project that has @app/redis installed. */
function quickStart(url) {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Plain Node'));
  const code = /```js\n([\s\S]*?)```/.exec(section)[1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-bun-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules', '@app'), { recursive: true });
    fs.symlinkSync(root, path.join(dir, 'node_modules', '@app', 'redis'), 'dir');
    // The snippet connects to redis://localhost:6379: pointed at this run's server instead.
    fs.writeFileSync(path.join(dir, 'quickstart.js'), `${code.replace('redis://localhost:6379', url)}console.log('quick start: user is', user.name);\n`);
    run(['quickstart.js'], { cwd: dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  ensureBun();
  const server = await startRedis();
  const env = { ...process.env, REDIS_URL: server.url };
  try {
    quickStart(server.url);
    run([path.join(root, 'examples', 'plain-node.js')], { env });
    run(['test', path.join(root, '__test__', 'bun')], { env, cwd: root });
  } finally {
    await server.stop();
  }
})();
