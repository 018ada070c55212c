#!/usr/bin/env node
// `npm run test:crash`: what a caller or its host may do must never take the process down. Each
// scenario in faults/crash/ runs in a child process, on the JS-thread path and on the runtime
// path (APP_REDIS_NO_UV=1), against a redis-server started here, then both ways against a TLS
// redis-server and against a local Redis Cluster (3 masters); it passes when the child prints its `ok` line and exits 0 by
// itself (no signal, no hang) within the time limit.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startRedis, RedisCluster } = require('../scripts/redis-server');
const { Certs } = require('../scripts/certs');

const DIR = path.join(__dirname, 'crash');
const LIMIT_MS = 120000;
const scenarios = fs.readdirSync(DIR).filter((f) => f.endsWith('.js') && f !== 'common.js').sort();
const only = process.argv[2];
const paths = [['JS-thread path', {}], ['runtime path', { APP_REDIS_NO_UV: '1' }]];

function run(file, env) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [path.join(DIR, file)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, ms: Date.now() - started });
    });
  });
}

(async () => {
  // Redis drops a subscriber past its pub/sub output buffer limit (32 MB by default): lifted, so
  // a message past V8's string limit reaches us.
  const server = await startRedis({ args: ['--client-output-buffer-limit', 'pubsub', '0', '0', '0'] });
  const certs = new Certs();
  certs.ca('ca');
  certs.cert('server', 'ca', 'IP:127.0.0.1');
  const tlsArgs = ['--client-output-buffer-limit', 'pubsub', '0', '0', '0'];
  const tlsServer = await startRedis({ args: tlsArgs, tls: { cert: certs.file('server.crt'), key: certs.file('server.key'), ca: certs.file('ca.crt'), authClients: false } });
  const cluster = await new RedisCluster({ masters: 3, replicasPerMaster: 0 }).start();
  for (const n of cluster.nodes) {
    execFileSync('redis-cli', ['-p', String(n.port), 'CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 0 0 0'], { stdio: 'ignore' });
  }
  const targets = [
    ['standalone', { REDIS_URL: server.url }],
    ['standalone over TLS', { REDIS_URL: `rediss://127.0.0.1:${tlsServer.port}`, CRASH_TLS_CA: certs.file('ca.crt') }],
    ['cluster', { REDIS_CLUSTER_NODES: cluster.options.cluster.nodes.join(',') }],
  ];
  const modes = targets.flatMap(([t, tenv]) => paths.map(([p, penv]) => [`${t}, ${p}`, { ...tenv, ...penv }]));
  let passed = 0;
  let failed = 0;
  try {
    for (const file of scenarios.filter((f) => !only || f.includes(only))) {
      const name = file.replace(/\.js$/, '');
      for (const [mode, env] of modes) {
        const r = await run(file, env);
        const ok = r.code === 0 && r.signal === null && r.out.includes(`ok ${name}`);
        if (ok) passed++;
        else failed++;
        const how = r.signal ? `killed by ${r.signal}${r.ms >= LIMIT_MS ? ' (hung: time limit)' : ''}` : `exit ${r.code}`;
        console.log(`${ok ? 'pass' : 'FAIL'}  ${name} (${mode}): ${how}, ${(r.ms / 1000).toFixed(1)} s`);
        if (!ok) console.log(r.out.split('\n').map((l) => `      ${l}`).join('\n'));
      }
    }
  } finally {
    await server.stop();
    await tlsServer.stop();
    await cluster.stop();
    certs.remove();
  }
  console.log(`\ncrash suite: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})();
