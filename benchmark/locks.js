'use strict';
// Lock clients and scenarios for `npm run bench`: @app/redis against redlock, redis-semaphore
// and the lock people write by hand on ioredis (`SET NX PX`, then a compare-and-delete script).
// Every client uses the same retry delay (10 ms) when waiting.
const { randomUUID } = require('node:crypto');
const { setTimeout: sleep } = require('node:timers/promises');
const { connectIoredis, ourOptions } = require('./connect');
const { default: Redlock } = require('redlock');
const { Mutex } = require('redis-semaphore');
const { RedisService } = require('..');

const TTL_MS = 10000;
const RETRY_MS = 10;
const WORKERS = 16;
const PARALLEL = 64;

// A critical section that yields once, and counts overlaps (mutual-exclusion violations).
function section(state) {
  state.inside++;
  if (state.inside > 1) state.violations++;
  return Promise.resolve().then(() => { state.inside--; });
}

function lockClients(server) {
  return [
    {
      name: '@app/redis',
      async open() { this.c = await RedisService.connect(ourOptions(server)); },
      close() { return this.c.disconnect(); },
      ops() {
        const c = this.c;
        return {
          cycle: async (k) => { const t = await c.acquireLock(k, { ttlMs: TTL_MS }); await c.releaseLock(k, t); },
          contend: (k, st) => c.withLock(k, () => section(st), { ttlMs: TTL_MS, waitMs: 60000, retryDelayMs: RETRY_MS }),
        };
      },
    },
    {
      name: '@app/redis withLock',
      async open() { this.c = await RedisService.connect(ourOptions(server)); },
      close() { return this.c.disconnect(); },
      ops() {
        const c = this.c;
        return {
          cycle: (k) => c.withLock(k, () => undefined, { ttlMs: TTL_MS }),
          contend: null,
        };
      },
    },
    {
      name: 'ioredis SET NX PX + compare-and-delete',
      async open() {
        this.io = await connectIoredis(server);
        this.io.defineCommand('unlock', {
          numberOfKeys: 1,
          lua: "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
        });
      },
      close() { this.io.disconnect(); },
      ops() {
        const io = this.io;
        const lock = async (k, fn, wait) => {
          const token = randomUUID();
          while ((await io.set(k, token, 'PX', TTL_MS, 'NX')) !== 'OK') {
            if (!wait) throw new Error('not acquired');
            await sleep(RETRY_MS);
          }
          try { return await fn(); } finally { await io.unlock(k, token); }
        };
        return {
          cycle: (k) => lock(k, () => undefined, false),
          contend: (k, st) => lock(k, () => section(st), true),
        };
      },
    },
    {
      name: 'redlock (ioredis)',
      async open() {
        this.io = await connectIoredis(server);
        this.rl = new Redlock([this.io], { retryCount: -1, retryDelay: RETRY_MS, retryJitter: RETRY_MS });
        this.rl.on('error', () => {});
      },
      close() { this.io.disconnect(); },
      ops() {
        const rl = this.rl;
        return {
          cycle: async (k) => { const l = await rl.acquire([k], TTL_MS, { retryCount: 0 }); await l.release(); },
          contend: async (k, st) => {
            const l = await rl.acquire([k], TTL_MS);
            try { await section(st); } finally { await l.release(); }
          },
        };
      },
    },
    {
      name: 'redis-semaphore (ioredis)',
      async open() { this.io = await connectIoredis(server); },
      close() { this.io.disconnect(); },
      ops() {
        const io = this.io;
        const opts = { lockTimeout: TTL_MS, refreshInterval: 0, retryInterval: RETRY_MS, acquireTimeout: 60000 };
        return {
          cycle: async (k) => { const m = new Mutex(io, k, opts); await m.acquire(); await m.release(); },
          contend: async (k, st) => {
            const m = new Mutex(io, k, opts);
            await m.acquire();
            try { await section(st); } finally { await m.release(); }
          },
        };
      },
    },
  ];
}

const lockScenarios = [
  {
    name: 'lock acquire + release, uncontended, sequential',
    trips: 2,
    unit: async (o, name) => { await o.cycle(`bench:lock:${name}`); return 1; },
  },
  {
    name: `lock acquire + release, uncontended, ${PARALLEL} callers on distinct keys`,
    serverBound: true,
    unit: async (o, name) => {
      const ps = [];
      for (let i = 0; i < PARALLEL; i++) ps.push(o.cycle(`bench:lock:${name}:${i}`));
      await Promise.all(ps);
      return PARALLEL;
    },
  },
  {
    name: `lock, ${WORKERS} workers contending on one key`,
    unit: async (o, name, state) => {
      const ps = [];
      for (let i = 0; i < WORKERS; i++) ps.push(o.contend(`bench:hot:${name}`, state));
      await Promise.all(ps);
      return WORKERS;
    },
    skip: (o) => !o.contend,
  },
];

module.exports = { lockClients, lockScenarios };
