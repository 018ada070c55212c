'use strict';
// Pub/sub against real redis-servers: ordering, patterns, several handlers, throwing handlers,
// resubscription after the server is killed and restarted, process lifetime, the EventBus.
const { RedisService, EventBus } = require('..');
const { suiteServer, startRedis, sleep, MODE } = require('./helpers/redis-server');

// PUBSUB NUMSUB: [channel, n] from one server; in cluster mode the per-node counts summed as { channel: n }.
const numsub = (r) => (Array.isArray(r) ? r[1] : Object.values(r)[0]);
const { runChild } = require('./helpers/spawn');
const { until } = require('./helpers/assert');

let srv;
let redis;
let publisher;
beforeAll(async () => {
  srv = await suiteServer();
  redis = await RedisService.connect({ ...srv.options, logger: false });
  publisher = await RedisService.connect({ ...srv.options, logger: false });
});
afterAll(async () => {
  await redis.disconnect();
  await publisher.disconnect();
  await srv.stop();
});

test('10,000 messages arrive in order', async () => {
  const got = [];
  const sub = await redis.subscribe('order', (m) => got.push(Number(m)));
  expect(sub.channel).toBe('order');
  await Promise.all(Array.from({ length: 10000 }, (_, i) => publisher.publish('order', String(i))));
  expect(await until(() => got.length === 10000)).toBe(true);
  for (let i = 0; i < 10000; i++) if (got[i] !== i) throw new Error(`message ${i} arrived as ${got[i]}`);
  await sub.unsubscribe();
});

test('pattern subscriptions receive (message, channel, pattern)', async () => {
  const got = [];
  const sub = await redis.psubscribe('news.*', (...args) => got.push(args));
  expect(await publisher.publish('news.tech', 'a')).toBe(1);
  expect(await publisher.publish('weather', 'b')).toBe(0);
  expect(await until(() => got.length === 1)).toBe(true);
  expect(got[0]).toEqual(['a', 'news.tech', 'news.*']);
  await sub.unsubscribe();
});

test('several handlers per channel; unsubscribing one leaves the others', async () => {
  const a = [];
  const b = [];
  const sa = await redis.subscribe('multi', (m) => a.push(m));
  const sb = await redis.subscribe('multi', (m) => b.push(m));
  await publisher.publish('multi', '1');
  expect(await until(() => a.length === 1 && b.length === 1)).toBe(true);
  await sa.unsubscribe();
  expect(sa.active).toBe(false);
  await sa.unsubscribe(); // idempotent
  await publisher.publish('multi', '2');
  expect(await until(() => b.length === 2)).toBe(true);
  expect(a).toEqual(['1']);
  // The Redis subscription stays while a handler is left, and goes with the last one.
  expect(numsub(await publisher.call('PUBSUB', 'NUMSUB', 'multi'))).toBe(1);
  await sb.unsubscribe();
  expect(await until(() => false, 100)).toBe(false);
  expect(numsub(await publisher.call('PUBSUB', 'NUMSUB', 'multi'))).toBe(0);
});

test('a throwing or rejecting handler goes to onError or the logger; delivery continues', async () => {
  const errors = [];
  const logged = [];
  const r = await RedisService.connect({ ...srv.options, logger: { log() {}, warn() {}, error: (m) => logged.push(m) } });
  const got = [];
  await r.subscribe('bad', (m) => { got.push(m); throw new Error(`sync ${m}`); });
  await r.subscribe('bad', async (m) => { throw new Error(`async ${m}`); }, { onError: (e, channel) => errors.push([e.message, channel]) });
  await publisher.publish('bad', '1');
  await publisher.publish('bad', '2');
  expect(await until(() => got.length === 2 && errors.length === 2 && logged.length === 2)).toBe(true);
  expect(errors).toEqual([['async 1', 'bad'], ['async 2', 'bad']]);
  expect(logged[0]).toContain('a pub/sub handler for "bad" threw: Error: sync 1');
  await r.disconnect();
});

test('subscriptions are restored after the server is killed and restarted on the same port', async () => {
  const s = await startRedis();
  const logs = [];
  const r = await RedisService.connect({ url: s.url, logger: { log: (m) => logs.push(m), warn() {}, error() {} }, reconnectMaxDelayMs: 100 });
  const got = [];
  await r.subscribe('survive', (m) => got.push(m));
  await r.psubscribe('surv*', (m) => got.push(`p:${m}`));
  await s.kill('SIGKILL');
  await sleep(300);
  await s.start();
  const pub = await RedisService.connect({ url: s.url, logger: false });
  // Resubscribed by itself: wait until the server sees both subscriptions again.
  expect(await until(() => logs.some((l) => l.includes('subscriptions restored')), 5000)).toBe(true);
  expect(await pub.publish('survive', 'after')).toBe(2);
  expect(await until(() => got.length === 2)).toBe(true);
  expect(got.sort()).toEqual(['after', 'p:after']);
  await pub.disconnect();
  await r.disconnect();
  await s.stop();
}, 20000);

test('the EventBus sends JSON events (seed 000)', async () => {
  const bus = new EventBus(redis, { prefix: 'bus:' });
  const seen = [];
  const sub = await bus.on('order.created', (payload, event) => seen.push([event, payload]));
  // PUBLISH counts the receivers on the server it reached: in a cluster, the node it went to.
  expect(await bus.emit('order.created', { id: 7, items: [1, 2] })).toEqual(MODE === 'cluster' ? expect.any(Number) : 1);
  expect(await until(() => seen.length === 1)).toBe(true);
  expect(seen[0]).toEqual(['order.created', { id: 7, items: [1, 2] }]);
  await sub.unsubscribe();
});

test('a subscription keeps the process alive; unsubscribing or disconnecting lets it exit', async () => {
  const stays = await runChild(`
    const { RedisService } = require('.');
    (async () => {
      const r = await RedisService.connect({ ...JSON.parse(process.env.CONN), logger: false });
      await r.subscribe('wait', () => {});
      console.log('subscribed');
    })();`, { CONN: JSON.stringify(srv.options) }, { timeoutMs: 1500 });
  expect(stays.signal).toBe('SIGKILL');
  expect(stays.out.trim()).toBe('subscribed');
  const exits = await runChild(`
    const { RedisService } = require('.');
    (async () => {
      const r = await RedisService.connect({ ...JSON.parse(process.env.CONN), logger: false });
      const a = await r.subscribe('wait', () => {});
      const b = await r.psubscribe('w*', () => {});
      await a.unsubscribe();
      await b.unsubscribe();
      const c = await r.subscribe('other', () => {});
      await r.disconnect();
      console.log('done', c.channel);
    })();`, { CONN: JSON.stringify(srv.options) });
  expect(exits.code).toBe(0);
  expect(exits.out.trim()).toBe('done other');
}, 15000);

test('bad input', async () => {
  await expect(redis.subscribe('', () => {})).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/`channel` must be a non-empty string/) });
  await expect(redis.subscribe('c', 'no')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/`handler` must be a function/) });
  await expect(redis.psubscribe(5, () => {})).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/`pattern` must be a string/) });
  await expect(redis.subscribe('c', () => {}, { onError: 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
});
