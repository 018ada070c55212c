'use strict';
// Sentinel specifics (runs under `npm run test:cluster`): the master is found through the
// Sentinels, healthCheck reports it, and a failover (master killed) is followed without user
// action: commands, the JS-thread connection, pub/sub, and what a lock keeps across it.
// The ordinary suites run against a Sentinel setup too (REDIS_MODE=sentinel).
const { RedisService } = require('../..');
const { RedisSentinels, sleep } = require('../helpers/redis-server');
const { steadyWriter } = require('../helpers/failover');

let setup;
beforeAll(async () => {
  setup = await new RedisSentinels().start();
}, 60000);
afterAll(async () => {
  await setup.stop();
});

test('the master is found through the Sentinels; healthCheck reports it and the Sentinels', async () => {
  const redis = await RedisService.connect({ ...setup.options, logger: false });
  await redis.set('k', 'v');
  expect(setup.master.cli('GET', 'k')).toBe('v');
  const h = await redis.healthCheck();
  expect(h).toMatchObject({ status: 'connected', mode: 'sentinel', host: '127.0.0.1', port: setup.master.port });
  expect(h.nodes.map((n) => n.role)).toEqual(['master', 'sentinel', 'sentinel', 'sentinel']);
  await redis.disconnect();
});

test('REDIS_SENTINELS + REDIS_SENTINEL_MASTER configure it; bad settings name the setting', async () => {
  const env = { REDIS_SENTINELS: setup.options.sentinel.sentinels.join(','), REDIS_SENTINEL_MASTER: 'mymaster' };
  const r = RedisService.fromEnv(env, { logger: false });
  await r.connect();
  expect(await r.ping()).toBe('PONG');
  await r.disconnect();
  expect(() => RedisService.fromEnv({ REDIS_SENTINELS: 'h:1' })).toThrow(/REDIS_SENTINEL_MASTER/);
  expect(() => new RedisService({ sentinel: { sentinels: ['h:1'] } })).toThrow(/options\.sentinel\.masterName/);
  expect(() => new RedisService({ sentinel: { sentinels: ['h:1'], masterName: 'm' }, cluster: { nodes: ['h:2'] } })).toThrow(/cluster and sentinel/);
});

test('an unknown master name or no Sentinel reachable rejects connect() with ERR_CONNECTION, without secrets', async () => {
  const unknown = new RedisService({ sentinel: { ...setup.options.sentinel, masterName: 'nope' }, password: 'hunter2', connectTimeoutMs: 500, logger: false });
  await expect(unknown.connect()).rejects.toMatchObject({ code: 'ERR_CONNECTION', message: expect.stringMatching(/does not monitor a master named 'nope'/) });
  const none = new RedisService({ sentinel: { sentinels: ['127.0.0.1:1'], masterName: 'm', password: 'hunter2' }, connectTimeoutMs: 300, logger: false });
  const err = await none.connect().catch((e) => e);
  expect(err.code).toBe('ERR_CONNECTION');
  expect(err.message).not.toMatch(/hunter2/);
});

test('failover: the master is killed under steady writes; writes resume on the new master within 10 s, a subscription follows, a replicated lock survives', async () => {
  const logs = [];
  const logger = { log: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) };
  const redis = await RedisService.connect({ ...setup.options, logger, commandTimeoutMs: 2000, reconnectMaxDelayMs: 200 });
  const listener = await RedisService.connect({ ...setup.options, logger: false });
  const got = [];
  await listener.subscribe('events', (m) => got.push(m));
  const lock = await redis.acquireLockWithFencing('job', { ttlSeconds: 60 });
  // The lease and its fencing counter reach the replica before the failover (see the README).
  await redis.call('WAIT', '1', '2000');
  const oldMaster = setup.master;
  const writes = steadyWriter(redis, { prefix: 'w:', keys: 10 });
  await sleep(200);
  await oldMaster.kill('SIGKILL');
  // From here on the old master is gone: a write sent later can only be served by the new one.
  const killedAt = Date.now();
  const recovered = await writes.recoveredAfter(killedAt);
  await sleep(500);
  await writes.stop();
  const { failures, slowest } = writes;
  expect(recovered).not.toBeNull();
  expect(recovered - killedAt).toBeLessThan(10000);
  process.stdout.write(`Sentinel failover: writes resumed ${recovered - killedAt} ms after the kill, ${failures.length} calls failed meanwhile (slowest ${slowest} ms)\n`);
  expect(failures.length).toBeGreaterThan(0);
  expect(failures.every((c) => ['ERR_CONNECTION', 'ERR_TIMEOUT'].includes(c))).toBe(true);
  expect(slowest).toBeLessThan(2000 + 1500);
  // Now on the promoted replica.
  const h = await redis.healthCheck();
  expect(h.port).toBe(setup.replica.port);
  expect(setup.masterPort()).toBe(setup.replica.port);
  const last = writes.lastAfter(recovered);
  const keys = [...last.keys()];
  expect(await redis.mget(...keys)).toEqual(keys.map((k) => String(last.get(k))));
  // The outage was logged once each way, without secrets.
  expect(logs.filter((m) => /unavailable/.test(m))).toHaveLength(1);
  expect(logs.some((m) => /restored/.test(m))).toBe(true);
  // The subscription moved to the new master with the connection.
  for (let i = 0; i < 100 && got.length === 0; i++) {
    await redis.publish('events', 'after-failover');
    await sleep(50);
  }
  expect(got).toContain('after-failover');
  // The replicated lease is still held; the next holder's fencing token is larger.
  expect(await redis.isLocked('job')).toBe(true);
  expect(await redis.releaseLock('job', lock.token)).toBe(true);
  const next = await redis.acquireLockWithFencing('job', 10);
  expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
  await listener.disconnect();
  await redis.disconnect();
}, 60000);

test('Sentinel over TLS: the master is found through TLS Sentinels, commands take the JS-thread connection over TLS, and a failover is followed', async () => {
  const fs = require('node:fs');
  const { Certs } = require('../helpers/certs');
  const certs = new Certs();
  certs.ca('ca');
  certs.cert('node', 'ca', 'DNS:localhost,IP:127.0.0.1');
  const secure = await new RedisSentinels({ tls: { cert: certs.file('node.crt'), key: certs.file('node.key'), ca: certs.file('ca.crt') } }).start();
  try {
    const redis = await RedisService.connect({ ...secure.options, tls: { ca: fs.readFileSync(certs.file('ca.crt')) }, clientName: 'tls-sentinel', logger: false, commandTimeoutMs: 2000, reconnectMaxDelayMs: 200 });
    await redis.set('k', 'over tls');
    expect(secure.master.cli('GET', 'k')).toBe('over tls');
    const named = (server) => server.cli('CLIENT', 'LIST').split('\n').filter((l) => / name=tls-sentinel /.test(l)).length;
    // The runtime's connection, plus the JS thread's unless it is off.
    expect(named(secure.master)).toBe(process.env.APP_REDIS_NO_UV ? 1 : 2);
    await redis.call('WAIT', '1', '2000');
    await secure.master.kill('SIGKILL');
    const deadline = Date.now() + 15000;
    let written = false;
    while (!written && Date.now() < deadline) {
      written = await redis.set('k', 'after failover').then(() => true, () => false);
      if (!written) await sleep(100);
    }
    expect(written).toBe(true);
    expect(secure.masterPort()).toBe(secure.replica.port);
    expect(await redis.get('k')).toBe('after failover');
    expect(named(secure.replica)).toBe(process.env.APP_REDIS_NO_UV ? 1 : 2);
    await redis.disconnect();
  } finally {
    await secure.stop();
    certs.remove();
  }
}, 60000);

test('near cache (clientCache): a failover flushes it, so nothing read from the old master is served after it', async () => {
  const own = await new RedisSentinels().start();
  try {
    const redis = await RedisService.connect({ ...own.options, logger: false, clientCache: true, commandTimeoutMs: 2000, reconnectMaxDelayMs: 200 });
    await redis.set('nc', 'before');
    await redis.call('WAIT', '1', '2000');
    expect(await redis.get('nc')).toBe('before');
    expect(await redis.get('nc')).toBe('before');
    expect(redis.clientCacheStats().hits).toBe(1);
    await own.master.kill('SIGKILL');
    const deadline = Date.now() + 15000;
    while (own.masterPort() !== own.replica.port && Date.now() < deadline) await sleep(100);
    expect(own.masterPort()).toBe(own.replica.port);
    // Written on the new master by another client: this service never read `nc` there, so no
    // invalidation will come; only the flush on the loss keeps `before` from being served.
    own.replica.cli('SET', 'nc', 'after');
    let seen = 'before';
    while (seen !== 'after' && Date.now() < deadline) {
      seen = await redis.get('nc').catch(() => 'before');
      if (seen !== 'after') await sleep(50);
    }
    expect(seen).toBe('after');
    expect(redis.clientCacheStats().flushes).toBeGreaterThanOrEqual(1);
    await redis.disconnect();
  } finally {
    await own.stop();
  }
}, 60000);
