'use strict';
// Near-cache clients and scenarios for `npm run bench`: @app/redis with `clientCache` against
// itself without it, ioredis (no client-side cache), and node-redis 5 with its `clientSideCache`
// (RESP3). Hits read one hot key (and one session); the miss row reads 1,000 keys in turn through
// a cache of one entry, so every read misses, and compares it with the same reads uncached.
const { createClient } = require('redis');
const { connectIoredis, ourOptions, nodeRedisOptions } = require('./connect');
const { RedisService } = require('..');

const VALUE = 'v'.repeat(100);
const SESSION = { userId: 'user-12345', email: 'someone@example.com', roles: ['admin'], cart: { items: [{ sku: 'A-1', qty: 2 }] }, visits: 17 };
const KEYS = 1000;
const IN_FLIGHT = 256;

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

module.exports = { nearCacheClients, nearCacheScenarios, memoryPerEntry };
