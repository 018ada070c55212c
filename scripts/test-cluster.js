#!/usr/bin/env node
// `npm run test:cluster`: the ordinary command, lock, rate-limit, session/cache and pub/sub
// suites against a local Redis Cluster (3 masters + 3 replicas) and a Sentinel setup (master,
// replica, 3 Sentinels), each with its mode's own suite (failover included), and the cluster
// command suites again on the runtime path only. Every suite starts and stops its own servers
// on free ports.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const jest = [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand'];
const shared = ['commands', 'locks', 'rate-limit', 'sessions-cache', 'pubsub'].map((f) => `__test__/${f}.spec.js`);

const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.js'), '--if-needed'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(1);
// Cluster mode also once with APP_REDIS_NO_UV=1: every command through the crate's cluster
// connection, as over TLS.
const runs = [
  ['cluster', [...shared, '__test__/cluster/cluster.spec.js', '__test__/cluster/near-cache.spec.js'], {}],
  ['cluster', ['__test__/commands.spec.js', '__test__/cluster/cluster.spec.js'], { APP_REDIS_NO_UV: '1' }],
  ['sentinel', [...shared, '__test__/cluster/sentinel.spec.js'], {}],
];
for (const [mode, files, extra] of runs) {
  const args = [...jest, ...files, ...process.argv.slice(2)];
  const env = { REDIS_MODE: mode, ...extra };
  console.log(`\n$ ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} jest ${args.slice(2).join(' ')}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}
