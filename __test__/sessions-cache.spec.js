'use strict';
// Sessions (with the per-user index), the express-session store in real Express apps, and the
// cache-aside `wrap` with stampede protection across processes, against a real redis-server.
const express = require('express');
const session = require('express-session');
const request = require('supertest');
const { RedisService } = require('..');
const { RedisSessionStore } = require('../js/express');
const { suiteServer, sleep } = require('./helpers/redis-server');
const { runWorker } = require('./helpers/spawn');

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

describe('sessions', () => {
  test('create, get, update, refresh, destroy with a real TTL', async () => {
    const id = await redis.createSession('user123', { role: 'admin', permissions: ['read', 'write'] }, 2);
    expect(id).toMatch(/^[0-9a-f]{40}$/);
    const s = await redis.getSession(id);
    expect(s).toMatchObject({ role: 'admin', permissions: ['read', 'write'], userId: 'user123' });
    expect(Date.parse(s.createdAt)).toBeGreaterThan(Date.now() - 5000);
    expect(await redis.updateSession(id, { theme: 'dark' })).toBe(true);
    expect(await redis.getSession(id)).toMatchObject({ role: 'admin', theme: 'dark' });
    expect(await redis.updateSession('missing', { a: 1 })).toBe(false);
    expect(await redis.getSession('missing')).toBeNull();
    // Sliding expiration: refreshed before it expires, it outlives its first TTL.
    await sleep(1200);
    expect(await redis.refreshSession(id)).toBe(true);
    await sleep(1200);
    expect(await redis.getSession(id)).not.toBeNull();
    // Not refreshed: gone after its TTL.
    await sleep(1000);
    expect(await redis.getSession(id)).toBeNull();
    expect(await redis.refreshSession(id, 10)).toBe(false);
    const other = await redis.createSession(7, { a: 1 });
    expect(await redis.getSession(other)).toMatchObject({ userId: 7, a: 1 });
    // Odd field names survive the round trip.
    expect(await redis.updateSession(other, { 'say "hi"\n\\': 'ok', 'ü': 1 })).toBe(true);
    expect(await redis.getSession(other)).toMatchObject({ 'say "hi"\n\\': 'ok', 'ü': 1 });
    expect(await redis.destroySession(other)).toBe(true);
    expect(await redis.destroySession(other)).toBe(false);
  }, 15000);

  test('updateSession keeps the remaining TTL, and concurrent updates of different fields both survive', async () => {
    const id = await redis.createSession('u1', { a: 0 }, 100);
    await redis.call('EXPIRE', (await redis.call('KEYS', '*sess:{*}:*'))[0], 50);
    await Promise.all(Array.from({ length: 20 }, (_, i) => redis.updateSession(id, { [`f${i}`]: i })));
    const s = await redis.getSession(id);
    for (let i = 0; i < 20; i++) expect(s[`f${i}`]).toBe(i);
    const key = (await redis.call('KEYS', '*sess:{*}:*'))[0];
    expect(await redis.ttl(key)).toBeLessThanOrEqual(50);
    expect(await redis.ttl(key)).toBeGreaterThan(40);
  });

  test('empty objects: setSession stores the timestamps only, updateSession changes nothing', async () => {
    expect(await redis.setSession('empty-1', {}, 60)).toBe(true);
    const s = await redis.getSession('empty-1');
    expect(Object.keys(s)).toEqual(['createdAt']);
    expect(await redis.updateSession('empty-1', {})).toBe(true);
    expect(await redis.getSession('empty-1')).toEqual(s);
    expect(await redis.updateSession('empty-missing', {})).toBe(false);
    await redis.updateSession('empty-1', { a: 1 });
    expect(await redis.getSession('empty-1')).toEqual({ ...s, a: 1 });
  });

  test('the per-user index: count, list, prune after expiry, log out everywhere', async () => {
    const a = await redis.createSession('alice', {}, 1);
    const b = await redis.createSession('alice', {}, 60);
    await redis.setSession('express-sid-1', { userId: 'alice', cart: [1] }, 60);
    await redis.createSession('bob', {}, 60);
    expect(await redis.countUserSessions('alice')).toBe(3);
    expect((await redis.listUserSessions('alice')).sort()).toEqual([a, b, 'express-sid-1'].sort());
    expect(await redis.getSession('express-sid-1')).toMatchObject({ userId: 'alice', cart: [1] });
    await sleep(1100);
    expect(await redis.countUserSessions('alice')).toBe(2);
    expect(await redis.listUserSessions('alice')).not.toContain(a);
    await redis.destroySession(b);
    expect(await redis.countUserSessions('alice')).toBe(1);
    expect(await redis.destroyUserSessions('alice')).toBe(1);
    expect(await redis.getSession('express-sid-1')).toBeNull();
    expect(await redis.countUserSessions('alice')).toBe(0);
    expect(await redis.countUserSessions('bob')).toBe(1);
    // The index is found without KEYS: one sorted set per user.
    expect((await redis.call('KEYS', 'sess:user:*')).length).toBe(1);
  }, 10000);

  test('a session with your own id: refreshing keeps it indexed past its first TTL; destroying removes it', async () => {
    expect(await redis.setSession('sid-dave', { userId: 'dave' }, 1)).toBe(true);
    expect(await redis.refreshSession('sid-dave', 30)).toBe(true);
    await sleep(1200);
    expect(await redis.countUserSessions('dave')).toBe(1);
    expect(await redis.ttl('sess:{sid-dave}')).toBeGreaterThan(25);
    expect(await redis.destroySession('sid-dave')).toBe(true);
    expect(await redis.countUserSessions('dave')).toBe(0);
    expect(await redis.refreshSession('sid-dave')).toBe(false);
    expect(await redis.destroySession('sid-dave')).toBe(false);
  }, 10000);

  test('a session and its user index share one hash slot; sessionPrefix is configurable', async () => {
    const p = await RedisService.connect({ ...srv.options, keyPrefix: 'app:', sessionPrefix: 's:', logger: false });
    const id = await p.createSession('user123', {});
    const keys = (await redis.call('KEYS', '*')).sort();
    expect(keys).toEqual([`app:s:user:{95c946bf}:user123`, `app:s:{95c946bf}:${id}`].sort());
    expect(await redis.call('CLUSTER', 'KEYSLOT', keys[0]).catch(() => null)).toBeDefined();
    await p.disconnect();
  });

  test('ids are unique over 100,000 creations', async () => {
    const ids = new Set();
    for (let round = 0; round < 20; round++) {
      const batch = await Promise.all(Array.from({ length: 5000 }, (_, i) => redis.createSession(`load-${i % 50}`, {}, 60)));
      for (const id of batch) ids.add(id);
    }
    expect(ids.size).toBe(100000);
  }, 60000);

  test('seed 001 SessionManager and seed 004 SessionCacheService, import changed only', async () => {
    const SessionManager = redis;
    const sessionId = await SessionManager.createSession('user123', { role: 'admin', permissions: ['read', 'write'] });
    const s = await SessionManager.getSession(sessionId);
    expect(s?.userId).toBe('user123');
    expect(await SessionManager.extendSession(sessionId, 3600)).toBe(true);
    const SessionCacheService = redis;
    await SessionCacheService.setSession('sid-9', { userId: 42, email: 'a@b.c', roles: ['admin'] }, 3600);
    expect(await SessionCacheService.getSession('sid-9')).toMatchObject({ userId: 42, email: 'a@b.c', roles: ['admin'] });
    expect(await SessionCacheService.getUserSessionCount(42)).toBe(1);
    expect(await SessionCacheService.deleteSession('sid-9')).toBe(true);
    await SessionCacheService.setSession('sid-10', { userId: 42 }, 3600);
    expect(await SessionCacheService.deleteUserSessions(42)).toBe(1);
  });

  test('fail closed by default; with failOpen reads are null and writes no-ops', async () => {
    const closed = new RedisService({ url: 'redis://127.0.0.1:1', logger: false, connectTimeoutMs: 200, failOpen: true, });
    const strict = new RedisService({ url: 'redis://127.0.0.1:1', logger: false, connectTimeoutMs: 200 });
    await expect(strict.getSession('x')).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    await expect(strict.createSession('u', {})).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    await closed.connect();
    expect(await closed.getSession('x')).toBeNull();
    expect(await closed.createSession('u', {})).toBeNull();
    expect(await closed.updateSession('x', { a: 1 })).toBe(false);
    expect(await closed.countUserSessions('u')).toBe(0);
    expect(await closed.listUserSessions('u')).toEqual([]);
    await closed.disconnect();
  });

  test.each([
    [() => redis.createSession(undefined, {}), /createSession\(\): argument `userId` must be a non-empty string or a finite number, got undefined/],
    [() => redis.createSession('u', 'data'), /argument `data` must be a plain object/],
    [() => redis.createSession('u', {}, 0), /argument `ttlSeconds` must be a positive integer/],
    [() => redis.createSession('u', { n: 10n }), /`data.n` cannot be stored as JSON/],
    [() => redis.getSession(''), /getSession\(\): argument `id` must be a non-empty string/],
    [() => redis.updateSession('x', null), /argument `patch` must be a plain object/],
  ])('bad input %#', async (call, message) => {
    const err = await call().catch((e) => e);
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(message);
    expect(await redis.call('KEYS', '*')).toEqual([]);
  });
});

describe('express-session store', () => {
  function app(store) {
    const a = express();
    a.use(session({ store, secret: 'test-secret', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } }));
    a.post('/login', (req, res) => { req.session.userId = 'carol'; req.session.visits = 1; res.send('ok'); });
    a.get('/me', (req, res) => res.json({ userId: req.session.userId ?? null, visits: req.session.visits ?? 0 }));
    a.post('/logout', (req, res) => req.session.destroy(() => res.send('bye')));
    return a;
  }

  test('login sets the cookie; a second app instance shares the session; touch, destroy, logout everywhere', async () => {
    const a = app(new RedisSessionStore({ redis }));
    const b = app(new RedisSessionStore({ redis }));
    const login = await request(a).post('/login');
    const cookie = login.headers['set-cookie'][0].split(';')[0];
    expect(cookie).toMatch(/^connect\.sid=/);
    expect((await request(b).get('/me').set('Cookie', cookie)).body).toEqual({ userId: 'carol', visits: 1 });
    const [key] = await redis.call('KEYS', 'sess:{express:*}');
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(await redis.countUserSessions('carol')).toBe(1);
    // touch extends the TTL (cookie maxAge, rolling on each request)
    await redis.call('EXPIRE', key, 5);
    await request(b).get('/me').set('Cookie', cookie);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    // logout everywhere
    expect(await redis.destroyUserSessions('carol')).toBe(1);
    expect((await request(a).get('/me').set('Cookie', cookie)).body).toEqual({ userId: null, visits: 0 });
    const again = await request(a).post('/login');
    const c2 = again.headers['set-cookie'][0].split(';')[0];
    await request(a).post('/logout').set('Cookie', c2);
    expect((await request(b).get('/me').set('Cookie', c2)).body.userId).toBeNull();
    expect(await redis.call('KEYS', 'sess:{express:*}')).toEqual([]);
  });

  test('all, length, clear only touch the store prefix', async () => {
    const store = new RedisSessionStore({ redis, prefix: 'shop:' });
    await new Promise((r) => store.set('s1', { cookie: { maxAge: 60000 }, n: 1 }, r));
    await store.set('s2', { n: 2 });
    const mine = await redis.createSession('dave', {});
    expect(await store.length()).toBe(2);
    expect((await store.all()).map((s) => s.n).sort()).toEqual([1, 2]);
    await store.clear();
    expect(await store.length()).toBe(0);
    expect(await redis.getSession(mine)).not.toBeNull();
    const got = await new Promise((r) => store.get('s1', (err, s) => r([err, s])));
    expect(got).toEqual([null, null]);
  });
});

describe('cache: wrap', () => {
  test('caches the loader result as JSON with its TTL; undefined is never cached', async () => {
    let calls = 0;
    const loader = async () => { calls++; return { id: 1, tags: ['a'] }; };
    expect(await redis.wrap('user:1', 60, loader)).toEqual({ id: 1, tags: ['a'] });
    expect(await redis.wrap('user:1', 60, loader)).toEqual({ id: 1, tags: ['a'] });
    expect(calls).toBe(1);
    expect(JSON.parse(await redis.get('cache:user:1'))).toEqual({ id: 1, tags: ['a'] });
    expect(await redis.ttl('cache:user:1')).toBeGreaterThan(55);
    expect(await redis.wrap('nothing', 60, () => undefined)).toBeUndefined();
    expect(await redis.exists('cache:nothing')).toBe(0);
    expect(await redis.wrap('null', 60, () => null)).toBeNull();
    expect(await redis.get('cache:null')).toBe('null');
    expect(await redis.wrap('sync', 60, () => 42)).toBe(42);
  });

  test('concurrent calls share one loader call; its rejection reaches every caller; nothing is cached', async () => {
    let calls = 0;
    const values = await Promise.all(Array.from({ length: 10 }, () => redis.wrap('hot', 60, async () => { calls++; await sleep(50); return calls; })));
    expect(values).toEqual(Array(10).fill(1));
    expect(calls).toBe(1);
    const boom = new Error('db down');
    const errors = await Promise.all(Array.from({ length: 5 }, () => redis.wrap('bad', 60, async () => { await sleep(20); throw boom; }).catch((e) => e)));
    for (const e of errors) expect(e).toBe(boom);
    expect(await redis.exists('cache:bad', 'cache-lock:bad')).toBe(0);
    const sync = await redis.wrap('bad', 60, () => { throw boom; }).catch((e) => e);
    expect(sync).toBe(boom);
  });

  test('stampede: 3 processes x 20 concurrent calls on a cold key run the 200 ms loader once', async () => {
    const startAt = Date.now() + 800;
    const runs = await Promise.all([0, 1, 2].map(() => runWorker({ mode: 'wrap', conn: srv.options, key: 'report', callers: 20, loaderMs: 200, startAt })));
    const values = runs.flatMap((r) => r.values);
    expect(values).toHaveLength(60);
    for (const v of values) expect(v).toEqual({ value: 'expensive', run: 1 });
    expect(await redis.get('loader-runs')).toBe('1');
  }, 30000);

  test('stale-while-revalidate serves the stale value once and refreshes it in the background', async () => {
    let version = 0;
    const loader = async () => { version++; await sleep(30); return `v${version}`; };
    expect(await redis.wrap('page', 1, loader, { staleSeconds: 10 })).toBe('v1');
    expect(await redis.ttl('cache:page')).toBeGreaterThan(9);
    await sleep(1100);
    expect(await redis.wrap('page', 1, loader, { staleSeconds: 10 })).toBe('v1');
    await sleep(150);
    expect(await redis.wrap('page', 1, loader, { staleSeconds: 10 })).toBe('v2');
    expect(version).toBe(2);
  });

  test('invalidate and invalidatePrefix (prefix-aware)', async () => {
    const p = await RedisService.connect({ ...srv.options, keyPrefix: 'app:', logger: false });
    for (const k of ['user:1', 'user:2', 'user:3', 'post:1']) await p.wrap(k, 60, () => k);
    await redis.set('cache:user:9', 'not ours');
    expect(await p.invalidate('user:1', 'user:404')).toBe(1);
    // No key: nothing to delete (no malformed UNLINK reaches Redis).
    expect(await p.invalidate()).toBe(0);
    expect(await p.invalidate([])).toBe(0);
    expect(await p.invalidatePrefix('user:')).toBe(2);
    expect((await redis.call('KEYS', '*')).sort()).toEqual(['app:cache:post:1', 'cache:user:9']);
    await p.disconnect();
  });

  test('Redis down: the loader runs directly, with one warning', async () => {
    const warnings = [];
    const dead = new RedisService({ url: 'redis://127.0.0.1:1', logger: { log() {}, warn: (m) => warnings.push(m), error() {} }, connectTimeoutMs: 200, failOpen: true });
    await dead.connect();
    let calls = 0;
    expect(await dead.wrap('k', 60, () => ++calls)).toBe(1);
    expect(await dead.wrap('k', 60, () => ++calls)).toBe(2);
    await sleep(50);
    expect(warnings.filter((w) => w.includes('wrap() calls loaders directly'))).toHaveLength(1);
    await dead.disconnect();
  });

  test('bad input', async () => {
    await expect(redis.wrap('k', 60, 'no')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/`loader` must be a function/) });
    await expect(redis.wrap('k', 0, () => 1)).rejects.toMatchObject({ message: expect.stringMatching(/`ttlSeconds` must be a positive integer/) });
    await expect(redis.wrap('k', 5, () => 1, { stale: 1 })).rejects.toMatchObject({ message: expect.stringMatching(/unknown option `options.stale`/) });
    await expect(redis.wrap(undefined, 5, () => 1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
