'use strict';
// Distributed locks and semaphores against a real redis-server: single-client behaviour,
// withLock's callback contract, lease renewal and loss, fencing, several processes contending,
// a holder killed with SIGKILL, scripts flushed, and Redis down (fail closed / lockFailOpen).
const { spawn } = require('node:child_process');
const { RedisService } = require('..');
const { suiteServer, startRedis, sleep } = require('./helpers/redis-server');
const { isError } = require('./helpers/assert');
const { runWorker: worker, runChild, WORKER } = require('./helpers/spawn');


let srv;
let redis;
let other;
beforeAll(async () => {
  srv = await suiteServer();
  redis = await RedisService.connect({ ...srv.options, logger: false });
  other = await RedisService.connect({ ...srv.options, logger: false });
});
afterEach(async () => { await redis.call('FLUSHDB'); });
afterAll(async () => {
  await redis.disconnect();
  await other.disconnect();
  await srv.stop();
});

describe('acquire / release / extend', () => {
  test('a second acquire gets null; only the holder can release or extend', async () => {
    const token = await redis.acquireLock('process:123', 300);
    expect(typeof token).toBe('string');
    expect(token).toMatch(/^[0-9a-f-]{36}$/);
    expect(await other.acquireLock('process:123', 300)).toBeNull();
    expect(await redis.isLocked('process:123')).toBe(true);
    const ttl = await redis.getLockTtl('process:123');
    expect(ttl).toBeGreaterThan(295_000);
    expect(ttl).toBeLessThanOrEqual(300_000);
    expect(await redis.getLockTTL('process:123')).toBeGreaterThan(295_000);

    expect(await other.releaseLock('process:123', 'not-the-token')).toBe(false);
    expect(await other.extendLock('process:123', 'not-the-token', 600)).toBe(false);
    expect(await redis.isLocked('process:123')).toBe(true);

    expect(await redis.extendLock('process:123', token, { ttlMs: 900_000 })).toBe(true);
    expect(await redis.getLockTtl('process:123')).toBeGreaterThan(890_000);
    expect(await redis.releaseLock('process:123', token)).toBe(true);
    expect(await redis.releaseLock('process:123', token)).toBe(false);
    expect(await redis.isLocked('process:123')).toBe(false);
    expect(await redis.getLockTtl('process:123')).toBeNull();
  });

  test('the lock expires after its TTL, and the old token cannot release the new holder', async () => {
    const old = await redis.acquireLock('k', { ttlMs: 150 });
    await sleep(250);
    const fresh = await other.acquireLock('k', { ttlSeconds: 10 });
    expect(fresh).not.toBeNull();
    expect(await redis.releaseLock('k', old)).toBe(false);
    expect(await redis.isLocked('k')).toBe(true);
  });

  test('a caller-supplied token is used as is (seed 000)', async () => {
    const lockValue = `worker-1-${Date.now()}`;
    expect(await redis.acquireLock('lock:resource:1', { token: lockValue, ttlMs: 30000 })).toBe(lockValue);
    expect(await redis.releaseLock('lock:resource:1', lockValue)).toBe(true);
  });

  test('waitMs retries until the lock frees, a release in this process wakes a waiter at once', async () => {
    const t = await redis.acquireLock('w', 10);
    const start = Date.now();
    const waiting = other.acquireLock('w', { ttlSeconds: 10, waitMs: 3000, retryDelayMs: 1000 });
    await sleep(100);
    await other.releaseLock('w', t);
    const got = await waiting;
    expect(got).not.toBeNull();
    // Woken by the release (same service), not by its 1 s retry timer.
    expect(Date.now() - start).toBeLessThan(900);
  });

  test('a release by another service (another process) hands the lock over at once, not at the retry timer', async () => {
    let releasedAt = 0;
    const holding = redis.withLock('handover', async () => { await sleep(300); releasedAt = Date.now(); }, { ttlSeconds: 10 });
    await sleep(50);
    // Retries 2.5 to 7.5 s apart: only the release's notice can hand the lock over in time.
    const startedAt = await other.withLock('handover', () => Date.now(), { ttlSeconds: 10, waitMs: 10000, retryDelayMs: 5000 });
    await holding;
    expect(startedAt - releasedAt).toBeLessThan(500);
    const sem = await redis.acquireSemaphore('handover-sem', 1, 10);
    const waiting = other.acquireSemaphore('handover-sem', 1, { ttlSeconds: 10, waitMs: 10000, retryDelayMs: 5000 });
    await sleep(200);
    const freedAt = Date.now();
    await redis.releaseSemaphore('handover-sem', sem);
    expect(await waiting).not.toBeNull();
    expect(Date.now() - freedAt).toBeLessThan(500);
  });

  test('waitMs gives up with null; withLock rejects with ERR_LOCK_NOT_ACQUIRED carrying the key', async () => {
    await redis.acquireLock('busy', 10);
    const start = Date.now();
    expect(await other.acquireLock('busy', { ttlSeconds: 1, waitMs: 300 })).toBeNull();
    expect(Date.now() - start).toBeGreaterThanOrEqual(290);
    let ran = false;
    const err = await other.withLock('busy', () => { ran = true; }, { waitMs: 200 }).catch((e) => e);
    expect(ran).toBe(false);
    expect(isError(err)).toBe(true);
    expect(err.code).toBe('ERR_LOCK_NOT_ACQUIRED');
    expect(err.key).toBe('busy');
    expect(err.message).toContain('busy');
  });

  test('keys live under lock:{key} with the key prefix, fencing counter in the same slot', async () => {
    const p = await RedisService.connect({ ...srv.options, keyPrefix: 'app:', logger: false });
    const t = await p.acquireLock('order:1', 10);
    // acquireLock hands out no fencing token, so it draws none from the counter
    expect(await redis.call('KEYS', '*')).toEqual(['app:lock:{order:1}']);
    expect(await p.releaseLock('order:1', t)).toBe(true);
    const a = await p.acquireLockWithFencing('order:1', 10);
    const keys = (await redis.call('KEYS', '*')).sort();
    expect(keys).toEqual(['app:lock:{order:1}', 'app:lock:{order:1}:fence']);
    await p.releaseLock('order:1', a.token);
    // fencing tokens still increase strictly, whatever plain acquisitions happen in between
    const t2 = await p.acquireLock('order:1', 10);
    await p.releaseLock('order:1', t2);
    const b = await p.acquireLockWithFencing('order:1', 10);
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);
    await p.disconnect();
  });

  test('scripts are reloaded after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const t = await redis.acquireLock('s', 10);
    await redis.call('SCRIPT', 'FLUSH');
    expect(await redis.releaseLock('s', t)).toBe(true);
    await redis.call('SCRIPT', 'FLUSH');
    expect(await redis.withLock('s', () => 'ok')).toBe('ok');
  });
});

describe('withLock callback contract', () => {
  test('resolves what fn returns: a promise, a plain value, a thenable', async () => {
    expect(await redis.withLock('c', async () => { await sleep(5); return { n: 1 }; })).toEqual({ n: 1 });
    expect(await redis.withLock('c', () => 7)).toBe(7);
    expect(await redis.withLock('c', () => undefined)).toBeUndefined();
    expect(await redis.withLock('c', () => ({ then: (ok) => ok('thenable') }))).toBe('thenable');
    expect(await redis.isLocked('c')).toBe(false);
  });

  test('a synchronous throw and a rejection reach the caller as the very same error object', async () => {
    class MyError extends Error {}
    const e1 = new MyError('sync');
    const got1 = await redis.withLock('c', () => { throw e1; }).catch((e) => e);
    expect(got1).toBe(e1);
    expect(got1.stack).toBe(e1.stack);
    const e2 = new MyError('async');
    const got2 = await redis.withLock('c', async () => { await sleep(1); throw e2; }).catch((e) => e);
    expect(got2).toBe(e2);
    expect(got2).toBeInstanceOf(MyError);
    // Released on both paths.
    expect(await redis.isLocked('c')).toBe(false);
    const notAnError = await redis.withLock('c', () => Promise.reject('plain string')).catch((e) => e);
    expect(notAnError).toBe('plain string');
  });

  test('fn receives the token, a fencing token and a live signal; others are excluded meanwhile', async () => {
    const seen = await redis.withLock('ctx', async (ctx) => {
      expect(await other.acquireLock('ctx', 10)).toBeNull();
      expect(await other.releaseLock('ctx', 'x')).toBe(false);
      return { ...ctx, stored: await redis.call('GET', 'lock:{ctx}'), aborted: ctx.signal.aborted };
    });
    expect(seen.stored).toBe(seen.token);
    expect(typeof seen.fencingToken).toBe('number');
    expect(seen.aborted).toBe(false);
    expect(seen.degraded).toBe(false);
  });

  test('fencing tokens strictly increase with every acquisition', async () => {
    const fences = [];
    for (let i = 0; i < 5; i++) fences.push(await redis.withLock('f', ({ fencingToken }) => fencingToken));
    const a = await redis.acquireLockWithFencing('f', 10);
    fences.push(a.fencingToken);
    await redis.releaseLock('f', a.token);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]);
    expect(await redis.acquireLockWithFencing('f', 10)).toMatchObject({ fencingToken: fences[fences.length - 1] + 1 });
    expect(await other.acquireLockWithFencing('f', 10)).toBeNull();
  });
});

describe('lease renewal and loss', () => {
  test('auto-extension keeps a 1-second lease through a 3-second fn', async () => {
    const result = await redis.withLock('long', async ({ signal }) => {
      for (let i = 0; i < 6; i++) {
        await sleep(500);
        expect(await other.acquireLock('long', 10)).toBeNull();
      }
      return signal.aborted;
    }, { ttlMs: 1000 });
    expect(result).toBe(false);
    expect(await redis.isLocked('long')).toBe(false);
  });

  test('the lease survives a blocked event loop (renewed from Rust)', async () => {
    const out = await redis.withLock('blocked', async () => {
      const until = Date.now() + 1500;
      while (Date.now() < until) { /* block the JS thread for 3 TTLs */ }
      return other.acquireLock('blocked', 10);
    }, { ttlMs: 500 });
    expect(out).toBeNull();
  });

  test('signal aborts when the key is deleted mid-fn, and the call rejects with ERR_LOCK_LOST', async () => {
    const err = await redis.withLock('lost', async ({ signal }) => {
      await other.del('lock:{lost}');
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      expect(signal.reason.code).toBe('ERR_LOCK_LOST');
      return 'finished anyway';
    }, { ttlMs: 600 }).catch((e) => e);
    expect(isError(err)).toBe(true);
    expect(err.code).toBe('ERR_LOCK_LOST');
    expect(err.key).toBe('lost');
  });

  test('a signal first read after the loss is already aborted (it is made on first read)', async () => {
    const err = await redis.withLock('lost-late', async (ctx) => {
      expect(Object.keys(ctx).sort()).toEqual(['degraded', 'fencingToken', 'token']);
      await other.del('lock:{lost-late}');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const { signal } = ctx;
      expect(signal.aborted).toBe(true);
      expect(signal.reason.code).toBe('ERR_LOCK_LOST');
      expect(ctx.signal).toBe(signal);
    }, { ttlMs: 300 }).catch((e) => e);
    expect(err.code).toBe('ERR_LOCK_LOST');
  });

  test('signal aborts when another holder takes the key; the thief keeps it', async () => {
    let abortedAt = 0;
    const stolenAt = Date.now();
    const err = await redis.withLock('stolen', async ({ signal }) => {
      await other.set('lock:{stolen}', 'thief', { PX: 10000 });
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
      abortedAt = Date.now();
      throw new Error('stopped');
    }, { ttlMs: 600 }).catch((e) => e);
    expect(err.code).toBe('ERR_LOCK_LOST');
    expect(err.cause.message).toBe('stopped');
    // Noticed at the next renewal (a third of the TTL), not at the end of fn.
    expect(abortedAt - stolenAt).toBeLessThan(600);
    expect(await other.get('lock:{stolen}')).toBe('thief');
  });

  test('without autoExtend a fn that outlives its TTL gets ERR_LOCK_LOST', async () => {
    const err = await redis.withLock('short', () => sleep(400), { ttlMs: 150, autoExtend: false }).catch((e) => e);
    expect(err.code).toBe('ERR_LOCK_LOST');
  });

  test('maxHoldMs stops the renewal: the lease then expires and signal aborts', async () => {
    const start = Date.now();
    const err = await redis.withLock('bounded', ({ signal }) => new Promise((resolve) => {
      signal.addEventListener('abort', () => resolve(Date.now() - start));
    }), { ttlMs: 300, maxHoldMs: 500 }).catch((e) => e);
    expect(err.code).toBe('ERR_LOCK_LOST');
    expect(err.message).toContain('maxHoldMs');
    expect(Date.now() - start).toBeGreaterThanOrEqual(500);
    expect(Date.now() - start).toBeLessThan(1500);
  });
});

describe('several processes', () => {
  test('4 processes x 250 withLock sections on one key: exact count, no overlap, fences increase', async () => {
    const runs = await Promise.all([0, 1, 2, 3].map(() => worker({ mode: 'mutex', conn: srv.options, key: 'shared', sections: 250 })));
    expect(runs.map((r) => r.done)).toEqual([250, 250, 250, 250]);
    expect(runs.reduce((n, r) => n + r.violations, 0)).toBe(0);
    expect(Number(await redis.get('counter'))).toBe(1000);
    const fences = runs.flatMap((r) => r.fences);
    expect(new Set(fences).size).toBe(1000);
    for (const r of runs) for (let i = 1; i < r.fences.length; i++) expect(r.fences[i]).toBeGreaterThan(r.fences[i - 1]);
  }, 120000);

  test('a semaphore never exceeds its limit across processes', async () => {
    const runs = await Promise.all([0, 1, 2, 3].map(() => worker({ mode: 'semaphore', conn: srv.options, key: 'pool', limit: 3, sections: 60 })));
    expect(runs.reduce((n, r) => n + r.violations, 0)).toBe(0);
    expect(Math.max(...runs.map((r) => r.max))).toBeLessThanOrEqual(3);
    expect(Math.max(...runs.map((r) => r.max))).toBeGreaterThan(1);
    expect(runs.map((r) => r.done)).toEqual([60, 60, 60, 60]);
  }, 120000);

  test('a holder killed with SIGKILL: the lock frees itself after its TTL, not before', async () => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify({ mode: 'hold', conn: srv.options, key: 'crash', ttlMs: 1500 })], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const heldAt = Date.now();
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
    expect(await redis.acquireLock('crash', 10)).toBeNull();
    const token = await redis.acquireLock('crash', { ttlSeconds: 10, waitMs: 5000, retryDelayMs: 20 });
    expect(token).not.toBeNull();
    expect(Date.now() - heldAt).toBeGreaterThanOrEqual(1300);
  }, 20000);
});

describe('process lifetime', () => {
  test('a callback that never settles is bounded by maxHoldMs: the lease expires and the process exits', async () => {
    const r = await runChild(`
      const { RedisService } = require('.');
      (async () => {
        const redis = await RedisService.connect({ ...JSON.parse(process.env.CONN), logger: false });
        redis.withLock('never', ({ signal }) => {
          signal.addEventListener('abort', () => console.log('aborted', signal.reason.code));
          return new Promise(() => {});
        }, { ttlMs: 300, maxHoldMs: 600 });
      })();`, { CONN: JSON.stringify(srv.options) });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('aborted ERR_LOCK_LOST');
    expect(await redis.isLocked('never')).toBe(false);
  }, 15000);

  test('a finished withLock leaves nothing that keeps the process alive', async () => {
    const r = await runChild(`
      const { RedisService } = require('.');
      (async () => {
        const redis = await RedisService.connect({ ...JSON.parse(process.env.CONN), logger: false });
        console.log(await redis.withLock('done', () => 'ok', 5));
      })();`, { CONN: JSON.stringify(srv.options) });
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('ok');
    expect(r.ms).toBeLessThan(3000);
  }, 15000);
});

describe('semaphores', () => {
  test('limit holders at once; release frees a slot; a crashed holder frees after its TTL', async () => {
    const a = await redis.acquireSemaphore('sem', 2, { ttlMs: 300 });
    const b = await redis.acquireSemaphore('sem', 2, 10);
    expect(a).not.toBeNull();
    expect(b).not.toBeNull();
    expect(await other.acquireSemaphore('sem', 2, 10)).toBeNull();
    expect(await redis.releaseSemaphore('sem', b)).toBe(true);
    expect(await redis.releaseSemaphore('sem', b)).toBe(false);
    const c = await other.acquireSemaphore('sem', 2, 10);
    expect(c).not.toBeNull();
    expect(await other.acquireSemaphore('sem', 2, 10)).toBeNull();
    // `a` is never released: its slot frees itself after 300 ms.
    await sleep(400);
    expect(await redis.extendSemaphore('sem', a, 10)).toBe(false);
    expect(await other.acquireSemaphore('sem', 2, 10)).not.toBeNull();
    expect(await redis.extendSemaphore('sem', c, { ttlMs: 5000 })).toBe(true);
  });

  test('withSemaphore runs at most limit callbacks at once and returns their values', async () => {
    let inside = 0;
    let max = 0;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => redis.withSemaphore('par', 3, async ({ token, fencingToken }) => {
      inside++;
      max = Math.max(max, inside);
      expect(typeof token).toBe('string');
      expect(fencingToken).toBeNull();
      await sleep(30);
      inside--;
      return i;
    }, { ttlSeconds: 5, waitMs: 5000, retryDelayMs: 10 })));
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(max).toBe(3);
    expect(await redis.call('ZCARD', 'sem:{par}')).toBe(0);
  });
});

describe('Redis down', () => {
  let server;
  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server.stop(); });

  test('locks fail closed by default: ERR_CONNECTION, fn never runs', async () => {
    const r = await RedisService.connect({ url: server.url, logger: false, reconnectMinDelayMs: 5000, reconnectMaxDelayMs: 5000 });
    const other2 = await RedisService.connect({ url: server.url, logger: false });
    await other2.call('CLIENT', 'KILL', 'TYPE', 'normal');
    await sleep(100);
    let ran = false;
    const start = Date.now();
    await expect(r.withLock('x', () => { ran = true; })).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    await expect(r.acquireLock('x', 5)).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    await expect(r.releaseLock('x', 't')).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    expect(Date.now() - start).toBeLessThan(500);
    expect(ran).toBe(false);
    await r.disconnect();
    await other2.disconnect();
  });

  test('lockFailOpen runs fn degraded, with one warning per outage', async () => {
    const warnings = [];
    const logger = { log() {}, warn: (m) => warnings.push(m), error() {} };
    const dead = new RedisService({ url: 'redis://127.0.0.1:1', lockFailOpen: true, failOpen: true, logger, connectTimeoutMs: 200 });
    await dead.connect();
    const ctx = await dead.withLock('x', (c) => c);
    expect(ctx).toMatchObject({ degraded: true, token: null, fencingToken: null });
    expect(typeof (await dead.acquireLock('x', 5))).toBe('string');
    expect(await dead.releaseLock('x', 'anything')).toBe(true);
    expect(await dead.isLocked('x')).toBe(false);
    expect(await dead.withSemaphore('s', 1, () => 'ran')).toBe('ran');
    const lockWarnings = warnings.filter((w) => w.includes('lockFailOpen'));
    expect(lockWarnings).toHaveLength(1);
    expect(lockWarnings[0]).toContain('WITHOUT mutual exclusion');
    await dead.disconnect();
  });

  test('a disabled service refuses locks (ERR_DISABLED) unless lockFailOpen', async () => {
    const off = new RedisService({ enabled: false, logger: false });
    await expect(off.withLock('x', () => 1)).rejects.toMatchObject({ code: 'ERR_DISABLED' });
    await expect(off.acquireLock('x', 1)).rejects.toMatchObject({ code: 'ERR_DISABLED' });
    const open = new RedisService({ enabled: false, lockFailOpen: true, logger: false });
    expect(await open.withLock('x', ({ degraded }) => degraded)).toBe(true);
  });

  test('the lease is reported lost when Redis stays unreachable past its TTL', async () => {
    const s = await startRedis();
    const r = await RedisService.connect({ url: s.url, logger: false, commandTimeoutMs: 300 });
    const err = await r.withLock('k', async ({ signal }) => {
      await s.kill('SIGSTOP');
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
    }, { ttlMs: 600 }).catch((e) => e);
    await s.kill('SIGCONT');
    expect(err.code).toBe('ERR_LOCK_LOST');
    expect(err.message).toContain('could not be reached');
    await r.disconnect();
    await s.stop();
  }, 15000);
});

describe('bad input', () => {
  test.each([
    [() => redis.withLock('k', 'not a function'), /withLock\(\): argument `fn` must be a function, got a string/],
    [() => redis.withLock(undefined, () => 1), /withLock\(\): argument `key`/],
    [() => redis.acquireLock('k', -1), /acquireLock\(\): argument `ttl` must be a positive number/],
    [() => redis.acquireLock('k', Number.NaN), /argument `ttl`/],
    [() => redis.acquireLock('k', 'ten'), /argument `ttl` must be a number of seconds or an options object/],
    [() => redis.acquireLock('k', { ttl: 5 }), /unknown option `ttl.ttl`/],
    [() => redis.acquireLock('k', { ttlMs: 5, ttlSeconds: 5 }), /not both/],
    [() => redis.acquireLock('k', { token: '' }), /`ttl.token` must be a non-empty string/],
    [() => redis.withLock('k', () => 1, { autoExtend: 'yes' }), /`ttl.autoExtend` must be a boolean/],
    [() => redis.releaseLock('test:lock'), /releaseLock\(\): argument `token` must be a string, got undefined/],
    [() => redis.acquireSemaphore('k', 0, 5), /argument `limit` must be a positive integer/],
    [() => redis.withSemaphore('k', 2, null), /argument `fn` must be a function/],
  ])('%#: rejects with ERR_INVALID_ARGUMENT naming the argument', async (call, message) => {
    const err = await call().catch((e) => e);
    expect(isError(err)).toBe(true);
    expect(err.code).toBe('ERR_INVALID_ARGUMENT');
    expect(err.name).toBe('TypeError');
    expect(err.message).toMatch(message);
    expect(await redis.call('KEYS', '*')).toEqual([]);
  });
});

describe('seed samples', () => {
  test('seed 001: DistributedLock.withLock(resource, operation, ttlSeconds)', async () => {
    const database = { user: { id: '123', balance: 0 }, async getUser() { return { ...this.user }; }, async saveUser(u) { this.user = u; } };
    const result = await redis.withLock('user:123:update', async () => {
      const user = await database.getUser('123');
      user.balance += 100;
      await database.saveUser(user);
      return user;
    }, 30);
    expect(result.balance).toBe(100);
  });

  test('seed 004: manual and automatic lock management', async () => {
    const DistributedLockService = redis;
    const lockToken = await DistributedLockService.acquireLock('process:123', 300);
    expect(lockToken).toBeTruthy();
    try {
      expect(await DistributedLockService.isLocked('process:123')).toBe(true);
      expect(await DistributedLockService.getLockTTL('process:123')).toBeGreaterThan(299_000);
      expect(await DistributedLockService.extendLock('process:123', lockToken, 300)).toBe(true);
    } finally {
      await DistributedLockService.releaseLock('process:123', lockToken);
    }
    let ran = false;
    await DistributedLockService.withLock('process:123', async () => { ran = true; }, 300);
    expect(ran).toBe(true);
    expect(await DistributedLockService.isLocked('process:123')).toBe(false);
  });
});
