#!/usr/bin/env node
// The README's test command: Rust unit tests, then the jest suites against real redis-server
// processes (and the command suites again on the fallback path without libuv). Builds the addon first if the sources changed since the last build.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const run = (cmd, args, env = {}) => {
  const shown = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('');
  console.log(`\n$ ${shown}${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
};

run(process.execPath, [path.join(root, 'scripts', 'build.js'), '--if-needed']);
run('cargo', ['test', '--lib', '--release']);
const jest = [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand'];
run(process.execPath, [...jest, ...process.argv.slice(2)]);
// The fallback path (hosts without libuv: commands go through the runtime thread) must behave
// the same: run the command, lifecycle and lock suites on it too.
if (process.argv.length <= 2) {
  run(process.execPath, [...jest, '__test__/commands.spec.js', '__test__/lifecycle.spec.js', '__test__/locks.spec.js'], { APP_REDIS_NO_UV: '1' });
}
