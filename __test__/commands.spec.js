'use strict';
// Every command family against a real redis-server.
const { RedisService } = require('..');
const { suiteServer, startRedis, MODE } = require('./helpers/redis-server');
const { isError } = require('./helpers/assert');

let srv;
let redis;

beforeAll(async () => {
  srv = await suiteServer();
  redis = await RedisService.connect({ ...srv.options, logger: false });
});
afterEach(async () => {
  await redis.call('FLUSHDB');
});
afterAll(async () => {
  await redis.disconnect();
  await srv.stop();
});

describe('strings', () => {
  test('get/set round trip and missing key is null', async () => {
    expect(await redis.set('s:a', 'hello')).toBe('OK');
    expect(await redis.get('s:a')).toBe('hello');
    expect(await redis.get('s:missing')).toBeNull();
  });

  test('set with an options object (node-redis style)', async () => {
    expect(await redis.set('s:ex', 'v', { EX: 300 })).toBe('OK');
    const ttl = await redis.ttl('s:ex');
    expect(ttl).toBeGreaterThan(295);
    expect(ttl).toBeLessThanOrEqual(300);
    expect(await redis.set('s:ex', 'other', { NX: true })).toBeNull();
    expect(await redis.get('s:ex')).toBe('v');
    expect(await redis.set('s:nx-new', 'v', { XX: true })).toBeNull();
    expect(await redis.get('s:nx-new')).toBeNull();
    await redis.set('s:ex', 'v3', { KEEPTTL: true });
    expect(await redis.ttl('s:ex')).toBeGreaterThan(290);
    expect(await redis.set('s:ex', 'v4', { GET: true })).toBe('v3');
    expect(await redis.ttl('s:ex')).toBe(-1);
    await redis.set('s:px', 'v', { PX: 30000 });
    const pttl = await redis.pttl('s:px');
    expect(pttl).toBeGreaterThan(29000);
    expect(pttl).toBeLessThanOrEqual(30000);
    const at = Math.floor(Date.now() / 1000) + 100;
    await redis.set('s:exat', 'v', { EXAT: at });
    expect(await redis.ttl('s:exat')).toBeGreaterThan(95);
  });

  test('set with ioredis tokens', async () => {
    expect(await redis.set('s:t', 'v', 'EX', 60)).toBe('OK');
    expect(await redis.ttl('s:t')).toBeGreaterThan(55);
    expect(await redis.set('lock:order:1', 'locked', 'PX', 30000, 'NX')).toBe('OK');
    expect(await redis.set('lock:order:1', 'locked', 'PX', 30000, 'NX')).toBeNull();
    expect(await redis.pttl('lock:order:1')).toBeGreaterThan(29000);
    expect(await redis.set('s:t', 'v2', 'XX')).toBe('OK');
    expect(await redis.set('s:t', 'v3', 'ex', 10, 'get')).toBe('v2');
  });

  test('set refuses contradictory or unknown options', async () => {
    await expect(redis.set('k', 'v', { NX: true, XX: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(redis.set('k', 'v', { EX: 1, PX: 1000 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(redis.set('k', 'v', 'EX')).rejects.toThrow(/EX needs a number/);
    await expect(redis.set('k', 'v', 'BOGUS', 1)).rejects.toThrow(/unknown option token "BOGUS"/);
    await expect(redis.set('k', 'v', { EX: -5 })).rejects.toThrow(/options\.EX/);
    expect(await redis.exists('k')).toBe(0);
  });

  test('setex, psetex, getdel, getex', async () => {
    expect(await redis.setex('s:se', 3600, 'x')).toBe('OK');
    expect(await redis.ttl('s:se')).toBeGreaterThan(3590);
    await redis.psetex('s:pse', 5000, 'y');
    expect(await redis.pttl('s:pse')).toBeGreaterThan(4000);
    expect(await redis.getdel('s:pse')).toBe('y');
    expect(await redis.exists('s:pse')).toBe(0);
    await redis.set('s:gx', 'z');
    expect(await redis.getex('s:gx', { EX: 100 })).toBe('z');
    expect(await redis.ttl('s:gx')).toBeGreaterThan(95);
    expect(await redis.getex('s:gx', { PERSIST: true })).toBe('z');
    expect(await redis.ttl('s:gx')).toBe(-1);
    expect(await redis.getex('s:gx')).toBe('z');
  });

  test('mget/mset in all forms', async () => {
    expect(await redis.mset({ a: '1', b: 2 })).toBe('OK');
    await redis.mset([['c', '3'], ['d', '4']]);
    await redis.mset(['e', '5', 'f', '6']);
    expect(await redis.mget(['a', 'b', 'c', 'd', 'e', 'f', 'zz'])).toEqual(['1', '2', '3', '4', '5', '6', null]);
    expect(await redis.mget('a', 'b')).toEqual(['1', '2']);
    expect(await redis.mget('a')).toEqual(['1']);
  });

  test('counters', async () => {
    expect(await redis.incr('n')).toBe(1);
    expect(await redis.incrBy('n', 10)).toBe(11);
    expect(await redis.decr('n')).toBe(10);
    expect(await redis.decrBy('n', 3)).toBe(7);
    expect(await redis.incrByFloat('f', 1.5)).toBe(1.5);
    expect(await redis.incrByFloat('f', 0.25)).toBe(1.75);
    expect(await redis.append('str', 'ab')).toBe(2);
    expect(await redis.append('str', 'cd')).toBe(4);
    expect(await redis.strlen('str')).toBe(4);
    expect(await redis.get('str')).toBe('abcd');
  });

  test('numbers are sent as decimal text', async () => {
    await redis.set('num', 42);
    expect(await redis.get('num')).toBe('42');
    await redis.set('num', 1.5);
    expect(await redis.get('num')).toBe('1.5');
    await redis.set('num', 10n ** 20n);
    expect(await redis.get('num')).toBe('100000000000000000000');
  });

  test('JSON helpers', async () => {
    await redis.setJson('j', { a: 1, b: [true, null, 'x'] }, 60);
    expect(await redis.getJson('j')).toEqual({ a: 1, b: [true, null, 'x'] });
    expect(await redis.ttl('j')).toBeGreaterThan(55);
    await redis.setJson('j2', 5);
    expect(await redis.getJson('j2')).toBe(5);
    expect(await redis.ttl('j2')).toBe(-1);
    expect(await redis.getJson('missing')).toBeNull();
    await redis.set('notjson', '{oops');
    await expect(redis.getJson('notjson')).rejects.toMatchObject({ name: 'SyntaxError', code: 'ERR_REPLY' });
    await expect(redis.setJson('j3', undefined)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const circ = {};
    circ.self = circ;
    await expect(redis.setJson('j3', circ)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(await redis.exists('j3')).toBe(0);
  });
});

describe('keys', () => {
  test('del and unlink take one key, several, or an array', async () => {
    await redis.mset({ a: 1, b: 1, c: 1, d: 1, e: 1, f: 1 });
    expect(await redis.del('a')).toBe(1);
    expect(await redis.del('b', 'c')).toBe(2);
    expect(await redis.del(['d', 'nope'])).toBe(1);
    expect(await redis.unlink('e', 'f', 'g')).toBe(2);
    expect(await redis.exists('a', 'b', 'c', 'd', 'e', 'f')).toBe(0);
  });

  test('exists counts, expire/pexpire/expireAt/persist/ttl/pttl', async () => {
    await redis.set('k1', 'v');
    await redis.set('k2', 'v');
    expect(await redis.exists('k1', 'k2', 'k3')).toBe(2);
    expect(await redis.exists(['k1'])).toBe(1);
    expect(await redis.ttl('k1')).toBe(-1);
    expect(await redis.ttl('k3')).toBe(-2);
    expect(await redis.expire('k1', 600)).toBe(true);
    expect(await redis.expire('k3', 600)).toBe(false);
    expect(await redis.ttl('k1')).toBeGreaterThan(595);
    expect(await redis.pexpire('k2', 1500)).toBe(true);
    expect(await redis.pttl('k2')).toBeGreaterThan(1000);
    expect(await redis.persist('k2')).toBe(true);
    expect(await redis.pttl('k2')).toBe(-1);
    expect(await redis.expireAt('k2', Math.floor(Date.now() / 1000) + 50)).toBe(true);
    expect(await redis.ttl('k2')).toBeGreaterThan(45);
    expect(await redis.expireAt('k2', new Date(Date.now() + 200000))).toBe(true);
    expect(await redis.ttl('k2')).toBeGreaterThan(190);
  });

  test('a short TTL really expires', async () => {
    await redis.psetex('short', 100, 'v');
    expect(await redis.get('short')).toBe('v');
    await new Promise((r) => setTimeout(r, 250));
    expect(await redis.get('short')).toBeNull();
  });

  test('type and rename', async () => {
    await redis.set('t:s', 'v');
    await redis.lPush('t:l', 'v');
    await redis.hSet('t:h', 'f', 'v');
    expect(await redis.type('t:s')).toBe('string');
    expect(await redis.type('t:l')).toBe('list');
    expect(await redis.type('t:h')).toBe('hash');
    expect(await redis.type('t:none')).toBe('none');
    // Both keys of RENAME share a hash tag, so this also holds in cluster mode.
    await redis.set('{t}s', 'v');
    expect(await redis.rename('{t}s', '{t}s2')).toBe('OK');
    expect(await redis.get('{t}s2')).toBe('v');
    await expect(redis.rename('{t}none', '{t}x')).rejects.toMatchObject({ code: 'ERR_REPLY', message: expect.stringMatching(/no such key/) });
  });

  test('scan steps and scanIterator visit every key once', async () => {
    const keys = Array.from({ length: 250 }, (_, i) => `scan:${i}`);
    await redis.mset(keys.flatMap((k) => [k, 'v']));
    await redis.set('other', 'v');
    if (MODE === 'cluster') {
      // A cursor belongs to one server: refused rather than silently partial.
      await expect(redis.scan('0')).rejects.toMatchObject({ code: 'ERR_REPLY', message: expect.stringMatching(/scanIterator/) });
    } else {
      const seen = new Set();
      let cursor = '0';
      do {
        const r = await redis.scan(cursor, { MATCH: 'scan:*', COUNT: 50 });
        r.keys.forEach((k) => seen.add(k));
        cursor = r.cursor;
        expect(typeof cursor).toBe('string');
      } while (cursor !== '0');
      expect([...seen].sort()).toEqual([...keys].sort());
    }
    const it = [];
    for await (const k of redis.scanIterator('scan:*', 40)) it.push(k);
    expect(new Set(it)).toEqual(new Set(keys));
    const all = [];
    for await (const k of redis.scanIterator()) all.push(k);
    expect(all.length).toBe(251);
    const some = [];
    for await (const k of redis.scanIterator('scan:*')) {
      some.push(k);
      if (some.length === 3) break;
    }
    expect(some.length).toBe(3);
  });
});

describe('hashes', () => {
  test('hSet both forms, hGet, hGetAll, hDel, hExists, hIncrBy, hKeys, hVals, hLen, hmGet', async () => {
    expect(await redis.hSet('user:123:profile', 'name', 'John Doe')).toBe(1);
    expect(await redis.hSet('user:123:profile', 'email', 'john@example.com')).toBe(1);
    expect(await redis.hSet('user:123:profile', { age: 30, city: 'Oslo' })).toBe(2);
    expect(await redis.hGet('user:123:profile', 'name')).toBe('John Doe');
    expect(await redis.hGet('user:123:profile', 'nope')).toBeNull();
    expect(await redis.hGetAll('user:123:profile')).toEqual({ name: 'John Doe', email: 'john@example.com', age: '30', city: 'Oslo' });
    expect(await redis.hGetAll('missing')).toEqual({});
    expect(await redis.hExists('user:123:profile', 'age')).toBe(true);
    expect(await redis.hExists('user:123:profile', 'zip')).toBe(false);
    expect(await redis.hIncrBy('user:123:profile', 'age', 2)).toBe(32);
    expect((await redis.hKeys('user:123:profile')).sort()).toEqual(['age', 'city', 'email', 'name']);
    expect(await redis.hVals('user:123:profile')).toContain('Oslo');
    expect(await redis.hLen('user:123:profile')).toBe(4);
    expect(await redis.hmGet('user:123:profile', ['name', 'zip', 'city'])).toEqual(['John Doe', null, 'Oslo']);
    expect(await redis.hmGet('user:123:profile', 'name', 'city')).toEqual(['John Doe', 'Oslo']);
    expect(await redis.hDel('user:123:profile', 'age', 'city')).toBe(2);
    expect(await redis.hDel('user:123:profile', ['zip'])).toBe(0);
    expect(await redis.hLen('user:123:profile')).toBe(2);
  });
});

describe('lists', () => {
  test('push, pop, range, trim, len, rem, index', async () => {
    expect(await redis.lPush('l', 'a')).toBe(1);
    expect(await redis.lPush('l', 'b', 'c')).toBe(3);
    expect(await redis.rPush('l', ['x', 'y'])).toBe(5);
    expect(await redis.lRange('l', 0, -1)).toEqual(['c', 'b', 'a', 'x', 'y']);
    expect(await redis.lIndex('l', 1)).toBe('b');
    expect(await redis.lIndex('l', 99)).toBeNull();
    expect(await redis.lPop('l')).toBe('c');
    expect(await redis.rPop('l')).toBe('y');
    expect(await redis.lPop('l', 2)).toEqual(['b', 'a']);
    await redis.rPush('l', 'x', 'z', 'x');
    expect(await redis.lRem('l', 0, 'x')).toBe(3);
    expect(await redis.lLen('l')).toBe(1);
    await redis.rPush('l', '1', '2', '3', '4');
    expect(await redis.lTrim('l', 0, 1)).toBe('OK');
    expect(await redis.lRange('l', 0, -1)).toEqual(['z', '1']);
    expect(await redis.lPop('empty')).toBeNull();
  });
});

describe('sets', () => {
  test('sAdd, sRem, sMembers, sIsMember, sCard', async () => {
    expect(await redis.sAdd('active-users', 'user123', 'user456')).toBe(2);
    expect(await redis.sAdd('active-users', ['user123', 'user789'])).toBe(1);
    expect((await redis.sMembers('active-users')).sort()).toEqual(['user123', 'user456', 'user789']);
    expect(await redis.sIsMember('active-users', 'user456')).toBe(true);
    expect(await redis.sIsMember('active-users', 'nobody')).toBe(false);
    expect(await redis.sRem('active-users', 'user456', 'nobody')).toBe(1);
    expect(await redis.sCard('active-users')).toBe(2);
  });
});

describe('sorted sets', () => {
  test('zAdd forms, scores, ranks and ranges', async () => {
    expect(await redis.zAdd('leaderboard', [{ score: 100, value: 'player1' }, { score: 85, value: 'player2' }])).toBe(2);
    expect(await redis.zAdd('leaderboard', { score: 90, value: 'player3' })).toBe(1);
    expect(await redis.zAdd('leaderboard', 70, 'player4')).toBe(1);
    expect(await redis.zRevRange('leaderboard', 0, 1)).toEqual(['player1', 'player3']);
    expect(await redis.zRange('leaderboard', 0, -1)).toEqual(['player4', 'player2', 'player3', 'player1']);
    expect(await redis.zRangeWithScores('leaderboard', 0, 1)).toEqual([{ value: 'player4', score: 70 }, { value: 'player2', score: 85 }]);
    expect(await redis.zScore('leaderboard', 'player2')).toBe(85);
    expect(await redis.zScore('leaderboard', 'ghost')).toBeNull();
    expect(await redis.zIncrBy('leaderboard', 2.5, 'player2')).toBe(87.5);
    expect(await redis.zRank('leaderboard', 'player4')).toBe(0);
    expect(await redis.zRank('leaderboard', 'ghost')).toBeNull();
    expect(await redis.zCard('leaderboard')).toBe(4);
    expect(await redis.zRangeByScore('leaderboard', 80, 95)).toEqual(['player2', 'player3']);
    expect(await redis.zRangeByScore('leaderboard', '(87.5', '+inf')).toEqual(['player3', 'player1']);
    expect(await redis.zRangeByScore('leaderboard', -Infinity, Infinity)).toHaveLength(4);
    expect(await redis.zRem('leaderboard', 'player4', 'ghost')).toBe(1);
  });
});

describe('binary data and size', () => {
  test('all 256 byte values round-trip through Buffers', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await redis.set('bin', all);
    const back = await redis.getBuffer('bin');
    expect(Buffer.isBuffer(back)).toBe(true);
    expect(back.equals(all)).toBe(true);
    await redis.hSet('binh', 'f', all);
    expect(await redis.strlen('bin')).toBe(256);
    await redis.set(Buffer.from([0xff, 0x00, 0xfe]), 'binary key');
    expect(await redis.get(Buffer.from([0xff, 0x00, 0xfe]))).toBe('binary key');
    expect(await redis.getBuffer('missing')).toBeNull();
  });

  test('a 10 MB value round-trips', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await redis.set('big', big);
    const back = await redis.getBuffer('big');
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);
    expect(await redis.strlen('big')).toBe(big.length);
  });

  test('unicode text round-trips', async () => {
    const s = 'héllo 🌍 — 日本語';
    await redis.set('u', s);
    expect(await redis.get('u')).toBe(s);
  });
});

describe('errors from Redis', () => {
  test('WRONGTYPE rejects with ERR_REPLY and Redis text', async () => {
    await redis.lPush('a-list', 'x');
    const err = await redis.get('a-list').catch((e) => e);
    expect(isError(err)).toBe(true);
    expect(err.code).toBe('ERR_REPLY');
    expect(err.message).toMatch(/^WRONGTYPE Operation against a key holding the wrong kind of value/);
    await expect(redis.incr('a-list')).rejects.toMatchObject({ code: 'ERR_REPLY' });
  });

  test('call runs any command and decodes the reply', async () => {
    expect(await redis.call('SET', 'c1', 'v')).toBe('OK');
    expect(await redis.call('GET', 'c1')).toBe('v');
    expect(await redis.call('HSET', 'c2', 'a', '1', 'b', '2')).toBe(2);
    expect(await redis.call('HGETALL', 'c2')).toEqual({ a: '1', b: '2' });
    expect(await redis.call('PING')).toBe('PONG');
    await expect(redis.call('NOSUCHCMD')).rejects.toMatchObject({ code: 'ERR_REPLY', message: expect.stringMatching(/unknown command/) });
  });

  test('publish resolves the receiver count', async () => {
    expect(await redis.publish('notifications', JSON.stringify({ message: 'Hello!' }))).toBe(0);
  });
});

describe('empty collections', () => {
  // Keys share a hash tag (one slot) so the transactions run in cluster mode too.
  // What each empty call means, answered without a malformed command reaching Redis (a DEL
  // without keys is an error there). See the README's "Empty collections".
  const errorReplies = async () => {
    if (MODE !== 'standalone') return 0;
    return Number(/total_error_replies:(\d+)/.exec(await redis.call('INFO', 'stats'))[1]);
  };

  test('each empty call resolves what it means, alone and in pipelines and transactions', async () => {
    await redis.rPush('{e}list', ['a', 'b']);
    await redis.hSet('{e}hash', { f: '1' });
    const before = await errorReplies();
    const calls = [
      ['del([])', (r) => r.del([]), 0],
      ['del()', (r) => r.del(), 0],
      ['unlink([])', (r) => r.unlink([]), 0],
      ['exists([])', (r) => r.exists([]), 0],
      ['mget([])', (r) => r.mget([]), []],
      ['mset({})', (r) => r.mset({}), 'OK'],
      ['mset([])', (r) => r.mset([]), 'OK'],
      ['hSet(k, {})', (r) => r.hSet('{e}hash', {}), 0],
      ['hDel(k, [])', (r) => r.hDel('{e}hash', []), 0],
      ['hmGet(k, [])', (r) => r.hmGet('{e}hash', []), []],
      ['sAdd(k, [])', (r) => r.sAdd('{e}set', []), 0],
      ['sRem(k, [])', (r) => r.sRem('{e}set', []), 0],
      ['zAdd(k, [])', (r) => r.zAdd('{e}zset', []), 0],
      ['zRem(k, [])', (r) => r.zRem('{e}zset', []), 0],
      // Pushing nothing resolves the list's length, as the push would.
      ['lPush(k, [])', (r) => r.lPush('{e}list', []), 2],
      ['rPush(k, [])', (r) => r.rPush('{e}list', []), 2],
    ];
    for (const [name, call, want] of calls) {
      expect([name, await call(redis)]).toEqual([name, want]);
    }
    for (const make of [() => redis.pipeline(), () => redis.multi()]) {
      const p = make().get('{e}none');
      for (const [, call] of calls) call(p);
      p.hGet('{e}hash', 'f');
      const out = await p.exec();
      expect(out).toEqual([[null, null], ...calls.map(([, , want]) => [null, want]), [null, '1']]);
    }
    // Only empties: nothing is sent at all.
    expect(await redis.pipeline().del([]).mget([]).exec()).toEqual([[null, 0], [null, []]]);
    expect(await redis.multi().del([]).exec()).toEqual([[null, 0]]);
    // Nested arrays flatten one level, as the typings allow.
    await redis.mset([['{e}a', '1'], ['{e}b', '2']]);
    expect(await redis.exists('{e}a', ['{e}b', '{e}c'])).toBe(2);
    expect(await redis.del(['{e}a'], '{e}b')).toBe(2);
    expect(await redis.lLen('{e}list')).toBe(2);
    expect(await redis.hGetAll('{e}hash')).toEqual({ f: '1' });
    expect(await errorReplies()).toBe(before);
  });

  test('rateLimitMany with no limits is refused (it would allow everything)', async () => {
    await expect(redis.rateLimitMany('{e}rl', [])).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('pipeline and multi', () => {
  test('pipeline returns [error, result] pairs in order, with a failing command in place', async () => {
    await redis.lPush('plist', 'x');
    const results = await redis.pipeline().set('p1', 'v').get('p1').incr('plist').incr('pn').hGetAll('nohash').exec();
    expect(results).toHaveLength(5);
    expect(results[0]).toEqual([null, 'OK']);
    expect(results[1]).toEqual([null, 'v']);
    expect(isError(results[2][0])).toBe(true);
    expect(results[2][0].code).toBe('ERR_REPLY');
    expect(results[2][0].message).toMatch(/WRONGTYPE/);
    expect(results[2][1]).toBeNull();
    expect(results[3]).toEqual([null, 1]);
    expect(results[4]).toEqual([null, {}]);
  });

  test('multi is atomic and seed 001 reads results[0][1]', async () => {
    const pipeline = redis.multi();
    pipeline.incr('rate_limit:1.2.3.4');
    pipeline.expire('rate_limit:1.2.3.4', 3600);
    const results = await pipeline.exec();
    expect(results[0][1]).toBe(1);
    expect(results[1]).toEqual([null, true]);
    expect(await redis.ttl('rate_limit:1.2.3.4')).toBeGreaterThan(3590);
  });

  test('an error at EXEC time stays in its slot; others are applied', async () => {
    await redis.set('str', 'x');
    await redis.set('{m}str', 'x');
    const r = await redis.multi().set('{m}1', 'a').lPush('{m}str', 'boom').set('{m}2', 'b').exec();
    expect(r[0]).toEqual([null, 'OK']);
    expect(r[1][0].code).toBe('ERR_REPLY');
    expect(r[2]).toEqual([null, 'OK']);
    expect(await redis.mget('{m}1', '{m}2')).toEqual(['a', 'b']);
  });

  test('a command refused when queued aborts the whole transaction', async () => {
    const m = redis.multi().set('{ab}1', 'a').call('SET', '{ab}only-one-arg').set('{ab}2', 'b');
    await expect(m.exec()).rejects.toMatchObject({ code: 'ERR_REPLY', message: expect.stringMatching(/EXECABORT/) });
    expect(await redis.exists('{ab}1', '{ab}2')).toBe(0);
  });

  test('invalid arguments throw when queued; empty exec resolves []', async () => {
    const p = redis.pipeline();
    expect(() => p.get(undefined)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(p.length).toBe(0);
    expect(await p.exec()).toEqual([]);
  });

  test('a pipeline of 2001 commands, a failing one among them, resolves every pair in order', async () => {
    const p = redis.pipeline();
    for (let i = 0; i < 1000; i++) p.set(`pp:${i}`, String(i));
    for (let i = 0; i < 500; i++) p.get(`pp:${i}`);
    p.call('GET'); // wrong number of arguments; past the first 1024 pairs
    for (let i = 500; i < 1000; i++) p.get(`pp:${i}`);
    const r = await p.exec();
    expect(r).toHaveLength(2001);
    r.forEach((pair, i) => {
      expect(Array.isArray(pair) && pair.length === 2).toBe(true);
      if (i < 1000) expect(pair).toEqual([null, 'OK']);
      else if (i < 1500) expect(pair).toEqual([null, String(i - 1000)]);
      else if (i === 1500) expect(pair).toEqual([expect.objectContaining({ code: 'ERR_REPLY' }), null]);
      else expect(pair).toEqual([null, String(i - 1001)]);
    });
  });

  test('an argument getter that queues on the same pipeline queues first', async () => {
    const p = redis.pipeline();
    p.set('re:k', 'v', { get EX() { p.set('re:inner', 'i'); return 60; } });
    expect(p.length).toBe(2);
    expect(await p.exec()).toEqual([[null, 'OK'], [null, 'OK']]);
    expect(await redis.get('re:inner')).toBe('i');
    expect(await redis.ttl('re:k')).toBeGreaterThan(50);
  });

  test('getClient() is the service itself (seed 001)', async () => {
    const client = redis.getClient();
    expect(client).toBe(redis);
    await client.lPush('notifications:user:123', 'New message');
    expect(await client.lRange('notifications:user:123', 0, 9)).toEqual(['New message']);
  });
});

describe('ordering', () => {
  test('calls take effect in call order, across commands, pipelines and transactions', async () => {
    const incrs = Array.from({ length: 1000 }, () => redis.incr('ord:n'));
    const viaPipeline = redis.pipeline().get('ord:n').exec();
    redis.set('ord:s', 'first');
    const viaMulti = redis.multi().get('ord:s').set('ord:s', 'second').exec();
    const last = redis.get('ord:s');
    expect(await Promise.all(incrs)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(await viaPipeline).toEqual([[null, '1000']]);
    expect(await viaMulti).toEqual([[null, 'first'], [null, 'OK']]);
    expect(await last).toBe('second');
  });

  test('a long burst starts going out before its tick ends on the JS-thread connection; the rest goes when the tick ends', async () => {
    // A server of its own, read by redis-cli while the burst's tick is still running.
    const own = await startRedis();
    const svc = await RedisService.connect({ url: own.url, logger: false });
    try {
      const keys = Array.from({ length: 16 }, (_, i) => `burst:${i}`);
      // A tick of several calls first (its first goes out alone, the others queue): the next
      // tick's first call then waits for the others. After a tick of one call it would go out
      // alone, and on the runtime path so could each next one whose predecessor's reply was
      // already back.
      await Promise.all([svc.ping(), svc.ping(), svc.ping(), svc.ping()]);
      const sets = keys.map((k) => svc.set(k, 'x'));
      // Still in the same tick: the first chunk (8 calls) is on the server, the rest is not.
      // (Only on the JS-thread connection, whose replies are read on this thread: on the runtime
      // path, APP_REDIS_NO_UV, a call goes out at once whenever nothing is outstanding, so how
      // many are out before the tick ends depends on how fast the replies come back.)
      const early = Number(own.cli('EXISTS', ...keys));
      if (!process.env.APP_REDIS_NO_UV) {
        expect(early).toBeGreaterThanOrEqual(8);
        expect(early).toBeLessThan(16);
      }
      await Promise.all(sets);
      expect(Number(own.cli('EXISTS', ...keys))).toBe(16);
    } finally {
      await svc.disconnect();
      await own.stop();
    }
  });

  test('ping is ordered after earlier writes', async () => {
    const w = redis.set('ord:p', 'x');
    const p = redis.ping();
    expect(await p).toBe('PONG');
    expect(await w).toBe('OK');
  });
});

describe('concurrency', () => {
  test('many commands in flight resolve with their own replies', async () => {
    const n = 2000;
    await Promise.all(Array.from({ length: n }, (_, i) => redis.set(`c:${i}`, `v${i}`)));
    const got = await Promise.all(Array.from({ length: n }, (_, i) => redis.get(`c:${i}`)));
    got.forEach((v, i) => expect(v).toBe(`v${i}`));
  });
});
