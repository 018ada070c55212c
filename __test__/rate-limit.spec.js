'use strict';
// Rate limits against a real redis-server: the three algorithms (exactness across processes,
// token refill), several limits at once, cost, blockMs, peek and reset, scripts flushed, Redis
// down; the Express middleware with supertest; @nestjs/throttler's own guard with
// RedisThrottlerStorage, and the @RateLimit() guard, in real Nest apps.
const express = require('express');
const request = require('supertest');
const { RedisService } = require('..');
const { rateLimitMiddleware } = require('../js/express');
const { suiteServer, sleep } = require('./helpers/redis-server');
const { runWorker, runNestScenario } = require('./helpers/spawn');

let srv;
let redis;
beforeAll(async () => {
  srv = await suiteServer();
  redis = await RedisService.connect({ ...srv.options, logger: false });
});
afterEach(async () => { await redis.call('FLUSHDB'); });
afterAll(async () => {
  await redis.disconnect();
  await srv.stop();
});

describe('fixed window', () => {
  test('allows exactly limit per window, then refuses with the time to wait', async () => {
    const rs = [];
    for (let i = 0; i < 5; i++) rs.push(await redis.rateLimit('ip:1', { limit: 3, windowMs: 1000 }));
    expect(rs.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
    expect(rs.map((r) => r.remaining)).toEqual([2, 1, 0, 0, 0]);
    expect(rs[0]).toMatchObject({ limit: 3, retryAfterMs: 0 });
    expect(rs[0].resetMs).toBeGreaterThan(900);
    expect(rs[0].resetMs).toBeLessThanOrEqual(1000);
    expect(rs[3].retryAfterMs).toBeGreaterThan(0);
    expect(rs[3].retryAfterMs).toBeLessThanOrEqual(1000);
    expect(Math.abs(rs[3].resetTime - (Date.now() + rs[3].resetMs))).toBeLessThan(1000);
    expect(await redis.call('PTTL', 'rl:{ip:1}:fw:1000')).toBeGreaterThan(0);
    await sleep(rs[3].retryAfterMs + 20);
    expect((await redis.rateLimit('ip:1', { limit: 3, windowMs: 1000 })).allowed).toBe(true);
  });

  test('a counter left without a TTL is given one (it never blocks a key for good)', async () => {
    await redis.set('rl:{orphan}:fw:60000', '5');
    const r = await redis.rateLimit('orphan', { limit: 10, windowMs: 60000 });
    expect(r).toMatchObject({ allowed: true, remaining: 4 });
    const pttl = await redis.call('PTTL', 'rl:{orphan}:fw:60000');
    expect(pttl).toBeGreaterThan(59000);
    expect(r.resetMs).toBeGreaterThan(59000);
    // cost > 1 takes the script, which repairs it too
    await redis.set('rl:{orphan2}:fw:60000', '5');
    expect(await redis.rateLimit('orphan2', { limit: 10, windowMs: 60000, cost: 2 })).toMatchObject({ allowed: true, remaining: 3 });
    expect(await redis.call('PTTL', 'rl:{orphan2}:fw:60000')).toBeGreaterThan(59000);
  });

  test('4 processes hitting one key at once: exactly limit are allowed', async () => {
    const startAt = Date.now() + 700;
    const runs = await Promise.all([0, 1, 2, 3].map(() => runWorker({
      mode: 'rate', conn: srv.options, key: 'burst', options: { limit: 50, windowSeconds: 30 }, requests: 40, startAt,
    })));
    expect(runs.reduce((n, r) => n + r.allowed, 0)).toBe(50);
  }, 30000);
});

describe('sliding window', () => {
  test('never more than limit within any window, across 4 processes', async () => {
    const windowMs = 300;
    const limit = 5;
    const runs = await Promise.all([0, 1, 2, 3].map(() => runWorker({
      mode: 'rate-for', conn: srv.options, key: 'slide', options: { limit, windowMs, algorithm: 'sliding-window' }, ms: 1200,
    })));
    const times = runs.flatMap((r) => r.times).sort((a, b) => a - b);
    expect(times.length).toBeGreaterThanOrEqual(limit * 3);
    for (let i = 0; i + limit < times.length; i++) {
      expect(times[i + limit] - times[i]).toBeGreaterThanOrEqual(windowMs);
    }
  }, 30000);

  test('retryAfterMs is when the oldest counted hit leaves the window', async () => {
    const o = { limit: 2, windowMs: 500, algorithm: 'sliding-window' };
    await redis.rateLimit('s', o);
    await sleep(200);
    await redis.rateLimit('s', o);
    const refused = await redis.rateLimit('s', o);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(200);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(300);
    await sleep(refused.retryAfterMs + 10);
    expect((await redis.rateLimit('s', o)).allowed).toBe(true);
    expect((await redis.rateLimit('s', o)).allowed).toBe(false);
  });
});

describe('token bucket', () => {
  test('capacity limit, refilled evenly over the window', async () => {
    const o = { limit: 10, windowMs: 1000, algorithm: 'token-bucket' };
    const first = await redis.rateLimit('tb', { ...o, cost: 10 });
    expect(first).toMatchObject({ allowed: true, remaining: 0 });
    expect(first.resetMs).toBe(1000);
    const refused = await redis.rateLimit('tb', o);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(80);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(100);
    await sleep(320);
    // ~3 tokens back (one per 100 ms), to the millisecond tolerance of the server clock.
    const peek = await redis.getRateLimit('tb', o);
    expect(peek.remaining).toBeGreaterThanOrEqual(3);
    expect(peek.remaining).toBeLessThanOrEqual(4);
    let allowed = 0;
    for (let i = 0; i < 6; i++) if ((await redis.rateLimit('tb', o)).allowed) allowed++;
    expect(allowed).toBeGreaterThanOrEqual(3);
    expect(allowed).toBeLessThanOrEqual(4);
  });
});

describe('options', () => {
  test('cost consumes several units; a refused request consumes nothing', async () => {
    const o = { limit: 10, windowMs: 5000 };
    expect(await redis.rateLimit('c', { ...o, cost: 7 })).toMatchObject({ allowed: true, remaining: 3 });
    expect(await redis.rateLimit('c', { ...o, cost: 4 })).toMatchObject({ allowed: false, remaining: 3 });
    expect(await redis.rateLimit('c', { ...o, cost: 3 })).toMatchObject({ allowed: true, remaining: 0 });
  });

  test('blockMs keeps the key refused after it first exceeds the limit', async () => {
    const o = { limit: 1, windowMs: 200, blockMs: 800 };
    expect((await redis.rateLimit('b', o)).allowed).toBe(true);
    const r = await redis.rateLimit('b', o);
    expect(r.allowed).toBe(false);
    expect(r.retryAfterMs).toBeGreaterThan(700);
    await sleep(300);
    // The window is over, but the block holds.
    const still = await redis.rateLimit('b', o);
    expect(still.allowed).toBe(false);
    expect(still.retryAfterMs).toBeGreaterThan(300);
    await sleep(still.retryAfterMs + 20);
    expect((await redis.rateLimit('b', o)).allowed).toBe(true);
  });

  test('rateLimitMany is all-or-nothing: a refusing limit means nothing is consumed', async () => {
    const limits = [{ limit: 2, windowMs: 1000 }, { limit: 3, windowMs: 60000, algorithm: 'sliding-window' }];
    const a = await redis.rateLimitMany('u', limits);
    expect(a.allowed).toBe(true);
    expect(a.limits.map((l) => l.remaining)).toEqual([1, 2]);
    expect(a.remaining).toBe(1);
    await redis.rateLimitMany('u', limits);
    const refused = await redis.rateLimitMany('u', limits);
    expect(refused.allowed).toBe(false);
    expect(refused.limit).toBe(2);
    expect(refused.limits[1].remaining).toBe(1); // the hour window was not charged
    await sleep(refused.retryAfterMs + 20);
    const again = await redis.rateLimitMany('u', limits);
    expect(again.allowed).toBe(true);
    expect(again.limits[1].remaining).toBe(0);
    const hourFull = await redis.rateLimitMany('u', limits);
    expect(hourFull.allowed).toBe(false);
    expect(hourFull.limit).toBe(3);
    expect(hourFull.retryAfterMs).toBeGreaterThan(58000);
    expect(hourFull.limits[0].remaining).toBe(1); // the second window was not charged either
  });

  test('getRateLimit peeks without consuming; resetRateLimit clears every limit of the key', async () => {
    const o = { limit: 2, windowMs: 10000 };
    expect(await redis.getRateLimit('p', o)).toMatchObject({ allowed: true, remaining: 2 });
    await redis.rateLimit('p', o);
    await redis.rateLimit('p', { limit: 5, windowMs: 10000, algorithm: 'token-bucket' });
    expect(await redis.getRateLimit('p', o)).toMatchObject({ allowed: true, remaining: 1 });
    expect(await redis.getRateLimit('p', o)).toMatchObject({ allowed: true, remaining: 1 });
    await redis.rateLimit('other', o);
    expect(await redis.resetRateLimit('p')).toBe(2);
    expect(await redis.getRateLimit('p', o)).toMatchObject({ remaining: 2 });
    expect(await redis.call('KEYS', '*')).toEqual(['rl:{other}:fw:10000']);
  });

  test('keys are cluster-safe (one hash tag per limited key) and carry the key prefix', async () => {
    const p = await RedisService.connect({ ...srv.options, keyPrefix: 'app:', logger: false });
    await p.rateLimitMany('user:1', [{ limit: 1, windowMs: 1000 }, { limit: 5, windowSeconds: 60, algorithm: 'sliding-window' }], { blockMs: 1000 });
    await p.rateLimitMany('user:1', [{ limit: 1, windowMs: 1000 }, { limit: 5, windowSeconds: 60, algorithm: 'sliding-window' }], { blockMs: 1000 });
    const keys = (await redis.call('KEYS', '*')).sort();
    expect(keys).toEqual(['app:rl:{user:1}:block', 'app:rl:{user:1}:fw:1000', 'app:rl:{user:1}:sw:60000']);
    await p.disconnect();
  });

  test('scripts are reloaded after SCRIPT FLUSH', async () => {
    await redis.rateLimit('f', { limit: 5, windowMs: 1000 });
    await redis.call('SCRIPT', 'FLUSH');
    expect(await redis.rateLimit('f', { limit: 5, windowMs: 1000 })).toMatchObject({ allowed: true, remaining: 3 });
  });

  test.each([
    [{ limit: 0, windowMs: 1000 }, /`options.limit` must be a positive integer/],
    [{ limit: 5 }, /`options.windowMs` \(or `options.windowSeconds`\) is required/],
    [{ limit: 5, windowMs: 1000, windowSeconds: 1 }, /not both/],
    [{ limit: 5, windowMs: 1000, algorithm: 'leaky' }, /`options.algorithm` must be 'fixed-window', 'sliding-window' or 'token-bucket'/],
    [{ limit: 5, windowMs: 1000, cost: 6 }, /`cost` \(6\) is larger than `limit` \(5\)/],
    [{ limit: 5, window: 1000 }, /unknown option `options.window`/],
    [undefined, /argument `options` must be an object/],
  ])('bad options %#: ERR_INVALID_ARGUMENT naming them', async (options, message) => {
    const err = await redis.rateLimit('k', options).catch((e) => e);
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
    expect(await redis.call('KEYS', '*')).toEqual([]);
  });
});

describe('Redis down', () => {
  test('rate limits fail open by default: allowed, degraded, one warning per outage', async () => {
    const warnings = [];
    const logger = { log() {}, warn: (m) => warnings.push(m), error() {} };
    const dead = new RedisService({ url: 'redis://127.0.0.1:1', failOpen: true, logger, connectTimeoutMs: 200 });
    await dead.connect();
    for (let i = 0; i < 3; i++) {
      expect(await dead.rateLimit('x', { limit: 1, windowMs: 1000 })).toMatchObject({ allowed: true, degraded: true, limit: 1, retryAfterMs: 0 });
    }
    expect((await dead.rateLimitMany('x', [{ limit: 1, windowMs: 1000 }])).limits).toHaveLength(1);
    await sleep(50); // log lines reach the logger through the event loop
    expect(warnings.filter((w) => w.includes('rate limits are NOT enforced'))).toHaveLength(1);
    await dead.disconnect();
  });

  test('rateLimitFailOpen: false rejects with ERR_CONNECTION', async () => {
    const dead = new RedisService({ url: 'redis://127.0.0.1:1', failOpen: true, rateLimitFailOpen: false, logger: false, connectTimeoutMs: 200 });
    await dead.connect();
    await expect(dead.rateLimit('x', { limit: 1, windowMs: 1000 })).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
  });
});

describe('Express middleware', () => {
  function app(options, routes = (a) => a.get('/', (req, res) => res.send('ok'))) {
    const a = express();
    a.set('trust proxy', true);
    a.use(rateLimitMiddleware(redis, options));
    routes(a);
    return a;
  }

  test('draft-7 and X-RateLimit-* headers by default; 429 with Retry-After in seconds and the message', async () => {
    const a = app({ windowMs: 15 * 60 * 1000, maxRequests: 2, message: 'Too many requests' });
    const r1 = await request(a).get('/');
    expect(r1.status).toBe(200);
    expect(r1.headers['ratelimit-policy']).toBe('2;w=900');
    expect(r1.headers.ratelimit).toMatch(/^limit=2, remaining=1, reset=(900|899)$/);
    // The legacy set too (seed 001's clients, express-rate-limit's default).
    expect(r1.headers['x-ratelimit-limit']).toBe('2');
    expect(r1.headers['x-ratelimit-remaining']).toBe('1');
    expect(Math.abs(Number(r1.headers['x-ratelimit-reset']) - Math.ceil(Date.now() / 1000 + 900))).toBeLessThanOrEqual(2);
    await request(a).get('/');
    const r3 = await request(a).get('/');
    expect(r3.status).toBe(429);
    expect(r3.text).toBe('Too many requests');
    expect(Number(r3.headers['retry-after'])).toBeGreaterThan(890);
    expect(Number(r3.headers['retry-after'])).toBeLessThanOrEqual(900);
  });

  test('draft-6 and legacy headers; JSON message and custom status', async () => {
    const d6 = await request(app({ windowMs: 60000, maxRequests: 5, headers: 'draft-6', prefix: 'd6:' })).get('/');
    expect(d6.headers['ratelimit-limit']).toBe('5');
    expect(d6.headers['ratelimit-remaining']).toBe('4');
    expect(d6.headers['ratelimit-reset']).toMatch(/^(60|59)$/);
    const legacyApp = app({ windowMs: 60000, maxRequests: 1, headers: 'legacy', prefix: 'lg:', message: { error: 'slow down' }, statusCode: 503 });
    const lg = await request(legacyApp).get('/');
    expect(lg.headers['x-ratelimit-limit']).toBe('1');
    expect(lg.headers['x-ratelimit-remaining']).toBe('0');
    expect(Math.abs(Number(lg.headers['x-ratelimit-reset']) - Math.ceil(Date.now() / 1000 + 60))).toBeLessThanOrEqual(2);
    const refused = await request(legacyApp).get('/');
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({ error: 'slow down' });
    expect(lg.headers.ratelimit).toBeUndefined();
    const d7 = await request(app({ windowMs: 60000, maxRequests: 5, headers: 'draft-7', prefix: 'd7:' })).get('/');
    expect(d7.headers.ratelimit).toMatch(/^limit=5, remaining=4, reset=(60|59)$/);
    expect(d7.headers['x-ratelimit-limit']).toBeUndefined();
    const none = await request(app({ windowMs: 60000, maxRequests: 5, headers: false, prefix: 'no:' })).get('/');
    expect(none.headers.ratelimit).toBeUndefined();
    expect(none.headers['x-ratelimit-limit']).toBeUndefined();
    expect(() => rateLimitMiddleware(redis, { windowMs: 1000, maxRequests: 1, headers: 'x' })).toThrow(/'both', 'draft-7'/);
  });

  test('keyGenerator (seed 004: user id or ip) and skip', async () => {
    const a = app({
      windowMs: 60000, maxRequests: 1,
      keyGenerator: (req) => req.get('x-user') || req.ip,
      skip: (req) => req.path === '/health',
    }, (x) => { x.get('/', (req, res) => res.send('ok')); x.get('/health', (req, res) => res.send('up')); });
    expect((await request(a).get('/').set('x-user', 'alice')).status).toBe(200);
    expect((await request(a).get('/').set('x-user', 'alice')).status).toBe(429);
    expect((await request(a).get('/').set('x-user', 'bob')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await request(a).get('/health')).status).toBe(200);
    expect(await redis.call('EXISTS', 'rl:{http:alice}:fw:60000')).toBe(1);
  });

  test('bad options throw at setup', () => {
    expect(() => rateLimitMiddleware(redis, { windowMs: 1000 })).toThrow(/maxRequests/);
    expect(() => rateLimitMiddleware(redis, { windowMs: 1.5, maxRequests: 1 })).toThrow(/windowMs/);
    expect(() => rateLimitMiddleware({}, { windowMs: 1, maxRequests: 1 })).toThrow(/RedisService/);
  });
});

describe('NestJS (apps run in a child process: Nest 12 is ESM-only, which jest cannot load)', () => {
  const scenario = (name) => runNestScenario(name, srv.options);

  test('@nestjs/throttler ThrottlerGuard with RedisThrottlerStorage: two instances share counts, 429 with Retry-After', async () => {
    const [a1, b1, a2, b2] = await scenario('shared');
    expect([a1.status, b1.status, a2.status]).toEqual([200, 200, 200]);
    expect(a2.headers['x-ratelimit-remaining']).toBe('0');
    expect(b2.status).toBe(429);
    expect(Number(b2.headers['retry-after'])).toBeGreaterThan(55);
    expect(Number(b2.headers['retry-after'])).toBeLessThanOrEqual(60);
  }, 30000);

  test('blockDuration is honoured after the limit is exceeded', async () => {
    const [first, blocked, stillBlocked, after] = await scenario('block');
    expect(first.status).toBe(200);
    expect(blocked.status).toBe(429);
    expect(blocked.headers['retry-after']).toBe('2');
    expect(stillBlocked.status).toBe(429); // the window is over, the block is not
    expect(after.status).toBe(200);
  }, 30000);

  test('ttl and blockDuration of 0 work as in the in-memory storage', async () => {
    expect(await redis.throttlerIncrement('z', 0, 1, 0, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });
    await sleep(5);
    expect(await redis.throttlerIncrement('z', 0, 1, 0, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });
    expect(await redis.throttlerIncrement('y', 60000, 1, 0, 'default')).toMatchObject({ totalHits: 1, isBlocked: false, timeToExpire: 60 });
    expect(await redis.throttlerIncrement('y', 60000, 1, 0, 'default')).toMatchObject({ totalHits: 2, isBlocked: true, timeToBlockExpire: 60 });
  });

  test('@RateLimit() with RateLimitGuard', async () => {
    const [ok, ok2, refused, ...open] = await scenario('decorator');
    expect(ok.status).toBe(200);
    expect(ok.headers.ratelimit).toMatch(/^limit=2, remaining=1, reset=/);
    expect(ok2.status).toBe(200);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(55);
    expect(open.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  }, 30000);
});
