'use strict';
// Prometheus (README "Monitoring"): `redis.metricsText()` renders `redis.stats()` in the text
// exposition format, and `registerPromClient(redis, register)` adds the same metrics to a
// prom-client registry (read at each scrape). Names follow Prometheus's conventions: `_total`
// counters, base units (`_seconds`, `_bytes`).

/** Histogram bounds of `app_redis_command_duration_seconds`, in seconds. */
const BOUNDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The metric families of one `stats()` snapshot, in prom-client's `get()` shape:
 * `{ name, help, type, values: [{ value, labels, metricName? }] }`; `labels` are added to every
 * sample (e.g. `{ service: 'api' }`).
 */
function families(s, labels = {}, prefix = 'app_redis') {
  const L = (more) => ({ ...labels, ...more });
  const f = (name, type, help, values) => ({ name: `${prefix}_${name}`, type, help, values });
  const one = (value, more = {}) => [{ value, labels: L(more) }];
  const out = [
    f('commands_total', 'counter', 'Commands sent to Redis (a pipeline or transaction counts once), or failed before sending.', one(s.commands)),
    f('replies_total', 'counter', 'Commands settled with a reply (an error reply included).', one(s.replies)),
    f('degraded_total', 'counter', 'Commands settled with the documented degraded result while Redis was unreachable or disabled.', one(s.degraded)),
    f('errors_total', 'counter', 'Failed commands by error code.', Object.entries(s.errors).map(([code, n]) => ({ value: n, labels: L({ code }) }))),
    f('commands_in_flight', 'gauge', 'Commands sent or queued and not settled yet.', one(s.inFlight)),
  ];
  // Cumulative buckets from the fine ones: a fine bucket counts under the first bound at or
  // above its own upper bound.
  const lat = s.latencyMs;
  const cumulative = BOUNDS.map(() => 0);
  for (const [upperMs, n] of lat.buckets) {
    const i = BOUNDS.findIndex((b) => upperMs / 1000 <= b);
    if (i >= 0) cumulative[i] += n;
  }
  for (let i = 1; i < cumulative.length; i++) cumulative[i] += cumulative[i - 1];
  const hist = `${prefix}_command_duration_seconds`;
  out.push(f('command_duration_seconds', 'histogram', 'Time from a call to its settlement.', [
    ...BOUNDS.map((b, i) => ({ metricName: `${hist}_bucket`, value: cumulative[i], labels: L({ le: b }) })),
    { metricName: `${hist}_bucket`, value: lat.count, labels: L({ le: '+Inf' }) },
    { metricName: `${hist}_sum`, value: lat.sum / 1000, labels: L() },
    { metricName: `${hist}_count`, value: lat.count, labels: L() },
  ]));
  const c = s.connection;
  out.push(
    f('connection_up', 'gauge', 'Whether the connection to Redis (cluster mode: to each master) is up (1) or not (0).',
      (s.nodes && s.nodes.length ? s.nodes : [c]).map((n) => ({ value: n.state === 'up' ? 1 : 0, labels: L({ server_address: n.serverAddress, server_port: n.serverPort }) }))),
    f('reconnects_total', 'counter', 'Connections re-established after a loss.', one(s.reconnects)),
    f('outages_total', 'counter', 'Outages that ended.', one(s.outages)),
    f('outage_seconds_total', 'counter', 'Time spent without Redis (the current outage included).', one(s.outageMs / 1000)),
    f('lock_acquisitions_total', 'counter', 'withLock/withSemaphore calls by outcome: acquired, failed (never acquired), degraded (ran without a lease).', [
      ['acquired', s.locks.acquired], ['failed', s.locks.failed], ['degraded', s.locks.degraded],
    ].map(([outcome, v]) => ({ value: v, labels: L({ outcome }) }))),
    f('lock_waits_total', 'counter', 'Leases acquired after waiting (the acquiring try came more than 1 ms after the call).', one(s.locks.waited)),
    f('lock_wait_seconds_total', 'counter', 'Time withLock/withSemaphore calls waited before acquiring.', one(s.locks.waitMs / 1000)),
    f('locks_lost_total', 'counter', 'Leases lost while the callback ran.', one(s.locks.lost)),
    f('rate_limit_decisions_total', 'counter', 'Consuming rate-limit checks by decision.', ['allowed', 'refused', 'degraded'].map((d) => ({ value: s.rateLimits[d], labels: L({ decision: d }) }))),
  );
  if (s.clientCache) {
    const n = s.clientCache;
    out.push(
      f('client_cache_hits_total', 'counter', 'Reads answered from the near cache.', one(n.hits)),
      f('client_cache_misses_total', 'counter', 'Reads the near cache could have answered but did not hold.', one(n.misses)),
      f('client_cache_entries', 'gauge', 'Entries the near cache holds.', one(n.entries)),
      f('client_cache_bytes', 'gauge', 'About how many bytes the near cache holds.', one(n.bytes)),
      f('client_cache_evictions_total', 'counter', 'Entries let go to stay within the near cache\'s limits.', one(n.evictions)),
      f('client_cache_invalidations_total', 'counter', 'Keys Redis said changed.', one(n.invalidations)),
      f('client_cache_flushes_total', 'counter', 'Times the near cache dropped everything.', one(n.flushes)),
    );
  }
  return out;
}

const escapeLabel = (v) => String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const number = (v) => (v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : Number.isNaN(v) ? 'NaN' : String(v));

/** The text exposition format (version 0.0.4) of `families`. */
function render(list) {
  const lines = [];
  for (const m of list) {
    lines.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${m.name} ${m.type}`);
    for (const v of m.values) {
      const l = Object.entries(v.labels || {}).map(([k, x]) => `${k}="${escapeLabel(x)}"`).join(',');
      lines.push(`${v.metricName || m.name}${l ? `{${l}}` : ''} ${number(v.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function install(binding) {
  const proto = binding.RedisService.prototype;
  if (!Object.prototype.hasOwnProperty.call(proto, 'metricsText')) {
    Object.defineProperty(proto, 'metricsText', {
      configurable: true,
      writable: true,
      value: function metricsText(options = {}) {
        // Through the prototype's stats(): a wrong receiver gets its ERR_INVALID_ARGUMENT.
        const s = Reflect.apply(proto.stats, this, []);
        return render(families(s, options && options.labels, options && options.prefix));
      },
    });
  }
  binding.registerPromClient = registerPromClient;
}

/**
 * Adds `redis`'s metrics to a prom-client `register` (read from `redis.stats()` at each
 * scrape). `options.labels` are added to every sample (to tell several services apart).
 * Returns a function that removes them again.
 */
function registerPromClient(redis, register, options = {}) {
  if (!register || typeof register.registerMetric !== 'function') {
    const e = new TypeError('registerPromClient(redis, register): register must be a prom-client Registry (e.g. require("prom-client").register)');
    e.code = 'ERR_INVALID_ARGUMENT';
    throw e;
  }
  const initial = families(redis.stats(), options.labels, options.prefix);
  const names = initial.map((m) => m.name);
  // One stats() read per scrape, shared by the families.
  let snapshot = null;
  const read = () => {
    if (!snapshot) {
      snapshot = families(redis.stats(), options.labels, options.prefix);
      queueMicrotask(() => { snapshot = null; });
    }
    return snapshot;
  };
  for (const first of initial) {
    const { name } = first;
    register.registerMetric({
      name,
      help: first.help,
      type: first.type,
      get: () => read().find((m) => m.name === name) || { name, help: first.help, type: first.type, values: [] },
      reset() {},
    });
  }
  return () => names.forEach((n) => register.removeSingleMetric(n));
}

module.exports = { install, families, render, registerPromClient };
