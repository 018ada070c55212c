'use strict';
// Observability (README "Monitoring"): the `app-redis:*` diagnostics channels, their events in
// order, errors with codes, no value or password in any event, nothing wrapped while no one
// listens, and `@app/redis/otel`'s spans and histogram through the OpenTelemetry SDK's in-memory
// exporters. Against real redis-servers.
const dc = require('node:diagnostics_channel');
const { RedisService } = require('..');
const { startRedis } = require('./helpers/redis-server');
const { until } = require('./helpers/assert');

const PASSWORD = 'pw-do-not-show-7f3a';
const SECRET = 'value-do-not-show-91c2';
let server;
let redis;

beforeAll(async () => {
  server = await startRedis({ args: ['--requirepass', PASSWORD] });
  redis = await RedisService.connect({ host: '127.0.0.1', port: server.port, password: PASSWORD, db: 2, clientName: 'obs-test', logger: false });
});
afterAll(async () => {
  await redis.disconnect();
  await server.stop();
});

/** Subscribes to the command channel; returns the events seen and a way to stop. */
function record() {
  const events = [];
  const handlers = {};
  for (const k of ['start', 'end', 'asyncStart', 'asyncEnd', 'error']) {
    handlers[k] = (ctx) => events.push({ on: k, ctx: { ...ctx }, error: ctx.error });
  }
  const tc = dc.tracingChannel('app-redis:command');
  tc.subscribe(handlers);
  return { events, stop: () => tc.unsubscribe(handlers) };
}

/** Everything an event carries, as text (errors with their message and code). */
function text(events) {
  return JSON.stringify(events, (k, v) => (v instanceof Error ? { message: v.message, code: v.code, stack: v.stack } : v));
}

test('no subscriber: the methods are the plain ones; the first subscriber puts traced ones in place, the last one takes them away', async () => {
  const plain = RedisService.prototype.set;
  const { stop } = record();
  expect(RedisService.prototype.set).not.toBe(plain);
  stop();
  expect(RedisService.prototype.set).toBe(plain);
  const f = () => {};
  dc.subscribe('app-redis:lock', f);
  expect(RedisService.prototype.withLock).not.toBe(plain);
  dc.unsubscribe('app-redis:lock', f);
  expect(RedisService.prototype.set).toBe(plain);
});

test('one trace per command, in order, with where it went and never a value', async () => {
  const { events, stop } = record();
  try {
    await redis.set('obs:k', SECRET);
    expect(await redis.get('obs:k')).toBe(SECRET);
    await redis.mget('obs:k', 'obs:other', ['obs:third']);
  } finally {
    stop();
  }
  expect(events.map((e) => `${e.on} ${e.ctx.command}`)).toEqual([
    'start SET', 'end SET', 'asyncStart SET', 'asyncEnd SET',
    'start GET', 'end GET', 'asyncStart GET', 'asyncEnd GET',
    'start MGET', 'end MGET', 'asyncStart MGET', 'asyncEnd MGET',
  ]);
  expect(events[0].ctx).toEqual({ command: 'SET', keyCount: 1, batchSize: 1, database: 2, serverAddress: '127.0.0.1', serverPort: server.port, clientName: 'obs-test' });
  expect(events[8].ctx.keyCount).toBe(3);
  const all = text(events);
  expect(all).not.toContain(SECRET);
  expect(all).not.toContain(PASSWORD);
});

test('a pipeline and a transaction are one trace each, with their size', async () => {
  const { events, stop } = record();
  try {
    await redis.pipeline().set('obs:p', '1').incr('obs:p').get('obs:p').exec();
    await redis.multi().incr('obs:p').incr('obs:p').exec();
  } finally {
    stop();
  }
  expect(events.map((e) => `${e.on} ${e.ctx.command} ${e.ctx.batchSize}`)).toEqual([
    'start PIPELINE 3', 'end PIPELINE 3', 'asyncStart PIPELINE 3', 'asyncEnd PIPELINE 3',
    'start MULTI 2', 'end MULTI 2', 'asyncStart MULTI 2', 'asyncEnd MULTI 2',
  ]);
});

test('errors carry their code: a reply error, bad input, Redis unreachable', async () => {
  // Never connected: its calls fail fast with ERR_CONNECTION.
  const down = new RedisService({ host: '127.0.0.1', port: server.port, password: PASSWORD, logger: false });
  const { events, stop } = record();
  try {
    await redis.set('obs:str', 'x');
    await expect(redis.lPush('obs:str', 'y')).rejects.toMatchObject({ code: 'ERR_REPLY' });
    await expect(redis.get({})).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(down.get('obs:k')).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
  } finally {
    stop();
    await down.disconnect();
  }
  const errors = events.filter((e) => e.on === 'error');
  expect(errors.map((e) => [e.ctx.command, e.error.code])).toEqual([['LPUSH', 'ERR_REPLY'], ['GET', 'ERR_INVALID_ARGUMENT'], ['GET', 'ERR_CONNECTION']]);
  // Each failed trace still ends: error, then asyncStart and asyncEnd.
  expect(events.filter((e) => e.ctx.command === 'LPUSH').map((e) => e.on)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
  expect(text(events)).not.toContain(PASSWORD);
});

test('locks: acquired with the wait, released with the time held, failed, lost', async () => {
  const seen = [];
  const f = (m) => seen.push(m);
  dc.subscribe('app-redis:lock', f);
  try {
    expect(await redis.withLock('obs:lock', async () => SECRET)).toBe(SECRET);
    const token = await redis.acquireLock('obs:held', 10);
    expect(await redis.acquireLock('obs:held', 10)).toBeNull();
    await redis.releaseLock('obs:held', token);
    const err = await redis.withLock('obs:lost', async ({ signal }) => {
      await redis.call('DEL', 'lock:{obs:lost}');
      await new Promise((resolve) => signal.addEventListener('abort', resolve));
    }, { ttlMs: 300 }).catch((e) => e);
    expect(err.code).toBe('ERR_LOCK_LOST');
  } finally {
    dc.unsubscribe('app-redis:lock', f);
  }
  expect(seen.map((m) => `${m.event} ${m.key}`)).toEqual([
    'acquired obs:lock', 'released obs:lock',
    'acquired obs:held', 'failed obs:held', 'released obs:held',
    'acquired obs:lost', 'lost obs:lost', 'released obs:lost',
  ]);
  expect(seen[0].waitMs).toBeGreaterThanOrEqual(0);
  expect(seen[1].heldMs).toBeGreaterThanOrEqual(0);
  expect(seen[6].code).toBe('ERR_LOCK_LOST');
  expect(seen[7].code).toBe('ERR_LOCK_LOST');
  expect(text(seen)).not.toContain(SECRET);
});

test('rate limits: each decision with what remains', async () => {
  const seen = [];
  const f = (m) => seen.push(m);
  dc.subscribe('app-redis:rate-limit', f);
  try {
    for (let i = 0; i < 3; i++) await redis.rateLimit('obs:rl', { limit: 2, windowSeconds: 10 });
  } finally {
    dc.unsubscribe('app-redis:rate-limit', f);
  }
  expect(seen.map((m) => [m.key, m.allowed, m.remaining, m.limit, m.degraded])).toEqual([
    ['obs:rl', true, 1, 2, false], ['obs:rl', true, 0, 2, false], ['obs:rl', false, 0, 2, false],
  ]);
});

test('connections: connecting, ready, lost, reconnecting, ready, closed, with the node and never the password', async () => {
  const own = await startRedis({ args: ['--requirepass', PASSWORD] });
  const seen = [];
  const f = (m) => { if (m.serverPort === own.port) seen.push(m); };
  dc.subscribe('app-redis:connection', f);
  const r = await RedisService.connect({ url: `redis://:${PASSWORD}@127.0.0.1:${own.port}`, logger: false, reconnectMinDelayMs: 20, reconnectMaxDelayMs: 50 });
  try {
    await own.kill('SIGKILL');
    expect(await until(() => seen.some((m) => m.event === 'reconnecting'))).toBe(true);
    await own.start();
    expect(await until(() => seen.filter((m) => m.event === 'ready').length === 2)).toBe(true);
    await r.disconnect();
    expect(await until(() => seen.some((m) => m.event === 'closed'))).toBe(true);
  } finally {
    dc.unsubscribe('app-redis:connection', f);
    await r.disconnect();
    await own.stop();
  }
  const names = seen.map((m) => m.event).filter((e, i, a) => e !== 'reconnecting' || a[i - 1] !== 'reconnecting');
  expect(names).toEqual(['connecting', 'ready', 'lost', 'reconnecting', 'ready', 'closed']);
  expect(seen[0]).toEqual({ event: 'connecting', serverAddress: '127.0.0.1', serverPort: own.port });
  expect(seen.find((m) => m.event === 'reconnecting').attempt).toBe(1);
  expect(text(seen)).not.toContain(PASSWORD);
});

describe('@app/redis/otel', () => {
  const api = require('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
  const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
  const { RedisInstrumentation } = require('../js/otel.js');

  class Reader extends MetricReader {
    async onForceFlush() {}
    async onShutdown() {}
  }

  test('a CLIENT span per command, child of the active span, with the conventions\' attributes; the duration histogram', async () => {
    api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const reader = new Reader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const otel = new RedisInstrumentation({ tracerProvider, meterProvider });
    const tracer = tracerProvider.getTracer('test');
    try {
      await tracer.startActiveSpan('request', async (parent) => {
        await redis.set('obs:o', SECRET);
        await redis.get('obs:o');
        await redis.lPush('obs:o', 'x').catch(() => {});
        await redis.pipeline().get('obs:o').get('obs:o').exec();
        parent.end();
      });
    } finally {
      otel.disable();
      api.context.disable();
    }
    const spans = exporter.getFinishedSpans();
    const parent = spans.find((s) => s.name === 'request');
    const ours = spans.filter((s) => s.name !== 'request');
    expect(ours.map((s) => s.name)).toEqual(['SET', 'GET', 'LPUSH', 'PIPELINE']);
    for (const s of ours) {
      expect(s.kind).toBe(api.SpanKind.CLIENT);
      expect(s.parentSpanContext.spanId).toBe(parent.spanContext().spanId);
      expect(s.spanContext().traceId).toBe(parent.spanContext().traceId);
      expect(s.attributes).toMatchObject({ 'db.system.name': 'redis', 'db.namespace': '2', 'server.address': '127.0.0.1', 'server.port': server.port });
    }
    expect(ours[1].attributes['db.operation.name']).toBe('GET');
    expect(ours[2].status.code).toBe(api.SpanStatusCode.ERROR);
    expect(ours[2].attributes['error.type']).toBe('ERR_REPLY');
    expect(ours[3].attributes['db.operation.batch.size']).toBe(2);
    expect(JSON.stringify(ours.map((s) => s.attributes))).not.toContain(SECRET);

    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === 'db.client.operation.duration');
    expect(metric.descriptor.unit).toBe('s');
    const byOp = Object.fromEntries(metric.dataPoints.map((p) => [`${p.attributes['db.operation.name']}${p.attributes['error.type'] ? ` ${p.attributes['error.type']}` : ''}`, p.value]));
    expect(Object.keys(byOp).sort()).toEqual(['GET', 'LPUSH ERR_REPLY', 'PIPELINE', 'SET']);
    expect(byOp.GET.count).toBe(1);
    expect(byOp.GET.sum).toBeGreaterThan(0);
    expect(byOp.GET.sum).toBeLessThan(1);
  });

  test('bad options are refused with ERR_INVALID_ARGUMENT naming the option', () => {
    for (const [o, name] of [[5, 'options'], [{ tracerProvider: {} }, 'options.tracerProvider'], [{ meterProvider: 3 }, 'options.meterProvider']]) {
      expect(() => new RedisInstrumentation(o)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining(name) }));
    }
  });
});

describe('stats() and Prometheus', () => {
  const parse = require('parse-prometheus-text-format');

  test('stats() counts commands, replies, errors by code and latency; inFlight while calls are out', async () => {
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, password: PASSWORD, logger: false });
    try {
      const zero = r.stats();
      expect(zero).toMatchObject({ commands: 0, replies: 0, degraded: 0, inFlight: 0, errors: {}, reconnects: 0, outages: 0, outageMs: 0 });
      expect(zero.connection).toEqual({ state: 'up', serverAddress: '127.0.0.1', serverPort: server.port });
      expect(zero.clientCache).toBeUndefined();
      for (let i = 0; i < 50; i++) await r.set('obs:s', String(i));
      const burst = Array.from({ length: 256 }, () => r.incr('obs:n'));
      // (On the runtime path a reply already back counts until the runtime thread records it:
      // a few either way.)
      expect(r.stats().inFlight).toBeGreaterThan(128);
      expect(r.stats().inFlight).toBeLessThanOrEqual(260);
      await Promise.all(burst);
      await r.pipeline().get('obs:s').get('obs:s').exec();
      await r.lPush('obs:s', 'x').catch(() => {});
      await expect(r.get({})).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      expect(await until(() => r.stats().inFlight === 0)).toBe(true);
      const s = r.stats();
      expect(s).toMatchObject({ commands: 308, replies: 308, degraded: 0, errors: { ERR_REPLY: 1 } });
      const l = s.latencyMs;
      expect(l.count).toBe(308);
      expect(l.buckets.reduce((a, b) => a + b[1], 0)).toBe(308);
      expect(l.p50).toBeGreaterThan(0);
      expect(l.p50).toBeLessThanOrEqual(l.p90);
      expect(l.p90).toBeLessThanOrEqual(l.p99);
      expect(l.p99).toBeLessThanOrEqual(l.max);
      expect(l.sum).toBeGreaterThanOrEqual(l.max);
    } finally {
      await r.disconnect();
    }
    expect(r.stats().connection.state).toBe('idle');
  });

  test('stats() counts outages, reconnects, degraded results, failures while down, and rate-limit decisions', async () => {
    const own = await startRedis();
    const r = await RedisService.connect({ url: own.url, logger: false, reconnectMinDelayMs: 20, reconnectMaxDelayMs: 50 });
    const soft = await RedisService.connect({ url: own.url, logger: false, failOpen: true, reconnectMinDelayMs: 20, reconnectMaxDelayMs: 50 });
    try {
      await r.rateLimit('obs:rl2', { limit: 1, windowSeconds: 10 });
      await r.rateLimit('obs:rl2', { limit: 1, windowSeconds: 10 });
      // Locks: one at once, one after waiting for it, one that never gets it, one lost.
      let release;
      const held = r.withLock('obs:sl', () => new Promise((resolve) => { release = resolve; }), { ttlMs: 5000 });
      await until(() => release !== undefined);
      const waiter = r.withLock('obs:sl', async () => 'second', { ttlMs: 5000, waitMs: 3000 });
      await expect(r.withLock('obs:sl', async () => 'never', { ttlMs: 5000, waitMs: 50 })).rejects.toMatchObject({ code: 'ERR_LOCK_NOT_ACQUIRED' });
      setTimeout(release, 50);
      await held;
      expect(await waiter).toBe('second');
      await expect(r.withLock('obs:sl2', async ({ signal }) => {
        await r.call('DEL', 'lock:{obs:sl2}');
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
      }, { ttlMs: 300 })).rejects.toMatchObject({ code: 'ERR_LOCK_LOST' });
      const locks = r.stats().locks;
      expect(locks).toMatchObject({ acquired: 3, waited: 1, failed: 1, lost: 1, degraded: 0 });
      expect(locks.waitMs).toBeGreaterThanOrEqual(50);
      await own.kill('SIGKILL');
      expect(await until(() => r.stats().connection.state === 'down' && soft.stats().connection.state === 'down')).toBe(true);
      await expect(r.get('obs:k')).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
      expect(await soft.get('obs:k')).toBeNull();
      expect((await soft.rateLimit('obs:rl2', { limit: 1, windowSeconds: 10 })).degraded).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(r.stats().outageMs).toBeGreaterThanOrEqual(100);
      await own.start();
      expect(await until(() => r.stats().reconnects === 1 && soft.stats().reconnects === 1)).toBe(true);
      const s = r.stats();
      expect(s).toMatchObject({ outages: 1, errors: { ERR_CONNECTION: 1 }, rateLimits: { allowed: 1, refused: 1, degraded: 0 }, connection: { state: 'up' } });
      expect(s.outageMs).toBeGreaterThanOrEqual(100);
      expect(soft.stats()).toMatchObject({ degraded: 2, rateLimits: { allowed: 0, refused: 0, degraded: 1 } });
    } finally {
      await r.disconnect();
      await soft.disconnect();
      await own.stop();
    }
  });

  test('metricsText() parses back with a Prometheus text parser, and agrees with stats()', async () => {
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, password: PASSWORD, logger: false, clientCache: true });
    try {
      await r.set('obs:m', SECRET);
      for (let i = 0; i < 5; i++) await r.get('obs:m');
      await r.lPush('obs:m', 'x').catch(() => {});
      const text = r.metricsText({ labels: { service: 'api' } });
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(PASSWORD);
      const families = Object.fromEntries(parse(text).map((m) => [m.name, m]));
      const s = r.stats();
      const value = (name, labels = {}) => Number(families[name].metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v)).value);
      expect(families.app_redis_commands_total.type).toBe('COUNTER');
      expect(value('app_redis_commands_total', { service: 'api' })).toBe(s.commands);
      expect(value('app_redis_errors_total', { code: 'ERR_REPLY' })).toBe(1);
      expect(value('app_redis_connection_up', { server_port: String(server.port) })).toBe(1);
      expect(value('app_redis_client_cache_hits_total')).toBe(s.clientCache.hits);
      expect(s.clientCache.hits).toBe(4);
      // (The parser drops a labelled histogram's _sum and _count: read the histogram unlabelled.)
      const plain = Object.fromEntries(parse(r.metricsText()).map((m) => [m.name, m]));
      const h = plain.app_redis_command_duration_seconds;
      expect(h.type).toBe('HISTOGRAM');
      expect(Number(h.metrics[0].count)).toBe(s.latencyMs.count);
      expect(Number(h.metrics[0].buckets['+Inf'])).toBe(s.latencyMs.count);
      const bounds = Object.keys(h.metrics[0].buckets).filter((b) => b !== '+Inf').map(Number).sort((a, b) => a - b);
      const counts = bounds.map((b) => Number(h.metrics[0].buckets[String(b)]));
      expect(counts).toEqual([...counts].sort((a, b) => a - b)); // cumulative
      expect(Number(h.metrics[0].sum)).toBeCloseTo(s.latencyMs.sum / 1000, 6);
    } finally {
      await r.disconnect();
    }
  });

  test('registerPromClient() serves the same metrics from a prom-client registry, and takes them back', async () => {
    const prom = require('prom-client');
    const { registerPromClient } = require('..');
    const register = new prom.Registry();
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, password: PASSWORD, logger: false });
    try {
      await r.set('obs:p', '1');
      const off = registerPromClient(r, register, { labels: { service: 'api' } });
      const text = await register.metrics();
      const families = Object.fromEntries(parse(text).map((m) => [m.name, m]));
      expect(families.app_redis_commands_total.metrics).toEqual([{ value: '1', labels: { service: 'api' } }]);
      expect(families.app_redis_command_duration_seconds.type).toBe('HISTOGRAM');
      expect(text).toContain('app_redis_command_duration_seconds_count{service="api"} 1\n');
      // The same text as metricsText() gives, family by family.
      const lines = (t) => t.trim().split('\n').filter((l) => l && !l.startsWith('app_redis_commands_in_flight{')).sort();
      expect(lines(text)).toEqual(lines(r.metricsText({ labels: { service: 'api' } })));
      off();
      expect(parse(await register.metrics())).toEqual([]);
      expect(() => registerPromClient(r, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    } finally {
      await r.disconnect();
    }
  });
});
