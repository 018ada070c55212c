'use strict';
// Near-cache clients and scenarios for `npm run bench`: @app/redis with `clientCache` against
// itself without it, ioredis (no client-side cache), and node-redis 5 with its `clientSideCache`
// (RESP3), and a JS Map behind an async function (the floor any near cache pays: a call and a
// promise). Hits read one hot key (and one session); the miss row reads 1,000 keys in turn through
// a cache of one entry, so every read misses, and compares it with the same reads uncached.
const { createClient } = require('redis');
const { connectIoredis, ourOptions, nodeRedisOptions } = require('./connect');
const { RedisService } = require('..');

const VALUE = 'v'.repeat(100);
const SESSION = { userId: 'user-12345', email: 'someone@example.com', roles: ['admin'], cart: { items: [{ sku: 'A-1', qty: 2 }] }, visits: 17 };
const KEYS = 1000;
const IN_FLIGHT = 256;
/** The writer's pace in the staleness measurement (the load: 10,000 writes/s). */
const RATE = 10000;

function ours(name, server, clientCache) {
  return {
    name,
    async open() {
      this.c = await RedisService.connect({ ...ourOptions(server), ...(clientCache ? { clientCache } : {}) });
      await this.c.set('bench:nc', VALUE);
      this.sid = await this.c.createSession(SESSION.userId, SESSION, 3600);
      for (let i = 0; i < KEYS; i++) await this.c.set(`bench:nc:${i}`, VALUE);
    },
    close() { return this.c.disconnect(); },
    ops() {
      const { c, sid } = this;
      return { get: (k) => c.get(k), session: () => c.getSession(sid) };
    },
  };
}

function nearCacheClients(server, clientCache = true) {
  return [
    ours(clientCache === true ? '@app/redis clientCache' : '@app/redis clientCache, 1 entry', server, clientCache),
    ours('@app/redis, no cache', server, null),
    {
      name: 'ioredis',
      async open() {
        this.io = await connectIoredis(server);
        await this.io.set('sess:bench:nc', JSON.stringify(SESSION));
      },
      close() { this.io.disconnect(); },
      ops() {
        const io = this.io;
        return { get: (k) => io.get(k), session: async () => JSON.parse(await io.get('sess:bench:nc')) };
      },
    },
    {
      // The floor of any near cache in this process: an async function answering from a Map,
      // no native call, no bookkeeping (a session still becomes a new object, as it must).
      name: 'a JS Map (floor)',
      open() {
        this.map = new Map([['bench:nc', VALUE], ['sess', JSON.stringify(SESSION)]]);
      },
      close() {},
      ops() {
        const map = this.map;
        return { get: async (k) => map.get(k), session: async () => JSON.parse(map.get('sess')) };
      },
    },
    {
      name: 'node-redis clientSideCache',
      async open() {
        this.c = createClient({ ...nodeRedisOptions(server), RESP: 3, clientSideCache: { ttl: 0, maxEntries: 10000, evictPolicy: 'LRU' } });
        await this.c.connect();
      },
      close() { return this.c.quit(); },
      ops() {
        const c = this.c;
        return { get: (k) => c.get(k), session: async () => JSON.parse(await c.get('sess:bench:nc')) };
      },
    },
  ];
}

/** Bytes per cached entry: RSS before and after `n` distinct 100-byte values are cached. */
async function memoryPerEntry(server, n = 20000) {
  const c = await RedisService.connect({ ...ourOptions(server), clientCache: { maxEntries: n } });
  const keys = Array.from({ length: n }, (_, i) => `bench:ncm:${i}`);
  for (let i = 0; i < n; i += 1000) await Promise.all(keys.slice(i, i + 1000).map((k) => c.set(k, VALUE)));
  global.gc?.();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < n; i += 1000) await Promise.all(keys.slice(i, i + 1000).map((k) => c.get(k)));
  global.gc?.();
  const after = process.memoryUsage().rss;
  const s = c.clientCacheStats();
  await c.disconnect();
  return { entries: s.entries, counted: s.bytes / s.entries, rss: (after - before) / s.entries };
}

/**
 * How long after a write a cached reader may still see the value before it: a writer process
 * sets one key to 1, 2, 3, ... at up to RATE writes per second (one awaited at a time) for `ms`, noting
 * when each write was acknowledged; this process reads the key through the near cache in a loop
 * that yields to the event loop between reads (as request handlers do), noting when it last saw
 * each value. For write i, the staleness is how long after its acknowledgement a read still
 * returned a value older than i. Both processes read the same monotonic clock.
 */
async function staleness(server, ms = 2000) {
  const { spawn } = require('node:child_process');
  const key = 'bench:nc:stale';
  const reader = await RedisService.connect({ ...ourOptions(server), clientCache: true });
  await reader.set(key, '0');
  const writer = spawn(process.execPath, ['-e', `
    const { RedisService } = require(${JSON.stringify(require.resolve('..'))});
    (async () => {
      const w = await RedisService.connect({ url: ${JSON.stringify(server.url)}, logger: false });
      const acks = [];
      const start = Date.now();
      const end = start + ${ms};
      for (let i = 1; Date.now() < end; i++) {
        // At most ${RATE} writes per second: ahead of that, it sleeps (not spins: the reader and
        // the server need the two cores).
        const ahead = (i - 1) * 1000 / ${RATE} - (Date.now() - start);
        if (ahead >= 1) await new Promise((ok) => setTimeout(ok, ahead));
        await w.set(${JSON.stringify(key)}, String(i));
        acks.push(Number(process.hrtime.bigint()));
      }
      await w.disconnect();
      process.stdout.write(JSON.stringify(acks));
    })();
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  writer.stdout.on('data', (c) => { out += c; });
  let done = false;
  const exited = new Promise((resolve) => writer.once('exit', () => { done = true; resolve(); }));
  const last = new Map(); // value -> when a read last returned it (ns)
  let reads = 0;
  let backwards = 0;
  let top = 0;
  while (!done) {
    const v = Number(await reader.get(key));
    last.set(v, Number(process.hrtime.bigint()));
    if (v < top) backwards++;
    top = Math.max(top, v);
    reads++;
    await new Promise(setImmediate);
  }
  await exited;
  const acks = JSON.parse(out);
  const seen = [...last.keys()].sort((a, b) => a - b);
  const stale = [];
  let j = 0; // seen[j - 1] is the largest value seen below write i
  for (let i = 1; i <= acks.length; i++) {
    while (j < seen.length && seen[j] < i) j++;
    const older = j > 0 ? last.get(seen[j - 1]) : 0;
    stale.push(Math.max(0, older - acks[i - 1]) / 1e6);
  }
  stale.sort((a, b) => a - b);
  const q = (p) => stale[Math.min(stale.length - 1, Math.floor(p * stale.length))];
  const stats = reader.clientCacheStats();
  await reader.disconnect();
  return { writes: acks.length, writesPerSec: acks.length / (ms / 1000), reads, backwards, p50: q(0.5), p99: q(0.99), max: stale[stale.length - 1], hits: stats.hits };
}

let next = 0;
const nearCacheScenarios = [
  { name: 'cached get (a hit), sequential', unit: async (o) => { await o.get('bench:nc'); return 1; } },
  {
    name: `cached get (a hit), ${IN_FLIGHT} in flight`,
    unit: async (o) => {
      const ps = new Array(IN_FLIGHT);
      for (let i = 0; i < IN_FLIGHT; i++) ps[i] = o.get('bench:nc');
      await Promise.all(ps);
      return IN_FLIGHT;
    },
  },
  { name: 'cached getSession (a hit), sequential', unit: async (o) => { await o.session(); return 1; } },
  {
    name: `cached getSession (a hit), ${IN_FLIGHT} in flight`,
    unit: async (o) => {
      const ps = new Array(IN_FLIGHT);
      for (let i = 0; i < IN_FLIGHT; i++) ps[i] = o.session();
      await Promise.all(ps);
      return IN_FLIGHT;
    },
  },
  {
    name: `get of ${KEYS} keys in turn (every read a miss), ${IN_FLIGHT} in flight`,
    misses: true,
    unit: async (o) => {
      const ps = new Array(IN_FLIGHT);
      for (let i = 0; i < IN_FLIGHT; i++) ps[i] = o.get(`bench:nc:${(next++) % KEYS}`);
      await Promise.all(ps);
      return IN_FLIGHT;
    },
  },
];

module.exports = { nearCacheClients, nearCacheScenarios, memoryPerEntry, staleness };
