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
rustTests();
/**
 * The Rust unit tests, on the addon's own dependency builds: after the addon's build,
 * `cargo test --release` compiled 95 crates again (about half of this command's time), while
 * `cargo build --tests` for the addon's target (the host triple, as napi passes it) compiled 1.
 * So the test binary is built that way and run directly.
 */
function rustTests() {
  const host = /host: (\S+)/.exec(spawnSync('rustc', ['-vV'], { encoding: 'utf8' }).stdout || '');
  const cargoArgs = ['build', '--release', '--lib', '--tests', '--message-format=json-render-diagnostics',
    ...(host ? ['--target', host[1]] : [])];
  console.log(`\n$ cargo ${cargoArgs.join(' ')}`);
  const b = spawnSync('cargo', cargoArgs, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  if (b.status !== 0) process.exit(b.status === null ? 1 : b.status);
  const exe = b.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .find((m) => m.reason === 'compiler-artifact' && m.profile && m.profile.test && m.executable);
  if (!exe) {
    console.error('cargo built no test binary');
    process.exit(1);
  }
  run(exe.executable, []);
}

const jest = [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand'];
run(process.execPath, [...jest, ...process.argv.slice(2)]);
// The fallback path (hosts without libuv: commands go through the runtime thread) must behave
// the same: run the command, lifecycle, lock, TLS/ACL, near-cache and observability suites on it
// too.
if (process.argv.length <= 2) {
  run(process.execPath, [...jest, '__test__/commands.spec.js', '__test__/lifecycle.spec.js', '__test__/locks.spec.js', '__test__/tls-acl.spec.js', '__test__/near-cache.spec.js', '__test__/observability.spec.js'], { APP_REDIS_NO_UV: '1' });
}
