'use strict';
// The near cache (`clientCache`): reads served from process memory, and the coherence rules
// (README, "Near cache"), each against a real redis-server. `npm test` runs this file on both
// paths: the JS-thread connection and (APP_REDIS_NO_UV=1) the runtime's.
const { RedisService } = require('..');
const { startRedis, sleep } = require('./helpers/redis-server');
const { until } = require('./helpers/assert');
const { readersNeverGoBackwards } = require('./helpers/near-cache');

let server;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});
afterEach(() => {
  server.cli('FLUSHALL');
});

/** A connected service with the near cache on (`clientCache` given as `cache`). */
function cached(cache = true, extra = {}) {
  return RedisService.connect({ url: server.url, logger: false, clientCache: cache, ...extra });
}

/** How many times the server ran `cmd` (from INFO commandstats). */
function calls(cmd) {
  const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(server.cli('INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

test('a read is served from memory after its first miss, with no round trip', async () => {
  const r = await cached();
  try {
    server.cli('SET', 'nc:a', 'one');
    expect(await r.get('nc:a')).toBe('one');
    const before = calls('get');
    for (let i = 0; i < 100; i++) expect(await r.get('nc:a')).toBe('one');
    expect(calls('get')).toBe(before);
    expect(await r.getBuffer('nc:a')).toEqual(Buffer.from('one'));
    // `call` always asks the server.
    expect(await r.call('GET', 'nc:a')).toBe('one');
    expect(calls('get')).toBe(before + 1);
    expect(r.clientCacheStats()).toMatchObject({ hits: 101, misses: 1, entries: 1, invalidations: 0 });
    expect(r.clientCacheStats().bytes).toBeGreaterThan(0);
    // The other reads it serves, each a miss once, then hits.
    server.cli('SET', 'nc:j', '{"a":1}');
    server.cli('HSET', 'nc:h', 'f', 'x', 'g', 'y');
    const reads = [() => r.getJson('nc:j'), () => r.strlen('nc:j'), () => r.hmGet('nc:h', 'f', 'g'), () => r.hGet('nc:h', 'g'), () => r.exists('nc:j')];
    const first = await Promise.all(reads.map((f) => f()));
    expect(first).toEqual([{ a: 1 }, 7, ['x', 'y'], 'y', 1]);
    const sent = ['get', 'strlen', 'hmget', 'hget', 'exists'].map(calls);
    expect(await Promise.all(reads.map((f) => f()))).toEqual(first);
    expect(['get', 'strlen', 'hmget', 'hget', 'exists'].map(calls)).toEqual(sent);
  } finally {
    await r.disconnect();
  }
});

test('a write by another client drops the entry: the next reads see it once the invalidation arrived', async () => {
  const r = await cached();
  const w = await RedisService.connect({ url: server.url, logger: false });
  try {
    await w.set('nc:b', 'v1');
    for (let j = 0; j < 3; j++) expect(await r.get('nc:b')).toBe('v1');
    await w.set('nc:b', 'v2');
    expect(await until(async () => (await r.get('nc:b')) === 'v2')).toBe(true);
    expect(r.clientCacheStats().invalidations).toBeGreaterThanOrEqual(1);
    // And it is cached again (from the first read that did not race the invalidation).
    await r.get('nc:b');
    const before = calls('get');
    expect(await r.get('nc:b')).toBe('v2');
    expect(calls('get')).toBe(before);
  } finally {
    await r.disconnect();
    await w.disconnect();
  }
});

test('after its own write resolves, the next read returns what it wrote', async () => {
  const r = await cached();
  try {
    for (let i = 0; i < 200; i++) {
      // Three reads: a miss, a hit the addon serves, hits from the copy kept in JS.
      for (let j = 0; j < 3; j++) expect(await r.get('nc:own')).toBe(i === 0 ? null : String(i - 1));
      await r.set('nc:own', String(i));
      expect(await r.get('nc:own')).toBe(String(i));
    }
    await r.hSet('nc:h', 'f', 'x');
    expect(await r.hGet('nc:h', 'f')).toBe('x');
    await r.hSet('nc:h', 'f', 'y');
    expect(await r.hGet('nc:h', 'f')).toBe('y');
    expect(await r.hGetAll('nc:h')).toEqual({ f: 'y' });
    await r.del('nc:h');
    expect(await r.hGetAll('nc:h')).toEqual({});
    expect(await r.exists('nc:h')).toBe(0);
  } finally {
    await r.disconnect();
  }
});

test('an entry is never served after its key expired, even before Redis processes the expiry', async () => {
  const r = await cached();
  try {
    // Active expiry off: the server would report the key only when someone touches it.
    server.cli('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
    server.cli('SET', 'nc:ttl', 'short', 'PX', '150');
    for (let j = 0; j < 4; j++) expect(await r.get('nc:ttl')).toBe('short');
    expect(r.clientCacheStats().hits).toBe(3);
    await sleep(200);
    expect(await r.get('nc:ttl')).toBeNull();
  } finally {
    server.cli('DEBUG', 'SET-ACTIVE-EXPIRE', '1');
    await r.disconnect();
  }
});

test('ttlMs bounds how long an entry is served', async () => {
  const r = await cached({ ttlMs: 50 });
  try {
    server.cli('SET', 'nc:t', 'x');
    await r.get('nc:t');
    await r.get('nc:t');
    expect(r.clientCacheStats().hits).toBe(1);
    await sleep(80);
    await r.get('nc:t');
    expect(r.clientCacheStats().misses).toBe(2);
  } finally {
    await r.disconnect();
  }
});

test('losing the connection flushes everything before the next read is served', async () => {
  const own = await startRedis();
  const r = await RedisService.connect({ url: own.url, logger: false, clientCache: true, reconnectMaxDelayMs: 50 });
  try {
    own.cli('SET', 'nc:lost', 'before');
    expect(await r.get('nc:lost')).toBe('before');
    expect(await r.get('nc:lost')).toBe('before');
    // The server goes away and comes back empty; a write lands before this client reconnects.
    await own.kill('SIGKILL');
    await own.start();
    own.cli('SET', 'nc:lost', 'after');
    expect(await until(async () => {
      try {
        return (await r.get('nc:lost')) === 'after';
      } catch {
        return false; // still reconnecting
      }
    }, 5000)).toBe(true);
    expect(r.clientCacheStats().flushes).toBeGreaterThanOrEqual(1);
  } finally {
    await r.disconnect();
    await own.stop();
  }
});

test('a value a caller changed is not what the next hit returns', async () => {
  const r = await cached();
  try {
    server.cli('SET', 'nc:obj', '{"a":[1,2],"b":{"c":"d"}}');
    server.cli('HSET', 'nc:hobj', 'f', 'x', 'g', 'y');
    for (let j = 0; j < 5; j++) {
      const [json, hash, fields] = await Promise.all([r.getJson('nc:obj'), r.hGetAll('nc:hobj'), r.hmGet('nc:hobj', 'f')]);
      expect([json, hash, fields]).toEqual([{ a: [1, 2], b: { c: 'd' } }, { f: 'x', g: 'y' }, ['x']]);
      json.a.push(3);
      json.b.c = 'changed';
      hash.f = 'changed';
      fields[0] = 'changed';
    }
    expect(r.clientCacheStats().hits).toBe(12);
  } finally {
    await r.disconnect();
  }
});

test('FLUSHDB and clearClientCache() drop everything', async () => {
  const r = await cached();
  try {
    server.cli('SET', 'nc:f', '1');
    await r.get('nc:f');
    server.cli('FLUSHDB');
    expect(await until(async () => (await r.get('nc:f')) === null)).toBe(true);
    server.cli('SET', 'nc:f', '2');
    expect(await until(async () => (await r.get('nc:f')) === '2')).toBe(true);
    r.clearClientCache();
    expect(r.clientCacheStats().entries).toBe(0);
    const before = calls('get');
    expect(await r.get('nc:f')).toBe('2');
    expect(calls('get')).toBe(before + 1);
  } finally {
    await r.disconnect();
  }
});

test('keyPrefix: entries are kept and invalidated under the full key', async () => {
  const r = await cached(true, { keyPrefix: 'app:' });
  try {
    server.cli('SET', 'app:k', 'one');
    expect(await r.get('k')).toBe('one');
    server.cli('SET', 'app:k', 'two');
    expect(await until(async () => (await r.get('k')) === 'two')).toBe(true);
  } finally {
    await r.disconnect();
  }
});

test('getSession is cached and sees another service\'s updateSession', async () => {
  const r = await cached();
  const w = await RedisService.connect({ url: server.url, logger: false });
  try {
    const id = await w.createSession('u1', { theme: 'dark' }, 60);
    expect(await r.getSession(id)).toMatchObject({ theme: 'dark', userId: 'u1' });
    const before = calls('hget');
    expect(await r.getSession(id)).toMatchObject({ theme: 'dark' });
    expect(calls('hget')).toBe(before);
    await w.updateSession(id, { theme: 'light' });
    expect(await until(async () => (await r.getSession(id)).theme === 'light')).toBe(true);
    await w.destroySession(id);
    expect(await until(async () => (await r.getSession(id)) === null)).toBe(true);
  } finally {
    await r.disconnect();
    await w.disconnect();
  }
});

test('mget is answered key by key: the keys held from memory, the others in one MGET, then kept', async () => {
  const r = await cached();
  const w = await RedisService.connect({ url: server.url, logger: false });
  try {
    server.cli('MSET', 'm:a', '1', 'm:b', '2', 'm:c', '3');
    expect(await r.get('m:b')).toBe('2'); // shared with get()
    const [before, gets] = [calls('mget'), calls('get')];
    expect(await r.mget('m:a', 'm:b', 'm:c', 'm:none')).toEqual(['1', '2', '3', null]);
    expect(calls('mget')).toBe(before + 1);
    expect(await r.mget(['m:c', 'm:a', 'm:none'])).toEqual(['3', '1', null]);
    expect(await r.get('m:a')).toBe('1');
    expect(calls('mget')).toBe(before + 1);
    await w.set('m:c', 'three');
    expect(await until(async () => (await r.mget('m:a', 'm:c'))[1] === 'three')).toBe(true);
    expect(calls('mget')).toBe(before + 2);
    expect(calls('get')).toBe(gets);
  } finally {
    await r.disconnect();
    await w.disconnect();
  }
});

test('wrap reads through it: its own store is seen at once, another process\'s invalidate soon after', async () => {
  const r = await cached();
  const w = await RedisService.connect({ url: server.url, logger: false });
  try {
    let loads = 0;
    const loader = () => ({ n: ++loads });
    expect(await r.wrap('p', 60, loader)).toEqual({ n: 1 });
    // The value was stored over the other connection: this process dropped its entry itself.
    // The store's own invalidation may still be on its way and keep the next read out of the
    // cache (a reply that races an invalidation of its key is not kept); after it, reads are kept.
    await sleep(50);
    expect(await r.wrap('p', 60, loader)).toEqual({ n: 1 });
    const before = calls('get');
    expect(await r.wrap('p', 60, loader)).toEqual({ n: 1 });
    expect(calls('get')).toBe(before);
    await w.invalidate('p');
    expect(await until(async () => (await r.wrap('p', 60, loader)).n === 2)).toBe(true);
    expect(loads).toBe(2);
  } finally {
    await r.disconnect();
    await w.disconnect();
  }
});

test('bounded by maxEntries, least recently used out first', async () => {
  const r = await cached({ maxEntries: 2 });
  try {
    for (const k of ['a', 'b']) server.cli('SET', `nc:${k}`, k);
    server.cli('SET', 'nc:c', 'c');
    await r.get('nc:a');
    await r.get('nc:b');
    await r.get('nc:a'); // hit: b is now the least recently used
    await r.get('nc:c'); // evicts b
    expect(r.clientCacheStats()).toMatchObject({ entries: 2, evictions: 1, hits: 1 });
    const before = calls('get');
    await r.get('nc:a');
    await r.get('nc:c');
    expect(calls('get')).toBe(before);
    await r.get('nc:b');
    expect(calls('get')).toBe(before + 1);
  } finally {
    await r.disconnect();
  }
});

test('readers never go backwards while another process writes at full speed', async () => {
  const readers = await Promise.all([cached(), cached()]);
  try {
    await readersNeverGoBackwards(readers, { url: server.url }, () => server.cli('GET', 'nc:done'));
  } finally {
    await Promise.all(readers.map((r) => r.disconnect()));
  }
});

test('bad clientCache options are refused with ERR_INVALID_ARGUMENT naming the option', () => {
  for (const [value, name] of [['yes', 'options.clientCache'], [{ maxEntries: 0 }, 'options.clientCache.maxEntries'], [{ ttlMs: -1 }, 'options.clientCache.ttlMs'], [{ maxBytes: 'big' }, 'options.clientCache.maxBytes'], [{ size: 1 }, 'options.clientCache.size']]) {
    expect(() => new RedisService({ url: server.url, logger: false, clientCache: value })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining(name) }));
  }
});

test('REDIS_CLIENT_CACHE=true turns it on from the environment', async () => {
  const r = RedisService.fromEnv({ REDIS_URL: server.url, REDIS_CLIENT_CACHE: 'true' }, { logger: false });
  try {
    await r.connect();
    server.cli('SET', 'nc:env', 'x');
    await r.get('nc:env');
    await r.get('nc:env');
    expect(r.clientCacheStats().hits).toBe(1);
  } finally {
    await r.disconnect();
  }
  const off = RedisService.fromEnv({ REDIS_URL: server.url }, { logger: false });
  expect(off.clientCacheStats()).toEqual({ hits: 0, misses: 0, entries: 0, bytes: 0, evictions: 0, invalidations: 0, flushes: 0 });
});
