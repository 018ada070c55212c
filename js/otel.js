'use strict';
// `@app/redis/otel`: OpenTelemetry spans and metrics for @app/redis, from its diagnostics
// channels (js/observe.js), following OpenTelemetry's semantic conventions for Redis:
//
// - a CLIENT span per command (per pipeline or transaction: one, with
//   `db.operation.batch.size`), named after the command, a child of the caller's active span;
//   attributes `db.system.name` (`redis`), `db.operation.name`, `db.namespace` (the database
//   index), `server.address`, `server.port`, and on failure `error.type` (our `code`, such as
//   `ERR_CONNECTION`) with the span's status set to ERROR;
// - the `db.client.operation.duration` histogram (seconds), with the same attributes.
//
// No argument value, reply or credential ever reaches a span or a metric. `@opentelemetry/api`
// is an optional peer dependency: install it (an OpenTelemetry SDK brings it).

const dc = require('node:diagnostics_channel');

let api;
try {
  api = require('@opentelemetry/api');
} catch (e) {
  if (!e || e.code !== 'MODULE_NOT_FOUND') throw e;
  throw new Error('@app/redis/otel needs @opentelemetry/api: npm install @opentelemetry/api (an OpenTelemetry SDK set-up brings it)');
}
// The channels exist once the package is loaded.
require('../index.js');

const NAME = '@app/redis';
const VERSION = require('../package.json').version;
/** Semantic conventions' advice for `db.client.operation.duration`. */
const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

function attributes(ctx) {
  const a = { 'db.system.name': 'redis', 'db.operation.name': ctx.command };
  if (ctx.database !== undefined) a['db.namespace'] = String(ctx.database);
  if (ctx.serverAddress !== undefined) a['server.address'] = ctx.serverAddress;
  if (ctx.serverPort !== undefined) a['server.port'] = ctx.serverPort;
  if (ctx.batchSize > 1) a['db.operation.batch.size'] = ctx.batchSize;
  return a;
}

class RedisInstrumentation {
  /**
   * @param {{ tracerProvider?: object, meterProvider?: object, enabled?: boolean }} [options]
   * Providers default to the globally registered ones (`api.trace`, `api.metrics`).
   */
  constructor(options = {}) {
    const bad = (what) => {
      const e = new TypeError(`new RedisInstrumentation(options): ${what}`);
      e.code = 'ERR_INVALID_ARGUMENT';
      return e;
    };
    if (options === null || typeof options !== 'object') throw bad('options must be an object');
    if (options.tracerProvider !== undefined && typeof (options.tracerProvider && options.tracerProvider.getTracer) !== 'function') {
      throw bad('options.tracerProvider must be a TracerProvider (with getTracer())');
    }
    if (options.meterProvider !== undefined && typeof (options.meterProvider && options.meterProvider.getMeter) !== 'function') {
      throw bad('options.meterProvider must be a MeterProvider (with getMeter())');
    }
    this._options = options;
    this._spans = new WeakMap();
    this._handlers = null;
    if (options.enabled !== false) this.enable();
  }

  /** Starts turning the channels' traces into spans and measurements. */
  enable() {
    if (this._handlers) return;
    const tracer = (this._options.tracerProvider || api.trace).getTracer(NAME, VERSION);
    const meter = (this._options.meterProvider || api.metrics).getMeter(NAME, VERSION);
    const duration = meter.createHistogram('db.client.operation.duration', {
      description: 'Duration of Redis client operations',
      unit: 's',
      advice: { explicitBucketBoundaries: BUCKETS },
    });
    const spans = this._spans;
    this._handlers = {
      start(ctx) {
        const attrs = attributes(ctx);
        const span = tracer.startSpan(ctx.command, { kind: api.SpanKind.CLIENT, attributes: attrs }, api.context.active());
        spans.set(ctx, { span, attrs, started: performance.now() });
      },
      error(ctx) {
        const s = spans.get(ctx);
        if (!s) return;
        const type = (ctx.error && ctx.error.code) || (ctx.error && ctx.error.name) || '_OTHER';
        s.attrs['error.type'] = type;
        s.span.setAttribute('error.type', type);
        s.span.setStatus({ code: api.SpanStatusCode.ERROR, message: type });
      },
      asyncEnd(ctx) {
        const s = spans.get(ctx);
        if (!s) return;
        spans.delete(ctx);
        s.span.end();
        duration.record((performance.now() - s.started) / 1000, s.attrs);
      },
      end() {},
      asyncStart() {},
    };
    dc.tracingChannel('app-redis:command').subscribe(this._handlers);
  }

  /** Stops (spans already started still end). */
  disable() {
    if (!this._handlers) return;
    dc.tracingChannel('app-redis:command').unsubscribe(this._handlers);
    this._handlers = null;
  }
}

module.exports = { RedisInstrumentation };
