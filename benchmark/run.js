#!/usr/bin/env node
// `npm run bench`: @app/redis against ioredis (with and without auto-pipelining) and node-redis,
// then its locks against redlock and redis-semaphore (benchmark/locks.js) and its rate limits
// against rate-limiter-flexible and the MULTI INCR/EXPIRE pattern (benchmark/rate-limit.js), and
// its sessions and cache against GET + JSON.parse on ioredis (benchmark/sessions-cache.js),
// on one redis-server this script starts; then cluster mode against ioredis Cluster and
// node-redis createCluster on a local 3-master cluster (benchmark/cluster.js). Interleaved rounds; prints the median ops/s, the
// Node-process CPU time per operation (user + system, all threads, in microseconds) and the
// ratio of ours to the best peer. Under Bun (`bun benchmark/run.js`, BENCH_ONLY to pick rows) the
// command rows also run Bun's built-in client.
'use strict';
const fs = require('node:fs');
const { startRedis, RedisCluster } = require('../scripts/redis-server');
const { RedisService } = require('..');
const IORedis = require('ioredis');
const { createClient } = require('redis');
const { ourOptions, ioredisOptions, nodeRedisOptions } = require('./connect');
const { Certs } = require('../scripts/certs');
const { lockClients, lockScenarios } = require('./locks');
const { rateClients, rateScenarios } = require('./rate-limit');
const { sessionCacheClients, sessionCacheScenarios } = require('./sessions-cache');
const { clusterClients, clusterScenarios, seedCluster } = require('./cluster');
const { nearCacheClients, nearCacheScenarios, memoryPerEntry, staleness } = require('./near-cache');
const { observabilityClients, observabilityScenarios } = require('./observability');
const { handover, PROCESSES, WORKERS } = require('./handover');
const { processCpuUs, roundTripsPerSec } = require('./limits');

const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS || 1000);
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : null;

const v100 = 'x'.repeat(100);
const v100k = 'y'.repeat(100 * 1024);
const mgetKeys = Array.from({ length: 100 }, (_, i) => `bench:m:${i}`);

function ioredisAdapter(name, options) {
  return {
    name,
    async open() { this.c = new IORedis(options); await this.c.connect(); },
    close() { this.c.disconnect(); },
    ops(c = this.c) {
      return {
        get: (k) => c.get(k), set: (k, v) => c.set(k, v), mget: (ks) => c.mget(ks),
        pipeline: (n) => { const p = c.pipeline(); for (let i = 0; i < n; i++) p.get('bench:k'); return p.exec(); },
      };
    },
  };
}

/** Under Bun (`bun benchmark/run.js`), Bun's own client (`Bun.RedisClient`, auto-pipelining). */
function bunAdapter(server) {
  if (typeof Bun === 'undefined' || !Bun.RedisClient || server.tls) return [];
  return [{
    name: 'Bun.redis',
    // eslint-disable-next-line no-undef
    async open() { this.c = new Bun.RedisClient(server.url); await this.c.connect(); },
    close() { this.c.close(); },
    ops(c = this.c) {
      return {
        get: (k) => c.get(k), set: (k, v) => c.set(k, v), mget: (ks) => c.send('MGET', ks),
        pipeline: (n) => { const ps = []; for (let i = 0; i < n; i++) ps.push(c.get('bench:k')); return Promise.all(ps); },
      };
    },
  }];
}

// Each client adapter exposes the same small surface. `server` is `{ url, tls }` (see connect.js).
function adapters(server) {
  return [
    {
      name: '@app/redis',
      async open() {
        this.c = await RedisService.connect(ourOptions(server));
      },
      close() { return this.c.disconnect(); },
      ops(c = this.c) {
        return {
          get: (k) => c.get(k),
          set: (k, v) => c.set(k, v),
          mget: (ks) => c.mget(ks),
          pipeline: (n) => { const p = c.pipeline(); for (let i = 0; i < n; i++) p.get('bench:k'); return p.exec(); },
        };
      },
    },
    ioredisAdapter('ioredis', ioredisOptions(server)),
    ioredisAdapter('ioredis (autoPipelining)', ioredisOptions(server, { enableAutoPipelining: true })),
    {
      name: 'node-redis',
      async open() { this.c = createClient(nodeRedisOptions(server)); await this.c.connect(); },
      close() { return this.c.quit(); },
      ops(c = this.c) {
        return {
          get: (k) => c.get(k), set: (k, v) => c.set(k, v), mget: (ks) => c.mGet(ks),
          pipeline: (n) => { const p = c.multi(); for (let i = 0; i < n; i++) p.get('bench:k'); return p.execAsPipeline(); },
        };
      },
    },
    ...bunAdapter(server),
  ];
}

// Scenarios: `run(ops)` performs one unit and returns how many operations it counted.
const scenarios = [
  { name: 'GET 100 B, sequential', trips: 1, unit: async (o) => { await o.get('bench:k'); return 1; } },
  { name: 'SET 100 B, sequential', trips: 1, unit: async (o) => { await o.set('bench:s', v100); return 1; } },
  { name: 'GET 100 B, 256 in flight', serverBound: true, unit: async (o) => {
    const ps = new Array(256);
    for (let i = 0; i < 256; i++) ps[i] = o.get('bench:k');
    await Promise.all(ps);
    return 256;
  } },
  { name: 'GET 100 KB, sequential', unit: async (o) => { await o.get('bench:big'); return 1; } },
  { name: 'MGET 100 keys', unit: async (o) => { await o.mget(mgetKeys); return 1; } },
  { name: 'pipeline of 100 GETs', unit: async (o) => { await o.pipeline(100); return 100; } },
];

/** One round of `unit`; `serverPid`: the redis-server whose CPU time to read as well (or null). */
async function measure(ops, unit, name, state, serverPid) {
  // warm-up
  const warmEnd = Date.now() + 100;
  while (Date.now() < warmEnd) await unit(ops, name, state);
  const cpu0 = process.cpuUsage();
  const server0 = serverPid ? processCpuUs(serverPid) : null;
  const t0 = process.hrtime.bigint();
  const end = Date.now() + ROUND_MS;
  let n = 0;
  while (Date.now() < end) n += await unit(ops, name, state);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const server = server0 === null ? null : processCpuUs(serverPid) - server0;
  return {
    opsPerSec: n / secs,
    cpuUsPerOp: (cpu.user + cpu.system) / n,
    serverUsPerOp: server === null ? null : server / n,
    serverBusy: server === null ? null : server / (secs * 1e6),
  };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const isOurs = (name) => name.startsWith('@app/redis');

/**
 * Runs every scenario over every client in interleaved rounds; returns one row per scenario.
 * `serverPid`: the one redis-server they use, whose CPU per operation is read too (or null).
 */
async function runSuite(clients, scenarios, serverPid = null) {
  const rows = [];
  for (const sc of scenarios) {
    if (only && !only.test(sc.name)) continue;
    const active = clients.filter((c) => !(sc.skip && sc.skip(c.ops())));
    const results = new Map(active.map((c) => [c.name, { ops: [], cpu: [], server: [], busy: [], state: { inside: 0, violations: 0 } }]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? active : [...active].reverse();
      for (const c of order) {
        const res = results.get(c.name);
        const m = await measure(c.ops(), sc.unit, c.name.replace(/\W+/g, '-'), res.state, serverPid);
        res.ops.push(m.opsPerSec);
        res.cpu.push(m.cpuUsPerOp);
        if (m.serverUsPerOp !== null) {
          res.server.push(m.serverUsPerOp);
          res.busy.push(m.serverBusy);
        }
      }
    }
    const summary = active.map((c) => {
      const res = results.get(c.name);
      const server = res.server.length ? median(res.server) : null;
      const busy = res.busy.length ? median(res.busy) : null;
      return { name: c.name, ops: median(res.ops), cpu: median(res.cpu), server, busy, violations: res.state.violations };
    });
    const ours = summary[0];
    const peers = summary.filter((x) => !isOurs(x.name));
    const bestPeer = peers.reduce((a, b) => (b.ops > a.ops ? b : a));
    const leastCpuPeer = peers.reduce((a, b) => (b.cpu < a.cpu ? b : a));
    const row = { scenario: sc.name, summary, ratio: ours.ops / bestPeer.ops, best: bestPeer.name, cpuRatio: leastCpuPeer.cpu / ours.cpu, cpuBest: leastCpuPeer.name };
    rows.push(row);
    printRow(row);
  }
  return rows;
}

function printTable(title, rows) {
  if (rows.length === 0) return;
  console.log(`\n${title} (ops/s ratio = ours / best peer; CPU ratio = leanest peer CPU per op / ours, > 1 means we use less):`);
  console.log('| scenario | @app/redis ops/s | best peer | peer ops/s | ops/s ratio | our CPU µs/op | leanest peer CPU µs/op | CPU ratio | server CPU µs/op, ours / best peer | exclusion violations |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const peer = r.summary.find((s) => s.name === r.best);
    const lean = r.summary.find((s) => s.name === r.cpuBest);
    const violations = r.summary.map((s) => s.violations).reduce((a, b) => a + b, 0);
    // One line per client of ours in the scenario (`@app/redis withLock` gets its own).
    for (const ours of r.summary.filter((x) => isOurs(x.name))) {
      const label = ours.name === '@app/redis' ? r.scenario : `${r.scenario} (${ours.name.slice('@app/redis '.length)})`;
      const server = ours.server === null ? '-' : `${ours.server.toFixed(2)} / ${peer.server.toFixed(2)}`;
      console.log(`| ${label} | ${fmt(ours.ops)} | ${r.best} | ${fmt(peer.ops)} | ${(ours.ops / peer.ops).toFixed(2)}x | ${ours.cpu.toFixed(2)} | ${lean.cpu.toFixed(2)} (${r.cpuBest}) | ${(lean.cpu / ours.cpu).toFixed(2)}x | ${server} | ${violations} |`);
    }
  }
}

/** Opens `clients`, runs `scenarios` over them on `server` (`{ url, tls, pid }`), closes them. */
async function suite(clients, list, server) {
  for (const c of clients) await c.open();
  const rows = await runSuite(clients, list, server.pid);
  for (const c of clients) await c.close();
  return rows;
}

/** The command rows on `server`: seeds the keys they read, through ioredis. */
async function commandSuite(server, list) {
  const clients = adapters(server);
  const seed = new IORedis(ioredisOptions(server));
  await seed.connect();
  await seed.set('bench:k', v100);
  await seed.set('bench:big', v100k);
  for (const k of mgetKeys) await seed.set(k, v100);
  seed.disconnect();
  return suite(clients, list, server);
}

// Over TLS (a throwaway CA, every client checking the server's certificate against it): the
// command, lock and rate-limit rows that matter most, named with " over TLS".
const overTls = (list, names) => list.filter((sc) => names.some((n) => sc.name.startsWith(n)))
  .map((sc) => ({ ...sc, name: `${sc.name} over TLS` }));
const tlsCommandScenarios = overTls(scenarios, ['GET 100 B', 'SET 100 B']);
const tlsLockScenarios = overTls(lockScenarios, ['lock acquire + release, uncontended, sequential', 'lock acquire + release, uncontended, 64', 'lock, 16 workers']);
const tlsRateScenarios = overTls(rateScenarios, ['rate-limit check']);

/** The TLS rows, on a TLS-only redis-server of their own. */
async function tlsSuites() {
  const wanted = [...tlsCommandScenarios, ...tlsLockScenarios, ...tlsRateScenarios];
  if (only && !wanted.some((sc) => only.test(sc.name))) return { commands: [], locks: [], rates: [] };
  const certs = new Certs();
  certs.ca('ca');
  certs.cert('server', 'ca', 'IP:127.0.0.1');
  const tlsServer = await startRedis({ tls: { cert: certs.file('server.crt'), key: certs.file('server.key'), ca: certs.file('ca.crt'), authClients: false } });
  const server = { url: `rediss://127.0.0.1:${tlsServer.port}`, tls: { ca: fs.readFileSync(certs.file('ca.crt')) }, pid: tlsServer.proc.pid };
  try {
    return {
      commands: await commandSuite(server, tlsCommandScenarios),
      locks: await suite(lockClients(server), tlsLockScenarios, server),
      rates: await suite(rateClients(server), tlsRateScenarios, server),
    };
  } finally {
    await tlsServer.stop();
    certs.remove();
  }
}

async function main() {
  const server = await startRedis();
  const plain = { url: server.url, tls: null, pid: server.proc.pid };
  console.log(`redis-server on port ${server.port}; ${ROUNDS} interleaved rounds of ${ROUND_MS} ms per client and scenario`);
  // The round trip no client can beat, measured before the clients run (see limits.js).
  const roundTrips = roundTripsPerSec(server.port);
  console.log(`redis-benchmark -c 1: ${roundTrips ? fmt(roundTrips) : '?'} GETs/s (one connection, one command at a time)`);
  const commandRows = await commandSuite(plain, scenarios);
  const lockRows = await suite(lockClients(plain), lockScenarios, plain);

  // Cross-process hand-over: one key, several processes, the next holder woken by the release.
  // Two shapes: empty turns straight back in line, and request-like turns (1 ms of awaited work
  // under the lock, 5 ms before that worker asks again).
  const handoverName = `lock hand-over, ${PROCESSES} processes x ${WORKERS} workers on one key`;
  const shapes = [
    { name: 'empty turns, straight back in line', workMs: 0, pauseMs: 0 },
    { name: '1 ms of awaited work per turn, 5 ms between a worker\'s turns', workMs: 1, pauseMs: 5 },
  ];
  const handovers = [];
  if (!only || only.test(handoverName)) {
    for (const shape of shapes) {
      const pair = [];
      for (const client of ['@app/redis', 'redlock (ioredis)']) pair.push(await handover(client, server.url, shape));
      handovers.push({ shape, pair });
      console.log(`\n${handoverName}, ${shape.name}`);
      for (const h of pair) {
        console.log(`  ${h.client.padEnd(28)} ${fmt(h.cycles).padStart(9)} cycles/s   ${fmt(h.handovers)} to another process: p50 ${h.p50.toFixed(2)} ms, p99 ${h.p99.toFixed(2)} ms   violations ${h.violations}   turn ${h.turnMs.toFixed(2)} ms   shares ${h.shares.map((x) => `${Math.round(x * 100)}%`).join('/')}, longest without a turn ${fmt(h.starved)} ms`);
      }
    }
  }

  const rateRows = await suite(rateClients(plain), rateScenarios, plain);
  const scRows = await suite(sessionCacheClients(plain), sessionCacheScenarios, plain);
  const ncRows = [
    ...await suite(nearCacheClients(plain), nearCacheScenarios.filter((sc) => !sc.misses), plain),
    ...await suite(nearCacheClients(plain, { maxEntries: 1 }).filter((c) => !c.name.startsWith('node-redis') && !c.name.startsWith('a JS Map')), nearCacheScenarios.filter((sc) => sc.misses), plain),
  ];
  const obsRows = await suite(observabilityClients(plain), observabilityScenarios, plain);
  const ncMemory = !only || only.test('near cache memory') ? await memoryPerEntry(plain) : null;
  const ncStale = !only || only.test('near cache staleness') ? await staleness(plain) : null;
  const tls = await tlsSuites();
  await server.stop();

  let clusterRows = [];
  if (!only || clusterScenarios.some((s) => only.test(s.name))) {
    const cluster = await new RedisCluster().start();
    const cc = clusterClients(cluster);
    for (const c of cc) await c.open();
    await seedCluster(cc[0]);
    clusterRows = await runSuite(cc, clusterScenarios);
    for (const c of cc) await c.close();
    await cluster.stop();
  }

  printTable('Commands', commandRows);
  printTable('Locks (the uncontended cycles as acquireLock + releaseLock, and as withLock)', lockRows);
  if (handovers.length) {
    console.log(`\nCross-process hand-over (${PROCESSES} processes x ${WORKERS} workers on one key, withLock against redlock):`);
    console.log('| scenario | @app/redis cycles/s | hand-overs to another process | p50 / p99 ms | longest a process waited, ms | redlock cycles/s | hand-overs | p50 / p99 ms | longest a process waited, ms | ops/s ratio | exclusion violations |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const { shape, pair: [ours, peer] } of handovers) {
      console.log(`| ${shape.name} | ${fmt(ours.cycles)} | ${fmt(ours.handovers)} | ${ours.p50.toFixed(2)} / ${ours.p99.toFixed(2)} | ${fmt(ours.starved)} | ${fmt(peer.cycles)} | ${fmt(peer.handovers)} | ${peer.p50.toFixed(2)} / ${peer.p99.toFixed(2)} | ${fmt(peer.starved)} | ${(ours.cycles / peer.cycles).toFixed(2)}x | ${ours.violations + peer.violations} |`);
    }
  }
  printTable('Rate limits', rateRows);
  printTable('Sessions and cache', scRows);
  printNearCache(ncRows, ncMemory, ncStale);
  printObservability(obsRows);
  printTable('Over TLS (commands, locks, rate limits; each client checks the certificate)', [...tls.commands, ...tls.locks, ...tls.rates]);
  printTable('Cluster mode (3 masters)', clusterRows);
  printLimits(roundTrips, [...commandRows, ...lockRows, ...rateRows, ...scRows]);
  process.exit(0);
}

function fmt(n) { return Math.round(n).toLocaleString('en-US'); }

/** The observability rows: CPU per call with no subscriber, a channel subscriber, OpenTelemetry. */
function printObservability(rows) {
  if (!rows.length) return;
  console.log('\nObservability (CPU µs per call; "cost" = CPU per call / with no subscriber):');
  console.log('| scenario | no subscriber ops/s | CPU µs/op | channel subscriber ops/s | CPU µs/op | cost | OpenTelemetry ops/s | CPU µs/op | cost |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const [none, ch, otel] = r.summary;
    console.log(`| ${r.scenario} | ${fmt(none.ops)} | ${none.cpu.toFixed(2)} | ${fmt(ch.ops)} | ${ch.cpu.toFixed(2)} | ${(ch.cpu / none.cpu).toFixed(2)}x | ${fmt(otel.ops)} | ${otel.cpu.toFixed(2)} | ${(otel.cpu / none.cpu).toFixed(2)}x |`);
  }
}

/** The near-cache rows: the cached client against itself uncached, ioredis and node-redis's cache. */
function printNearCache(rows, memory, stale) {
  if (rows.length) {
    console.log('\nNear cache (clientCache; ratios = the cached client\'s ops/s / the other\'s):');
    console.log('| scenario | @app/redis clientCache ops/s | CPU µs/op | @app/redis, no cache | ioredis | node-redis clientSideCache | vs no cache | vs ioredis | vs node-redis cache | a JS Map (floor) | of floor |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const by = (prefix) => r.summary.find((s) => s.name.startsWith(prefix));
      const [c, plain, io, nr, map] = [by('@app/redis clientCache'), by('@app/redis, no cache'), by('ioredis'), by('node-redis'), by('a JS Map')];
      const x = (o) => (o ? `${(c.ops / o.ops).toFixed(2)}x` : '-');
      const floor = map ? `${fmt(map.ops)} (${map.cpu.toFixed(2)} µs)` : '-';
      console.log(`| ${r.scenario} | ${fmt(c.ops)} | ${c.cpu.toFixed(2)} | ${fmt(plain.ops)} | ${fmt(io.ops)} | ${nr ? fmt(nr.ops) : '-'} | ${x(plain)} | ${x(io)} | ${x(nr)} | ${floor} | ${map ? (c.ops / map.ops).toFixed(2) : '-'} |`);
    }
  }
  if (memory) {
    console.log(`\nNear cache memory: ${fmt(memory.entries)} entries of 100-byte values: ${fmt(memory.rss)} bytes of RSS per entry (the cache counts ${fmt(memory.counted)} bytes per entry against maxBytes)`);
  }
  if (stale) {
    console.log(`\nNear cache staleness: another process wrote one key ${fmt(stale.writes)} times (${fmt(stale.writesPerSec)} writes/s, one awaited at a time, paced to at most 10,000/s); a cached reader read it ${fmt(stale.reads)} times (${fmt(stale.hits)} hits), ${stale.backwards} reads went backwards; after a write was acknowledged, the reader still saw an older value for p50 ${stale.p50.toFixed(3)} ms, p99 ${stale.p99.toFixed(3)} ms, max ${stale.max.toFixed(3)} ms`);
  }
}

/**
 * The plain-TCP rows against what bounds them on this machine. A scenario that says how many
 * round trips one operation waits for (`trips`, the sequential rows) is bound by
 * `redis-benchmark -c 1`'s rate divided by them; one with many calls in flight (`serverBound`)
 * by the server's CPU per operation of that very client (1,000,000 / µs per op: each client's
 * commands cost the server differently), which it reaches when the server is busy all the time.
 */
function printLimits(roundTrips, rows) {
  console.log('\nAgainst the limits of this machine (same run; "of limit" = ops/s / limit):');
  console.log('| scenario | bound | @app/redis ops/s | its limit | of limit | best peer ops/s | its limit | of limit | server busy, ours / peer |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const sc = [...scenarios, ...lockScenarios, ...rateScenarios, ...sessionCacheScenarios].find((x) => x.name === r.scenario);
    const peer = r.summary.find((s) => s.name === r.best);
    for (const ours of r.summary.filter((x) => isOurs(x.name))) {
      const label = ours.name === '@app/redis' ? r.scenario : `${r.scenario} (${ours.name.slice('@app/redis '.length)})`;
      if (!sc || !(sc.trips || sc.serverBound)) continue;
      const limit = (s) => (sc.trips ? roundTrips / sc.trips : s.server ? 1e6 / s.server : null);
      const [lo, lp] = [limit(ours), limit(peer)];
      if (!lo || !lp) continue;
      const bound = sc.trips ? `${sc.trips} round trip${sc.trips > 1 ? 's' : ''}` : 'server CPU';
      const busy = ours.busy === null ? '-' : `${Math.round(ours.busy * 100)}% / ${Math.round(peer.busy * 100)}%`;
      console.log(`| ${label} | ${bound} | ${fmt(ours.ops)} | ${fmt(lo)} | ${(ours.ops / lo).toFixed(2)} | ${fmt(peer.ops)} (${r.best}) | ${fmt(lp)} | ${(peer.ops / lp).toFixed(2)} | ${busy} |`);
    }
  }
}

function printRow(r) {
  console.log(`\n${r.scenario}`);
  for (const s of r.summary) {
    const server = s.server === null ? '' : `   server ${s.server.toFixed(2).padStart(6)} µs CPU/op, busy ${Math.round(s.busy * 100)}%`;
    console.log(`  ${s.name.padEnd(26)} ${fmt(s.ops).padStart(12)} ops/s   ${s.cpu.toFixed(2).padStart(7)} µs CPU/op${server}${s.violations ? `   ${s.violations} VIOLATIONS` : ''}`);
  }
  console.log(`  ratio vs best peer (${r.best}): ${r.ratio.toFixed(2)}x`);
}

main().catch((e) => { console.error(e); process.exit(1); });
