'use strict';
// Redis Cluster specifics (runs under `npm run test:cluster`): multi-key commands split per slot,
// pipelines across slots, transactions refused across slots, scanIterator over every master,
// pub/sub, healthCheck, configuration, and a master failover under a steady stream of writes.
// The ordinary suites run against a cluster too (REDIS_MODE=cluster).
const fs = require('node:fs');
const { RedisService } = require('../..');
const { RedisCluster, sleep } = require('../helpers/redis-server');
const { Certs } = require('../helpers/certs');
const { steadyWriter } = require('../helpers/failover');
const { until } = require('../helpers/assert');

let cluster;
let redis;
beforeAll(async () => {
  cluster = await new RedisCluster().start();
  redis = await RedisService.connect({ ...cluster.options, logger: false });
}, 60000);
afterAll(async () => {
  await redis.disconnect();
  await cluster.stop();
});

/** Keys that land on every master. */
function spreadKeys(n = 30) {
  return Array.from({ length: n }, (_, i) => `spread:${i}`);
}

describe('multi-key commands and pipelines across slots', () => {
  afterEach(() => cluster.eachMaster('FLUSHALL'));

  test('the keys really live on different masters', () => {
    const ports = new Set(spreadKeys().map((k) => cluster.masterFor(k).port));
    expect(ports.size).toBe(3);
  });

  test('mset / mget / exists / del / unlink are split per slot and reassembled in call order', async () => {
    const keys = spreadKeys();
    expect(await redis.mset(keys.map((k, i) => [k, `v${i}`]))).toBe('OK');
    expect(await redis.mget(...keys, 'missing')).toEqual([...keys.map((_, i) => `v${i}`), null]);
    expect(await redis.exists(keys[0], keys[1], keys[2], 'missing', keys[0])).toBe(4);
    expect(await redis.del(keys.slice(0, 10))).toBe(10);
    expect(await redis.unlink(...keys.slice(10, 20), 'missing')).toBe(10);
    expect(await redis.mget(keys[0], keys[15], keys[25])).toEqual([null, null, 'v25']);
  });

  test('a pipeline across slots keeps each reply in its place, errors in place too', async () => {
    const keys = spreadKeys(12);
    const p = redis.pipeline();
    keys.forEach((k, i) => p.set(k, String(i)).incr(k));
    p.lPush(keys[0], 'wrong type').get(keys[11]);
    const r = await p.exec();
    expect(r).toHaveLength(26);
    keys.forEach((_, i) => {
      expect(r[2 * i]).toEqual([null, 'OK']);
      expect(r[2 * i + 1]).toEqual([null, i + 1]);
    });
    expect(r[24][0]).toMatchObject({ code: 'ERR_REPLY', message: expect.stringMatching(/WRONGTYPE/) });
    expect(r[25]).toEqual([null, '12']);
  });

  test('many calls in flight on one key keep their order', async () => {
    const calls = Array.from({ length: 500 }, (_, i) => (i % 50 === 49 ? redis.get('ord') : redis.incr('ord')));
    const r = await Promise.all(calls);
    let n = 0;
    r.forEach((v, i) => {
      if (i % 50 === 49) expect(v).toBe(String(n));
      else expect(v).toBe(++n);
    });
  });

  test('multi() across slots is refused with the rule; within one hash tag it is atomic', async () => {
    await expect(redis.multi().set('a', '1').set('b', '2').exec())
      .rejects.toMatchObject({ code: 'ERR_REPLY', message: expect.stringMatching(/CROSSSLOT.*hash tag/) });
    expect(await redis.exists('a', 'b')).toBe(0);
    expect(await redis.multi().set('{user:1}:a', '1').incr('{user:1}:a').get('{user:1}:a').exec())
      .toEqual([[null, 'OK'], [null, 2], [null, '2']]);
  });

  test('scanIterator walks every master; scan() with a cursor is refused', async () => {
    const keys = spreadKeys(60);
    await redis.mset(keys.map((k) => [k, 'v']));
    const seen = [];
    for await (const k of redis.scanIterator('spread:*', 7)) seen.push(k);
    expect(seen.sort()).toEqual([...keys].sort());
    await expect(redis.scan('0')).rejects.toMatchObject({ message: expect.stringMatching(/scanIterator/) });
    // invalidatePrefix() walks every master the same way
    for (const k of keys) await redis.wrap(k, 60, () => k);
    expect(await redis.invalidatePrefix('spread:')).toBe(60);
    expect(await redis.wrap(keys[5], 60, () => 'fresh')).toBe('fresh');
  });
});

describe('JS-thread connections to the masters (single-slot commands)', () => {
  afterEach(() => cluster.eachMaster('FLUSHALL'));

  test('single-slot and multi-slot calls made in one tick keep their call order', async () => {
    // incr goes out on its master's JS-thread connection, mget (two slots) through the crate.
    const calls = [];
    for (let i = 0; i < 200; i++) {
      calls.push(redis.incr('{ord}n'));
      calls.push(redis.mget(['{ord}n', `ord:other:${i}`]));
      if (i % 20 === 0) calls.push(redis.pipeline().incr('{ord}n').decr('{ord}n').exec());
    }
    const r = await Promise.all(calls);
    let n = 0;
    for (const v of r) {
      if (typeof v === 'number') expect(v).toBe(++n);
      else if (v.length === 2 && !Array.isArray(v[0])) expect(v).toEqual([String(n), null]);
      else expect(v).toEqual([[null, n + 1], [null, n]]);
    }
    expect(n).toBe(200);
  });

  test('a slot moved to another master: ASK and MOVED replies are followed, no write is lost', async () => {
    const [a, b] = ['{rs}a', '{rs}b'];
    expect(await redis.set(a, 'v1')).toBe('OK');
    const { src, dst, slot, finish } = cluster.migrateSlotOf(a);
    // Mid-migration: the source answers ASK for keys it no longer holds.
    expect(await redis.get(a)).toBe('v1');
    expect(await redis.set(b, 'v2')).toBe('OK');
    expect(cluster.cli(dst.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe('2');
    expect(cluster.cli(src.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe('0');
    finish();
    // Now MOVED, then the refreshed map sends them straight to the new master.
    const writes = await Promise.all(Array.from({ length: 100 }, () => redis.incr(`{rs}n`)));
    expect(writes).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await sleep(300);
    expect(await Promise.all([redis.get(a), redis.get(b), redis.incr('{rs}n')])).toEqual(['v1', 'v2', 101]);
    expect(cluster.cli(dst.port, 'GET', '{rs}n')).toBe('101');
    expect(cluster.cli(src.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe('0');
  });

  test('connect, work, disconnect, or forget to: the process exits by itself', async () => {
    const { runChild } = require('../helpers/spawn');
    for (const end of ['await r.disconnect();', '']) {
      const r = await runChild(`
        const { RedisService } = require('.');
        (async () => {
          const r = await RedisService.connect({ cluster: { nodes: JSON.parse(process.env.NODES) }, logger: false });
          await Promise.all(Array.from({ length: 50 }, (_, i) => r.set('child:' + i, String(i))));
          console.log(await r.get('child:7'), (await r.mget(['child:1', 'child:2'])).join());
          ${end}
        })();`, { NODES: JSON.stringify(cluster.options.cluster.nodes) });
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
      expect(r.out.trim()).toBe('7 1,2');
    }
  });
});

describe('pub/sub, health, configuration', () => {
  test('a message published through any node reaches a subscriber on another', async () => {
    const nodes = cluster.options.cluster.nodes;
    const pub = await RedisService.connect({ cluster: { nodes: [...nodes].reverse() }, logger: false });
    const got = [];
    const sub = await redis.subscribe('news', (m) => got.push(m));
    for (let i = 0; i < 5; i++) await pub.publish('news', `m${i}`);
    for (let i = 0; i < 50 && got.length < 5; i++) await sleep(20);
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    await sub.unsubscribe();
    await pub.disconnect();
  });

  test('healthCheck reports cluster mode and every node with its role', async () => {
    const h = await redis.healthCheck();
    expect(h).toMatchObject({ status: 'connected', mode: 'cluster', db: 0 });
    expect(h.latencyMs).toBeGreaterThanOrEqual(0);
    expect(h.nodes).toHaveLength(6);
    expect(h.nodes.filter((n) => n.role === 'master')).toHaveLength(3);
    expect(h.nodes.filter((n) => n.role === 'replica')).toHaveLength(3);
    expect(h.nodes.every((n) => n.ok && n.host === '127.0.0.1')).toBe(true);
    expect(new Set(h.nodes.map((n) => n.port))).toEqual(new Set(cluster.nodes.map((n) => n.port)));
  });

  test('stats() lists each master\'s connection; metricsText() has one connection_up per master', async () => {
    if (process.env.APP_REDIS_NO_UV === '1') {
      // No JS-thread connections to the masters: the service's one connection only.
      expect(redis.stats().nodes).toBeUndefined();
      expect(redis.metricsText()).toMatch(/^app_redis_connection_up\{server_address="127\.0\.0\.1",server_port="\d+"\} 1$/m);
      return;
    }
    const masters = cluster.live().filter((n) => cluster.cli(n.port, 'ROLE').split('\n')[0] === 'master').map((n) => n.port).sort();
    // Reads on every master open their connections.
    expect(await until(async () => {
      await Promise.all(spreadKeys().map((k) => redis.get(k)));
      const nodes = redis.stats().nodes || [];
      return nodes.filter((n) => n.state === 'up').length === 3;
    })).toBe(true);
    expect(redis.stats().nodes.map((n) => n.serverPort).sort()).toEqual(masters);
    const up = redis.metricsText().split('\n').filter((l) => l.startsWith('app_redis_connection_up{'));
    expect(up.map((l) => Number(/server_port="(\d+)"/.exec(l)[1])).sort()).toEqual(masters);
    expect(up.every((l) => l.endsWith(' 1'))).toBe(true);
  });

  test('REDIS_CLUSTER_NODES configures cluster mode; bad settings name the setting', async () => {
    const env = { REDIS_CLUSTER_NODES: cluster.options.cluster.nodes.join(','), REDIS_PASSWORD: '' };
    const r = RedisService.fromEnv(env, { logger: false });
    await r.connect();
    await r.set('{env}k', 'v');
    expect(await redis.get('{env}k')).toBe('v');
    expect((await r.healthCheck()).mode).toBe('cluster');
    await r.disconnect();
    expect(() => RedisService.fromEnv({ REDIS_CLUSTER_NODES: 'h:0' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => new RedisService({ cluster: { nodes: [] } })).toThrow(/cluster\.nodes/);
    expect(() => new RedisService({ cluster: { nodes: ['127.0.0.1:7000'] }, db: 2 })).toThrow(/cluster mode/);
    expect(() => new RedisService({ cluster: { nodes: ['127.0.0.1:7000'] }, tls: { servername: 'redis.internal' } }))
      .toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/tls\.servername.*cluster mode/) }));
    expect(() => new RedisService({ cluster: { nodes: [{ host: 'h', port: 70000 }] } })).toThrow(/cluster\.nodes\[0\]\.port/);
    let err = null;
    try {
      // eslint-disable-next-line no-new
      new RedisService({ cluster: { nodes: 'h:1' } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/options\.cluster\.nodes/) });
  });

  test('a password-protected cluster: the password reaches every node; a wrong one is ERR_AUTH and never shown', async () => {
    const locked = await new RedisCluster({ replicasPerMaster: 0, password: 's3cret-pw' }).start();
    try {
      const ok = await RedisService.connect({ ...locked.options, password: 's3cret-pw', logger: false });
      const keys = spreadKeys(12);
      await ok.mset(keys.map((k) => [k, k]));
      expect(await ok.mget(...keys)).toEqual(keys);
      expect(new Set(keys.map((k) => locked.masterFor(k).port)).size).toBe(3);
      const h = await ok.healthCheck();
      expect(h.nodes).toHaveLength(3);
      expect(JSON.stringify(h)).not.toMatch(/s3cret/);
      await ok.disconnect();
      const bad = new RedisService({ ...locked.options, password: 'wrong-pw', connectTimeoutMs: 2000, logger: false });
      const err = await bad.connect().catch((e) => e);
      expect(err.code).toMatch(/ERR_AUTH|ERR_CONNECTION/);
      expect(err.message).not.toMatch(/wrong-pw|s3cret/);
    } finally {
      await locked.stop();
    }
  }, 60000);

  test('a TLS cluster: tls options (own CA) apply to every node', async () => {
    const certs = new Certs();
    certs.ca('ca');
    certs.cert('node', 'ca', 'DNS:localhost,IP:127.0.0.1');
    const tls = { cert: certs.file('node.crt'), key: certs.file('node.key'), ca: certs.file('ca.crt'), authClients: false };
    const secure = await new RedisCluster({ replicasPerMaster: 0, tls }).start();
    try {
      const r = await RedisService.connect({ ...secure.options, tls: { ca: fs.readFileSync(certs.file('ca.crt')) }, clientName: 'tls-lanes', logger: false });
      const keys = spreadKeys(12);
      await r.mset(keys.map((k) => [k, k]));
      expect(await r.mget(...keys)).toEqual(keys);
      expect(new Set(keys.map((k) => secure.masterFor(k).port)).size).toBe(3);
      expect(await Promise.all(keys.map((k) => r.get(k)))).toEqual(keys);
      // Single-slot commands took each master's JS-thread connection, over TLS too (none
      // without libuv).
      const named = (port) => secure.cli(port, 'CLIENT', 'LIST').split('\n').filter((l) => / name=tls-lanes /.test(l)).length;
      const ports = [...new Set(keys.map((k) => secure.masterFor(k).port))];
      for (const port of ports) {
        if (process.env.APP_REDIS_NO_UV) expect(named(port)).toBe(0);
        else expect(named(port)).toBeGreaterThan(0);
      }
      await r.disconnect();
      const plain = new RedisService({ ...secure.options, connectTimeoutMs: 1500, logger: false });
      await expect(plain.connect()).rejects.toMatchObject({ code: expect.stringMatching(/ERR_CONNECTION|ERR_TIMEOUT/) });
    } finally {
      await secure.stop();
      certs.remove();
    }
  }, 60000);

  test('no seed node reachable: connect() rejects fast with ERR_CONNECTION', async () => {
    const t = Date.now();
    const r = new RedisService({ cluster: { nodes: ['127.0.0.1:1', '127.0.0.1:2'] }, connectTimeoutMs: 500, logger: false });
    await expect(r.connect()).rejects.toMatchObject({ code: expect.stringMatching(/ERR_CONNECTION|ERR_TIMEOUT/) });
    expect(Date.now() - t).toBeLessThan(3000);
  });
});

describe('failover', () => {
  test('a master killed under a steady stream of writes: writes resume within 10 s, none acknowledged after the switch is lost', async () => {
    const logs = [];
    const logger = { log: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) };
    const w = await RedisService.connect({ ...cluster.options, logger, commandTimeoutMs: 2000, clientName: 'fo-writer' });
    const victim = cluster.masterFor('fo:0');
    const victimKeys = new Set(Array.from({ length: 20 }, (_, i) => `fo:${i}`).filter((k) => cluster.masterFor(k) === victim));
    expect(victimKeys.size).toBeGreaterThan(0);
    const writes = steadyWriter(w, { prefix: 'fo:', keys: 20 });
    await sleep(300);
    await victim.kill('SIGKILL');
    // From here on the old master is gone: a write sent later can only be served by its successor.
    const killedAt = Date.now();
    const recovered = await writes.recoveredAfter(killedAt, (k) => victimKeys.has(k), 15000);
    await sleep(1000);
    await writes.stop();
    const { failures, slowest } = writes;
    expect(recovered).not.toBeNull();
    expect(recovered - killedAt).toBeLessThan(10000);
    process.stdout.write(`cluster master failover: writes resumed ${recovered - killedAt} ms after the kill, ${failures.length} calls failed meanwhile (slowest ${slowest} ms)\n`);
    // Every failure was a typed, bounded error (never a hang).
    expect(failures.every((c) => ['ERR_CONNECTION', 'ERR_TIMEOUT', 'ERR_REPLY'].includes(c))).toBe(true);
    expect(slowest).toBeLessThan(2000 + 1500);
    // The last acknowledged write of each key after the switch is what the cluster holds.
    const last = writes.lastAfter(recovered);
    expect(last.size).toBe(20);
    const keys = [...last.keys()];
    expect(await w.mget(...keys)).toEqual(keys.map((k) => String(last.get(k))));
    const h = await w.healthCheck();
    expect(h.nodes.filter((n) => n.role === 'master' && n.ok)).toHaveLength(3);
    expect(h.nodes.some((n) => n.port === victim.port && !n.ok)).toBe(true);
    // The old master comes back as a replica: no JS-thread connection of ours returns to it (its
    // lane was closed when the new slot map left it out; the lanes carry the clientName).
    await victim.start();
    const deadline = Date.now() + 15000;
    while (!cluster.cli(victim.port, 'ROLE').startsWith('slave') && Date.now() < deadline) await sleep(100);
    expect(cluster.cli(victim.port, 'ROLE').split('\n')[0]).toBe('slave');
    for (let i = 0; i < 15; i++) {
      expect(await Promise.all(keys.map((k) => w.get(k)))).toEqual(keys.map((k) => String(last.get(k))));
      await sleep(100);
    }
    const named = (port) => cluster.cli(port, 'CLIENT', 'LIST').split('\n').filter((l) => / name=fo-writer /.test(l)).length;
    expect(named(victim.port)).toBe(0);
    const masters = cluster.live().filter((n) => cluster.cli(n.port, 'ROLE').split('\n')[0] === 'master');
    expect(masters).toHaveLength(3);
    // (Without libuv there are no JS-thread connections, so nothing carries the name.)
    if (!process.env.APP_REDIS_NO_UV) for (const m of masters) expect(named(m.port)).toBeGreaterThan(0);
    await w.disconnect();
  }, 60000);
});
