'use strict';
// What observing costs (`npm run bench`, "Observability" rows): the same calls with no
// subscriber on the app-redis channels, with one tracing-channel subscriber (five empty
// handlers), and with @app/redis/otel feeding the OpenTelemetry SDK (spans through a batch
// processor to an exporter that drops them, the duration histogram aggregated). The channels
// are process-wide, so each client switches them to its own mode before it is measured.
const dc = require('node:diagnostics_channel');
const { ourOptions } = require('./connect');
const { RedisService } = require('..');

let current = 'none';
let undo = () => {};

function setUp(mode) {
  if (mode === 'channel') {
    const h = { start() {}, end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
    const tc = dc.tracingChannel('app-redis:command');
    tc.subscribe(h);
    return () => tc.unsubscribe(h);
  }
  if (mode === 'otel') {
    const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
    const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
    const { RedisInstrumentation } = require('../js/otel.js');
    const drop = { export(spans, done) { done({ code: 0 }); }, shutdown: async () => {} };
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop)] });
    class Reader extends MetricReader { async onForceFlush() {} async onShutdown() {} }
    const meterProvider = new MeterProvider({ readers: [new Reader()] });
    const otel = new RedisInstrumentation({ tracerProvider, meterProvider });
    return () => otel.disable();
  }
  return () => {};
}

function mode(m) {
  if (m === current) return;
  undo();
  undo = setUp(m);
  current = m;
}

function client(name, m, server) {
  return {
    name,
    async open() {
      this.c = await RedisService.connect(ourOptions(server));
      await this.c.set('bench:obs', 'v'.repeat(100));
    },
    async close() {
      mode('none');
      await this.c.disconnect();
    },
    ops() {
      mode(m);
      const c = this.c;
      return { get: (k) => c.get(k) };
    },
  };
}

function observabilityClients(server) {
  return [
    client('@app/redis, no subscriber', 'none', server),
    client('with a channel subscriber', 'channel', server),
    client('with OpenTelemetry', 'otel', server),
  ];
}

const IN_FLIGHT = 256;
const observabilityScenarios = [
  { name: 'observed get, sequential', unit: async (o) => { await o.get('bench:obs'); return 1; } },
  {
    name: `observed get, ${IN_FLIGHT} in flight`,
    unit: async (o) => {
      const ps = new Array(IN_FLIGHT);
      for (let i = 0; i < IN_FLIGHT; i++) ps[i] = o.get('bench:obs');
      await Promise.all(ps);
      return IN_FLIGHT;
    },
  },
];

module.exports = { observabilityClients, observabilityScenarios };
