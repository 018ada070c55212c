'use strict';
// The near cache (`clientCache`) against a Redis Cluster (runs under `npm run test:cluster`):
// reads go out on the JS-thread connection to their key's master (one per master, each tracking
// what it read), so each master's invalidations arrive in order with its replies; what goes
// through the crate's shared connection (multi-slot commands, transactions, redirects) forgets
// the keys it touched before its reply settles; a slot move or a lost connection flushes.
// Without those connections (Bun, Deno, APP_REDIS_NO_UV=1) the option is refused with the reason.
const { spawnSync } = require('node:child_process');
const { RedisService } = require('../..');
const { RedisCluster, sleep } = require('../helpers/redis-server');
const { until } = require('../helpers/assert');
const { readersNeverGoBackwards } = require('../helpers/near-cache');

let cluster;
beforeAll(async () => {
  cluster = await new RedisCluster().start();
}, 60000);
afterAll(async () => {
  await cluster.stop();
});
afterEach(() => cluster.eachMaster('FLUSHALL'));

function cached(extra = {}) {
  return RedisService.connect({ ...cluster.options, logger: false, clientCache: true, ...extra });
}

/** How many times `key`'s master ran `cmd`. */
function calls(key, cmd) {
  const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(cluster.cli(cluster.masterFor(key).port, 'INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

/** Keys on each of the three masters. */
const KEYS = ['nc:a', 'nc:b', 'nc:c', 'nc:d', 'nc:e', 'nc:f'];

/** Reads until the cache holds `keys` (the first reads may go out before the slot map is known). */
async function warm(r, keys) {
  expect(await until(async () => {
    await Promise.all(keys.map((k) => r.get(k)));
    const before = r.clientCacheStats().hits;
    await Promise.all(keys.map((k) => r.get(k)));
    return r.clientCacheStats().hits === before + keys.length;
  })).toBe(true);
}

describe('on the JS-thread connections to the masters', () => {
  test('reads on every master are served from memory after their first miss', async () => {
    expect(new Set(KEYS.map((k) => cluster.masterFor(k).port)).size).toBe(3);
    const r = await cached();
    try {
      for (const k of KEYS) cluster.cli(cluster.masterFor(k).port, 'SET', k, `v:${k}`);
      await warm(r, KEYS);
      const before = KEYS.map((k) => calls(k, 'get'));
      for (let i = 0; i < 50; i++) expect(await Promise.all(KEYS.map((k) => r.get(k)))).toEqual(KEYS.map((k) => `v:${k}`));
      expect(KEYS.map((k) => calls(k, 'get'))).toEqual(before);
      // mget across slots is answered from memory key by key.
      expect(await r.mget(KEYS)).toEqual(KEYS.map((k) => `v:${k}`));
      expect(KEYS.map((k) => calls(k, 'mget'))).toEqual(KEYS.map(() => 0));
      // mget of one slot's keys keeps what it read; over several slots it reads but keeps nothing.
      const tagged = ['{t}x', '{t}y'];
      await r.mset([[tagged[0], '1'], [tagged[1], '2'], ['nc:m1', '3'], ['nc:m2', '4']]);
      expect(await until(async () => {
        await r.mget(tagged);
        const h = r.clientCacheStats().hits;
        return (await r.mget(tagged)).join() === '1,2' && r.clientCacheStats().hits === h + 2;
      })).toBe(true);
      const h = r.clientCacheStats().hits;
      expect(await r.mget('nc:m1', 'nc:m2')).toEqual(['3', '4']);
      expect(await r.mget('nc:m1', 'nc:m2')).toEqual(['3', '4']);
      expect(r.clientCacheStats().hits).toBe(h);
    } finally {
      await r.disconnect();
    }
  });

  test('a write by another client on any master drops the entry', async () => {
    const r = await cached();
    try {
      for (const k of KEYS) cluster.cli(cluster.masterFor(k).port, 'SET', k, 'v1');
      await warm(r, KEYS);
      for (const k of KEYS) cluster.cli(cluster.masterFor(k).port, 'SET', k, 'v2');
      expect(await until(async () => (await Promise.all(KEYS.map((k) => r.get(k)))).every((v) => v === 'v2'))).toBe(true);
      expect(r.clientCacheStats().invalidations).toBeGreaterThanOrEqual(KEYS.length);
    } finally {
      await r.disconnect();
    }
  });

  test('its own writes, on either path, are read back at once', async () => {
    const r = await cached();
    try {
      await warm(r, ['nc:a', 'nc:d', '{t}x']);
      for (let i = 0; i < 100; i++) {
        // A single-key write (its master's connection), a multi-slot one (cut per slot, through
        // the crate's connection), a transaction and a pipeline (the crate's connection too).
        await r.set('nc:a', `s${i}`);
        expect(await r.get('nc:a')).toBe(`s${i}`);
        await r.mset([['nc:a', `m${i}`], ['nc:d', `m${i}`]]);
        expect(await r.get('nc:a')).toBe(`m${i}`);
        expect(await r.get('nc:d')).toBe(`m${i}`);
        await r.multi().set('{t}x', `t${i}`).incr('{t}n').exec();
        expect(await r.get('{t}x')).toBe(`t${i}`);
        await r.pipeline().set('nc:d', `p${i}`).set('nc:a', `p${i}`).exec();
        expect(await r.mget('nc:a', 'nc:d')).toEqual([`p${i}`, `p${i}`]);
      }
      expect(r.clientCacheStats().hits).toBeGreaterThan(0);
    } finally {
      await r.disconnect();
    }
  });

  test('an entry is never served after its key expired', async () => {
    const r = await cached();
    const node = cluster.masterFor('nc:ttl').port;
    try {
      cluster.cli(node, 'DEBUG', 'SET-ACTIVE-EXPIRE', '0');
      cluster.cli(node, 'SET', 'nc:ttl', 'short', 'PX', '400');
      await warm(r, ['nc:ttl']);
      await sleep(450);
      expect(await r.get('nc:ttl')).toBeNull();
    } finally {
      cluster.cli(node, 'DEBUG', 'SET-ACTIVE-EXPIRE', '1');
      await r.disconnect();
    }
  });

  test('a lost connection to a master flushes everything before the next read is served', async () => {
    const r = await cached();
    const node = cluster.masterFor('nc:a').port;
    try {
      cluster.cli(node, 'SET', 'nc:a', 'before');
      await warm(r, ['nc:a', 'nc:d']);
      const { flushes } = r.clientCacheStats();
      // Drop this service's connections to that master, then write behind its back.
      cluster.cli(node, 'CLIENT', 'KILL', 'TYPE', 'normal');
      cluster.cli(node, 'SET', 'nc:a', 'after');
      expect(await until(() => r.clientCacheStats().flushes > flushes)).toBe(true);
      expect(await until(async () => {
        try {
          return (await r.get('nc:a')) === 'after';
        } catch {
          return false; // reconnecting
        }
      })).toBe(true);
    } finally {
      await r.disconnect();
    }
  });

  test('a slot moved to another master: the cache flushes and follows the key', async () => {
    const r = await cached();
    const key = '{mv}k';
    try {
      await r.set(key, 'v1');
      await warm(r, [key]);
      const { dst, finish } = cluster.migrateSlotOf(key);
      finish();
      // The old master's MIGRATE invalidated the entry; the next read meets MOVED there, which
      // flushes the cache (what else was read from that slot is no longer tracked).
      const { flushes } = r.clientCacheStats();
      expect(await until(async () => (await r.get(key)) === 'v1' && r.clientCacheStats().flushes > flushes)).toBe(true);
      // Now read (and tracked) on the new master: another client's write there reaches us.
      await warm(r, [key]);
      cluster.cli(dst.port, 'SET', key, 'v2');
      expect(await until(async () => (await r.get(key)) === 'v2')).toBe(true);
    } finally {
      await r.disconnect();
    }
  });

  test('readers never go backwards while another process writes at full speed', async () => {
    const readers = await Promise.all([cached(), cached()]);
    try {
      await readersNeverGoBackwards(readers, { cluster: cluster.options.cluster }, () => cluster.cli(cluster.masterFor('nc:done').port, 'GET', 'nc:done'));
    } finally {
      await Promise.all(readers.map((r) => r.disconnect()));
    }
  });
});

test('without the JS-thread connections the option is refused, with the reason', () => {
  const probe = spawnSync(process.execPath, ['-e', `
    const { RedisService } = require(${JSON.stringify(require.resolve('../..'))});
    try {
      new RedisService({ cluster: ${JSON.stringify(cluster.options.cluster)}, logger: false, clientCache: true });
      console.log('accepted');
    } catch (e) {
      console.log(e.code + ': ' + e.message);
    }
  `], { encoding: 'utf8', env: { ...process.env, APP_REDIS_NO_UV: '1' } });
  expect(probe.stdout).toMatch(/^ERR_INVALID_ARGUMENT: clientCache in cluster mode needs Node\.js's event loop/);
});
