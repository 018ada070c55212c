'use strict';
// Session and cache clients and scenarios for `npm run bench`: @app/redis's getSession and a
// cache hit through wrap() against the connect-redis-style code the seeds wrote on ioredis
// (GET + JSON.parse). The same session data on both sides.
const { connectIoredis, ourOptions } = require('./connect');
const { RedisService } = require('..');

const SESSION = {
  userId: 'user-12345', email: 'someone@example.com', roles: ['admin', 'editor'],
  cart: { items: [{ sku: 'A-1', qty: 2 }, { sku: 'B-7', qty: 1 }], total: 59.9 },
  cookie: { originalMaxAge: 86400000, httpOnly: true, path: '/' }, visits: 17,
};
const CACHED = { id: 42, name: 'Product 42', price: 19.99, tags: ['new', 'sale'], stock: { eu: 10, us: 3 } };
// The in-flight cache row reads this many products, one call each: a single `wrap` key would be
// one read shared by every caller in this process (its single flight), not a read per call.
const PRODUCTS = 256;

function sessionCacheClients(server) {
  return [
    {
      name: '@app/redis',
      async open() {
        this.c = await RedisService.connect(ourOptions(server));
        this.sid = await this.c.createSession(SESSION.userId, SESSION, 3600);
        await this.c.wrap('bench:product', 3600, () => CACHED);
        for (let i = 0; i < PRODUCTS; i++) await this.c.wrap(`bench:product:${i}`, 3600, () => CACHED);
      },
      close() { return this.c.disconnect(); },
      ops() {
        const c = this.c;
        const sid = this.sid;
        const never = () => { throw new Error('the loader must not run on a hit'); };
        return {
          getSession: () => c.getSession(sid),
          cacheHit: () => c.wrap('bench:product', 3600, never),
          productHit: (i) => c.wrap(`bench:product:${i}`, 3600, never),
        };
      },
    },
    {
      name: 'ioredis GET + JSON.parse',
      async open() {
        this.io = await connectIoredis(server);
        await this.io.set('sess:bench', JSON.stringify({ ...SESSION, createdAt: new Date().toISOString() }), 'EX', 3600);
        await this.io.set('cache:bench:io', JSON.stringify(CACHED), 'EX', 3600);
        for (let i = 0; i < PRODUCTS; i++) await this.io.set(`cache:bench:io:${i}`, JSON.stringify(CACHED), 'EX', 3600);
      },
      close() { this.io.disconnect(); },
      ops() {
        const io = this.io;
        return {
          getSession: async () => { const s = await io.get('sess:bench'); return s ? JSON.parse(s) : null; },
          cacheHit: async () => { const v = await io.get('cache:bench:io'); return v ? JSON.parse(v) : null; },
          productHit: async (i) => { const v = await io.get(`cache:bench:io:${i}`); return v ? JSON.parse(v) : null; },
        };
      },
    },
  ];
}

const sessionCacheScenarios = [
  { name: 'getSession, sequential', trips: 1, unit: async (o) => { await o.getSession(); return 1; } },
  { name: 'cache hit through wrap, sequential', trips: 1, unit: async (o) => { await o.cacheHit(); return 1; } },
  {
    name: 'getSession, 256 in flight',
    serverBound: true,
    unit: async (o) => {
      const ps = new Array(256);
      for (let i = 0; i < 256; i++) ps[i] = o.getSession();
      await Promise.all(ps);
      return 256;
    },
  },
  {
    name: `cache hit through wrap, ${PRODUCTS} in flight on ${PRODUCTS} keys`,
    serverBound: true,
    unit: async (o) => {
      const ps = new Array(PRODUCTS);
      for (let i = 0; i < PRODUCTS; i++) ps[i] = o.productHit(i);
      await Promise.all(ps);
      return PRODUCTS;
    },
  },
];

module.exports = { sessionCacheClients, sessionCacheScenarios };
