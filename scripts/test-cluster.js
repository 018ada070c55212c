#!/usr/bin/env node
// `npm run test:cluster`: the ordinary command, lock, rate-limit, session/cache and pub/sub
// suites against a local Redis Cluster (3 masters + 3 replicas) and a Sentinel setup (master,
// replica, 3 Sentinels), each with its mode's own suite (failover included). Every suite starts
// and stops its own servers on free ports.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const jest = [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand'];
const shared = ['commands', 'locks', 'rate-limit', 'sessions-cache', 'pubsub'].map((f) => `__test__/${f}.spec.js`);

const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.js'), '--if-needed'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(1);
for (const mode of ['cluster', 'sentinel']) {
  const args = [...jest, ...shared, `__test__/cluster/${mode}.spec.js`, ...process.argv.slice(2)];
  console.log(`\n$ REDIS_MODE=${mode} jest ${args.slice(2).join(' ')}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, REDIS_MODE: mode } });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}
