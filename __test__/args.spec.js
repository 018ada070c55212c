'use strict';
// Bad input: refused with ERR_INVALID_ARGUMENT (a TypeError) naming the argument, nothing sent.
const { RedisService } = require('..');
const { startRedis } = require('./helpers/redis-server');

let server;
let redis;

/** Calls of every command except INFO/CONFIG, as counted by the server. */
function commandsProcessed() {
  const stats = server.cli('INFO', 'commandstats');
  let n = 0;
  for (const line of stats.split('\n')) {
    const m = /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line.trim());
    if (m && !['info', 'config', 'hello', 'client|setinfo', 'select'].includes(m[1])) n += Number(m[2]);
  }
  return n;
}

beforeAll(async () => {
  server = await startRedis();
  redis = await RedisService.connect({ url: server.url, logger: false });
});
afterAll(async () => {
  await redis.disconnect();
  await server.stop();
});

const badKeys = [undefined, null, '', {}, [], () => 1, Symbol('s'), true, NaN, Infinity, Buffer.alloc(0)];
const badTtls = [undefined, null, NaN, -1, 0, 1.5, Infinity, '60', {}, 2 ** 60];

async function expectRefused(promiseOrFn, argName) {
  let err;
  try {
    const p = typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn;
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeDefined();
  expect(err.code).toBe('ERR_INVALID_ARGUMENT');
  expect(err.name).toBe('TypeError');
  expect(err.message).toContain(argName);
  return err;
}

test('bad keys are refused for every key-taking command, and nothing reaches Redis', async () => {
  const before = commandsProcessed();
  const keyMethods = ['get', 'getBuffer', 'getdel', 'incr', 'decr', 'strlen', 'ttl', 'pttl', 'persist', 'type',
    'hGetAll', 'hKeys', 'hVals', 'hLen', 'lLen', 'sMembers', 'sCard', 'zCard', 'getJson'];
  for (const m of keyMethods) {
    for (const k of badKeys) {
      const err = await expectRefused(() => redis[m](k), 'key');
      expect(err.message).toContain(`${m}()`);
    }
  }
  for (const k of badKeys) {
    await expectRefused(() => redis.set(k, 'v'), '`key`');
    // `[]` is no key at all, which `del` answers (0: see "Empty collections" in commands.spec).
    if (!Array.isArray(k)) await expectRefused(() => redis.del(k), 'keys');
    await expectRefused(() => redis.hSet(k, 'f', 'v'), '`key`');
  }
  await expectRefused(() => redis.del('ok', undefined), 'keys[1]');
  await expectRefused(() => redis.mget(['a', null]), 'keys[1]');
  await expectRefused(() => redis.del(['a', [null]]), 'keys[1]');
  expect(commandsProcessed()).toBe(before);
  const keys = server.cli('KEYS', '*');
  expect(keys).toBe('');
});

test('bad values are refused: undefined, null, objects, booleans, symbols, NaN, Infinity', async () => {
  const before = commandsProcessed();
  for (const v of [undefined, null, {}, [1], true, Symbol('x'), NaN, -Infinity, () => 1]) {
    await expectRefused(() => redis.set('k', v), '`value`');
    if (!Array.isArray(v)) {
      await expectRefused(() => redis.lPush('k', v), 'elements');
      await expectRefused(() => redis.sAdd('k', v), 'members');
    }
    await expectRefused(() => redis.hSet('k', 'f', v), '`value`');
  }
  await expectRefused(() => redis.hSet('k', { a: 1, b: undefined }), 'object.b');
  await expectRefused(() => redis.mset({ a: '1', b: null }), 'entries.b');
  await expectRefused(() => redis.zAdd('z', [{ score: NaN, value: 'm' }]), 'members[0].score');
  await expectRefused(() => redis.zAdd('z', [{ score: 1 }]), 'members[0].value');
  await expectRefused(() => redis.lPush('k', ['ok', undefined]), 'elements[1]');
  expect(commandsProcessed()).toBe(before);
});

test('bad TTLs and counts are refused', async () => {
  const before = commandsProcessed();
  for (const t of badTtls) {
    await expectRefused(() => redis.setex('k', t, 'v'), 'ttlSeconds');
    await expectRefused(() => redis.expire('k', t), 'ttlSeconds');
    await expectRefused(() => redis.psetex('k', t, 'v'), 'ttlMs');
    if (t !== undefined && t !== null) await expectRefused(() => redis.set('k', 'v', { EX: t }), 'EX');
  }
  await expectRefused(() => redis.set('k', 'v', 'EX', -1), 'EX');
  await expectRefused(() => redis.setJson('k', {}, 0), 'ttlSeconds');
  await expectRefused(() => redis.incrBy('k', 1.5), 'increment');
  await expectRefused(() => redis.incrByFloat('k', NaN), 'increment');
  await expectRefused(() => redis.lRange('k', '0', -1), 'start');
  await expectRefused(() => redis.lPop('k', 0), 'count');
  await expectRefused(() => redis.scan('abc'), 'cursor');
  await expectRefused(() => redis.scan(0, { COUNT: -1 }), 'COUNT');
  await expectRefused(() => redis.zRangeByScore('z', NaN, 1), 'min');
  await expectRefused(() => redis.expireAt('k', new Date('nope')), 'timestamp');
  await expectRefused(() => redis.call('GET K'), 'command');
  await expectRefused(() => redis.call(undefined), 'command');
  expect(commandsProcessed()).toBe(before);
});

test('bad arguments to sync methods throw TypeError with the code', () => {
  expect(() => redis.scanIterator(5)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', name: 'TypeError' }));
  expect(() => redis.scanIterator('*', -1)).toThrow(/count/);
  expect(() => redis.pipeline().set(undefined, 'v')).toThrow(/`key`/);
  expect(() => redis.multi().expire('k', -1)).toThrow(/ttlSeconds/);
});

test('no key named "undefined", "null" or "[object Object]" can ever be written', async () => {
  const attempts = [
    () => redis.set(undefined, 'v'), () => redis.set(null, 'v'), () => redis.set({}, 'v'),
    () => redis.hSet(undefined, 'f', 'v'), () => redis.lPush(null, 'x'), () => redis.incr({}),
    () => redis.setJson(undefined, 1), () => redis.mset({ undefined: undefined }),
  ];
  for (const a of attempts) await a().catch(() => {});
  expect(server.cli('EXISTS', 'undefined', 'null', '[object Object]')).toBe('0');
});

test('the service still works after refusing bad input', async () => {
  expect(await redis.set('fine', 'yes')).toBe('OK');
  expect(await redis.get('fine')).toBe('yes');
});

test('a command method called on something that is not a RedisService throws, whatever the receiver', () => {
  const { get, set } = RedisService.prototype;
  for (const receiver of [undefined, null, {}, redis.pipeline(), Object.create(RedisService.prototype)]) {
    expect(() => get.call(receiver, 'k')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/get\(\): must be called on a RedisService/) }));
    expect(() => set.call(receiver, 'k', 'v')).toThrow(/set\(\): must be called on a RedisService/);
    for (const m of ['rateLimit', 'acquireLock', 'releaseLock', 'extendLock', 'getSession', 'createSession', 'setSession', 'updateSession', 'refreshSession', 'destroySession', 'wrap', 'withLock', 'withSemaphore']) {
      expect(() => RedisService.prototype[m].call(receiver, 'k', 'x')).toThrow(new RegExp(`${m}\\(\\): must be called on a RedisService`));
    }
  }
});

test('a pipeline method called on something that is not a Pipeline throws, whatever the receiver', () => {
  const Pipeline = Object.getPrototypeOf(redis.pipeline()).constructor;
  const { get, set } = Pipeline.prototype;
  for (const receiver of [undefined, null, {}, redis, Object.create(Pipeline.prototype)]) {
    expect(() => get.call(receiver, 'k')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/get\(\): must be called on a Pipeline/) }));
    expect(() => set.call(receiver, 'k', 'v')).toThrow(/set\(\): must be called on a Pipeline/);
  }
  // Borrowed by a real pipeline, the same function queues on it.
  const p = redis.pipeline();
  expect(get.call(p, 'k')).toBe(p);
  expect(p.length).toBe(1);
});

test('every method and getter of every class refuses a wrong receiver with ERR_INVALID_ARGUMENT', async () => {
  const { Pipeline, ScanIterator, Subscription } = require('..');
  const seen = [];
  for (const cls of [RedisService, Pipeline, ScanIterator, Subscription]) {
    const names = Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== 'constructor');
    expect(names.length).toBeGreaterThan(1);
    for (const name of names) {
      const d = Object.getOwnPropertyDescriptor(cls.prototype, name);
      for (const receiver of [undefined, {}, Object.create(cls.prototype)]) {
        let error;
        try {
          const r = d.get ? d.get.call(receiver) : d.value.call(receiver, 'k', 'v');
          if (r && typeof r.then === 'function') await r.catch((e) => { error = e; });
        } catch (e) {
          error = e;
        }
        seen.push([`${cls.name}.${name}`, error && error.code, error && /must be called on a/.test(error.message)]);
      }
    }
  }
  expect(seen.filter(([, code, said]) => code !== 'ERR_INVALID_ARGUMENT' || !said)).toEqual([]);
});

test('calls on many services in turn each reach their own service', async () => {
  // More services than the per-thread memory of recent receivers, called round-robin.
  const services = await Promise.all(Array.from({ length: 7 }, (_, i) => RedisService.connect({ url: server.url, keyPrefix: `svc${i}:`, logger: false })));
  try {
    for (let round = 0; round < 3; round++) {
      await Promise.all(services.map((s, i) => s.set('who', `${i}.${round}`)));
      await Promise.all(services.map((s, i) => s.pipeline().incr('n').exec()));
    }
    const [who, n] = await Promise.all([
      redis.mget(services.map((_, i) => `svc${i}:who`)),
      redis.mget(services.map((_, i) => `svc${i}:n`)),
    ]);
    expect(who).toEqual(services.map((_, i) => `${i}.2`));
    expect(n).toEqual(services.map(() => '3'));
  } finally {
    await Promise.all(services.map((s) => s.disconnect()));
  }
});

test('missing and extra arguments of a command method', async () => {
  await expect(redis.get()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/`key`/) });
  expect(await redis.set('extra', 'v')).toBe('OK');
  expect(await redis.get('extra', 'ignored', 1, 2, 3, 4, 5)).toBe('v');
  expect(await redis.incr('n', 'ignored', 1, 2, 3, 4, 5)).toBe(1);
});
