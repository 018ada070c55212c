// The package under Bun (`bun test`, run by scripts/test-bun.js against a redis-server it
// starts): Bun exports libuv's functions as stubs that abort, so every command must take the
// runtime path, chosen before any libuv call; everything else works as under Node. The subset
// for Bun: commands and pipelines, locks with callbacks and semaphores, rate limits, sessions,
// the cache, pub/sub, the NestJS module and testing module, the process exiting by itself, and
// the crash scenarios.
import { test, expect, beforeAll, afterAll } from 'bun:test';

const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { RedisService } = require('../..');

const url = process.env.REDIS_URL;
let redis;
beforeAll(async () => {
  redis = await RedisService.connect({ url, logger: false, clientName: 'bun-suite' });
});
afterAll(() => redis.disconnect());

test('connects on the runtime path: one connection, no JS-thread one', async () => {
  const list = await redis.call('CLIENT', 'LIST');
  expect(list.split('\n').filter((l) => l.includes(' name=bun-suite ')).length).toBe(1);
});

test('commands, binary values and pipelines', async () => {
  await redis.set('bun:s', 'v');
  expect(await redis.get('bun:s')).toBe('v');
  await redis.set('bun:b', Buffer.from([0, 255, 1]));
  expect([...(await redis.getBuffer('bun:b'))]).toEqual([0, 255, 1]);
  await redis.hSet('bun:h', { a: '1', b: '2' });
  expect(await redis.hGetAll('bun:h')).toEqual({ a: '1', b: '2' });
  expect(await redis.mget('bun:s', 'bun:missing')).toEqual(['v', null]);
  const res = await redis.pipeline().incr('bun:n').incr('bun:n').get('bun:s').exec();
  expect(res.map(([, v]) => v).slice(1)).toEqual([(res[0][1] + 1), 'v']);
  const many = await Promise.all(Array.from({ length: 500 }, (_, i) => redis.set(`bun:m:${i}`, String(i)).then(() => redis.get(`bun:m:${i}`))));
  expect(many).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
  await expect(redis.set('bun:s', 'v', { EX: -5 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
});

test('withLock runs async callbacks one at a time; semaphores; a throwing callback releases', async () => {
  let inside = 0;
  let overlaps = 0;
  const section = async () => {
    inside++;
    if (inside > 1) overlaps++;
    await new Promise((r) => setTimeout(r, 2));
    inside--;
  };
  await Promise.all(Array.from({ length: 8 }, () => redis.withLock('bun:lock', section, { ttlMs: 5000, waitMs: 10000 })));
  expect(overlaps).toBe(0);
  await expect(redis.withLock('bun:lock', () => { throw new Error('boom'); })).rejects.toThrow('boom');
  expect(await redis.isLocked('bun:lock')).toBe(false);
  const peak = { now: 0, max: 0 };
  await Promise.all(Array.from({ length: 6 }, () => redis.withSemaphore('bun:sem', 2, async () => {
    peak.now++;
    peak.max = Math.max(peak.max, peak.now);
    await new Promise((r) => setTimeout(r, 5));
    peak.now--;
  }, { ttlMs: 5000, waitMs: 10000 })));
  expect(peak.max).toBe(2);
});

test('rate limits, sessions, the cache', async () => {
  let allowed = 0;
  for (let i = 0; i < 7; i++) if ((await redis.rateLimit(`bun:rl:${process.pid}`, { limit: 5, windowMs: 60000 })).allowed) allowed++;
  expect(allowed).toBe(5);
  const sid = await redis.createSession('u1', { role: 'admin' }, 60);
  expect(await redis.getSession(sid)).toMatchObject({ userId: 'u1', role: 'admin' });
  await redis.deleteSession(sid);
  expect(await redis.getSession(sid)).toBeNull();
  let loads = 0;
  const load = async () => { loads++; return { at: 1 }; };
  const key = `bun:wrap:${process.pid}`;
  const got = await Promise.all(Array.from({ length: 10 }, () => redis.wrap(key, 60, load)));
  expect(got.every((g) => g.at === 1)).toBe(true);
  expect(loads).toBe(1);
});

test('pub/sub', async () => {
  const got = [];
  const sub = await redis.subscribe('bun:ch', (m) => got.push(m));
  for (let i = 0; i < 50 && got.length === 0; i++) {
    await redis.publish('bun:ch', 'hello');
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(got[0]).toBe('hello');
  await sub.unsubscribe();
});

/** Runs `file` with this Bun; resolves its exit code, signal and output. */
function bun(args, env = {}) {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120000 });
  return { code: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

/** A NestJS scenario of the jest suite (__test__/helpers/nest-scenarios.js), run by this Bun. */
function nest(name) {
  const r = bun([path.join(__dirname, '..', 'helpers', 'nest-scenarios.js'), name, url]);
  expect(r.code).toBe(0);
  return JSON.parse(r.out.trim().split('\n').pop());
}

test('NestJS 12: RedisModule (injection, named connections, health, app.close()) and RedisTestingModule', () => {
  const m = nest('module');
  expect(m).toMatchObject({ sameInstance: true, isService: true, tokenIsClass: true, namedDiffers: true, values: ['default', 'named'] });
  // One connection per service on the runtime path, all closed by app.close().
  expect(m.openBefore).toEqual([1, 1]);
  expect(m.openAfter).toEqual([0, 0]);
  expect(m.health.redis.status).toBe('up');
  const t = nest('testingModule');
  expect(t).toMatchObject({ runs: [1, 2], stored: '2', connectedAfter: false, keysAfter: [] });
}, 60000);

test('a script that connects and never disconnects exits by itself', () => {
  const code = `
    const { RedisService } = require(${JSON.stringify(path.join(__dirname, '..', '..'))});
    RedisService.connect({ url: process.env.REDIS_URL, logger: false })
      .then(async (r) => { await r.set('bun:exit', '1'); console.log('done'); });`;
  const r = bun(['-e', code]);
  expect(r.signal).toBeNull();
  expect(r.code).toBe(0);
  expect(r.out).toContain('done');
});

// The crash scenarios of faults/crash/ (huge-replies, 512 MiB values, runs under Node only: it
// takes a minute and a gigabyte each time, and its decoding path is the runtime path's, which
// the Node runs cover with APP_REDIS_NO_UV=1).
for (const scenario of ['getters', 'sparse', 'globals', 'workers', 'double-load']) {
  test(`crash scenario ${scenario}: the process exits 0 by itself`, () => {
    const r = bun([path.join(__dirname, '..', '..', 'faults', 'crash', `${scenario}.js`)]);
    expect(r.signal).toBeNull();
    expect(r.out).toContain(`ok ${scenario}`);
    expect(r.code).toBe(0);
  }, 130000);
}
