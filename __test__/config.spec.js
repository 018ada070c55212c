'use strict';
// Configuration from options and environment (the pure parsing is unit-tested in Rust too).
const { RedisService, isRedisConfigured } = require('..');
const { startRedis } = require('./helpers/redis-server');

let server;
beforeAll(async () => { server = await startRedis(); });
afterAll(async () => { await server.stop(); });

const hc = async (svc) => {
  const h = await svc.healthCheck();
  return { host: h.host, port: h.port, db: h.db };
};

test('defaults: localhost, 6379, db 0', async () => {
  const r = new RedisService({ logger: false });
  expect(await hc(r)).toEqual({ host: 'localhost', port: 6379, db: 0 });
  expect(r.url).toBe('redis://localhost:6379/0');
});

test('a URL string wherever options go, checked as `url` is (ioredis: new Redis(url))', async () => {
  const a = new RedisService(`${server.url}/3`);
  expect(await hc(a)).toEqual({ host: '127.0.0.1', port: server.port, db: 3 });
  await a.connect();
  expect(await a.ping()).toBe('PONG');
  await a.disconnect();
  const b = await RedisService.connect(server.url);
  expect(b.isConnected).toBe(true);
  await b.set('url-string', '1');
  expect(await b.get('url-string')).toBe('1');
  await b.disconnect();
  const c = RedisService.fromEnv({ REDIS_URL: 'redis://elsewhere:1' }, `${server.url}/4`);
  expect(await hc(c)).toEqual({ host: '127.0.0.1', port: server.port, db: 4 });
  for (const bad of ['http://h:1', 'redis://:hunter2@h:notaport', '']) {
    let err;
    try { new RedisService(bad); } catch (e) { err = e; }
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    expect(err.message).toMatch(/^options /);
    expect(err.message).not.toMatch(/hunter2/);
  }
  expect(() => RedisService.connect('ftp://x')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
});

test('fromEnv: REDIS_URL forms', async () => {
  const cases = [
    ['redis://h1:7000/3', { host: 'h1', port: 7000, db: 3 }, 'redis://h1:7000/3'],
    ['redis://:pw@h2', { host: 'h2', port: 6379, db: 0 }, 'redis://:***@h2:6379/0'],
    ['redis://alice:p%40ss@h3:6380/1', { host: 'h3', port: 6380, db: 1 }, 'redis://alice:***@h3:6380/1'],
    ['rediss://h4:6390', { host: 'h4', port: 6390, db: 0 }, 'rediss://h4:6390/0'],
  ];
  for (const [url, want, shown] of cases) {
    const r = RedisService.fromEnv({ REDIS_URL: url }, { logger: false });
    expect(await hc(r)).toEqual(want);
    expect(r.url).toBe(shown);
  }
});

test('fromEnv: discrete variables, and precedence options > REDIS_URL > discrete > defaults', async () => {
  let r = RedisService.fromEnv({ REDIS_HOST: 'dh', REDIS_PORT: '7001', REDIS_DB: '4' }, { logger: false });
  expect(await hc(r)).toEqual({ host: 'dh', port: 7001, db: 4 });
  r = RedisService.fromEnv({ REDIS_URL: 'redis://fromurl:1111/2', REDIS_HOST: 'dh', REDIS_PORT: '7001' }, { logger: false });
  expect(await hc(r)).toEqual({ host: 'fromurl', port: 1111, db: 2 });
  r = RedisService.fromEnv({ REDIS_URL: 'redis://fromurl:1111/2' }, { host: 'explicit', logger: false });
  expect(await hc(r)).toEqual({ host: 'explicit', port: 1111, db: 2 });
  r = RedisService.fromEnv({ REDIS_URL: 'redis://fromurl:1111/2' }, { url: 'redis://opturl:2222/5', logger: false });
  expect(await hc(r)).toEqual({ host: 'opturl', port: 2222, db: 5 });
  r = RedisService.fromEnv({ REDIS_KEY_PREFIX: 'app:', REDIS_ENABLED: 'false', REDIS_FAIL_OPEN: 'true' }, { logger: false });
  expect(r.keyPrefix).toBe('app:');
  expect(r.isEnabled).toBe(false);
});

test('fromEnv() reads process.env by default and connects to a real server', async () => {
  const saved = process.env.REDIS_URL;
  process.env.REDIS_URL = server.url;
  try {
    const r = RedisService.fromEnv(undefined, { logger: false });
    // jest gives each test file its own copy of process.env: the addon must read this one.
    expect((await r.healthCheck()).port).toBe(server.port);
    await r.connect();
    expect(await r.ping()).toBe('PONG');
    await r.disconnect();
    expect(isRedisConfigured()).toBe(true);
    delete process.env.REDIS_URL;
    process.env.REDIS_ENABLED = 'false';
    expect(isRedisConfigured()).toBe(false);
    delete process.env.REDIS_ENABLED;
  } finally {
    if (saved === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = saved;
  }
});

test('bad settings fail at once naming the setting', () => {
  const bad = [
    [{ REDIS_URL: 'not a url' }, /REDIS_URL/],
    [{ REDIS_URL: 'http://h:1' }, /REDIS_URL.*scheme/],
    [{ REDIS_PORT: '0' }, /REDIS_PORT/],
    [{ REDIS_PORT: '70000' }, /REDIS_PORT/],
    [{ REDIS_DB: '-1' }, /REDIS_DB/],
    [{ REDIS_TLS: 'maybe' }, /REDIS_TLS/],
    [{ REDIS_ENABLED: 'perhaps' }, /REDIS_ENABLED/],
  ];
  for (const [env, re] of bad) {
    expect(() => RedisService.fromEnv(env)).toThrow(re);
    expect(() => RedisService.fromEnv(env)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  }
  const badOptions = [
    [{ port: 0 }, /options\.port/],
    [{ port: 70000 }, /options\.port/],
    [{ port: '6379' }, /options\.port/],
    [{ db: -1 }, /options\.db/],
    [{ host: 5 }, /options\.host/],
    [{ tls: 'yes' }, /options\.tls/],
    [{ commandTimeoutMs: 0 }, /options\.commandTimeoutMs/],
    [{ connectTimeoutMs: NaN }, /options\.connectTimeoutMs/],
    [{ failOpen: 'true' }, /options\.failOpen/],
    [{ url: 'redis://h:99999' }, /options\.url/],
    [{ logger: 'console' }, /options\.logger/],
    [{ clientName: 'has space' }, /clientName/],
    [{ reconnectMinDelayMs: 1000, reconnectMaxDelayMs: 10 }, /reconnectMinDelayMs/],
  ];
  for (const [opts, re] of badOptions) {
    expect(() => new RedisService(opts)).toThrow(re);
  }
  expect(() => new RedisService(42)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
});

test('bad settings never echo a password', () => {
  let err;
  try {
    RedisService.fromEnv({ REDIS_URL: 'redis://u:hunter2-secret@h:99999' });
  } catch (e) {
    err = e;
  }
  expect(err.code).toBe('ERR_INVALID_ARGUMENT');
  expect(err.message).not.toMatch(/hunter2-secret/);
});

test('isRedisConfigured (seed 000)', () => {
  expect(isRedisConfigured({})).toBe(false);
  expect(isRedisConfigured({ REDIS_URL: 'redis://x' })).toBe(true);
  expect(isRedisConfigured({ REDIS_HOST: 'h' })).toBe(true);
  expect(isRedisConfigured({ REDIS_PORT: '6380' })).toBe(true);
  expect(isRedisConfigured({ REDIS_HOST: '  ' })).toBe(false);
  expect(isRedisConfigured({ REDIS_URL: 'redis://x', REDIS_ENABLED: 'false' })).toBe(false);
  expect(typeof isRedisConfigured()).toBe('boolean');
});

test('keyPrefix applies to keys and scan, and is stripped from returned keys', async () => {
  const r = await RedisService.connect({ url: server.url, keyPrefix: 'app[1]:', logger: false });
  const plain = await RedisService.connect({ url: server.url, logger: false });
  await r.set('user:1', 'a');
  await r.hSet('user:2', 'f', 'b');
  await r.mset({ 'user:3': 'c' });
  await plain.set('user:9', 'unprefixed');
  expect(await plain.get('app[1]:user:1')).toBe('a');
  expect(await r.get('user:1')).toBe('a');
  expect(await r.mget(['user:1', 'user:3'])).toEqual(['a', 'c']);
  const keys = [];
  for await (const k of r.scanIterator('user:*')) keys.push(k);
  expect(keys.sort()).toEqual(['user:1', 'user:2', 'user:3']);
  const all = [];
  for await (const k of r.scanIterator()) all.push(k);
  expect(all.sort()).toEqual(['user:1', 'user:2', 'user:3']);
  const step = await r.scan(0, { COUNT: 1000 });
  expect(step.keys.sort()).toEqual(['user:1', 'user:2', 'user:3']);
  expect(await r.del('user:1', 'user:2', 'user:3')).toBe(3);
  expect(await plain.get('user:9')).toBe('unprefixed');
  await plain.call('FLUSHDB');
  await r.disconnect();
  await plain.disconnect();
});
