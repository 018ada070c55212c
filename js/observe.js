'use strict';
// Observability through `node:diagnostics_channel` (README "Monitoring"): the channels APMs and
// `@app/redis/otel` subscribe to.
//
// - `app-redis:command`, a tracing channel: one trace per call (`start`, `end`, then `asyncStart`,
//   `asyncEnd`, and `error` with the rejection), a pipeline or transaction one trace per batch.
//   As `TracingChannel#tracePromise` publishes them, except that the reply is not put on the
//   context: no value ever is.
// - `app-redis:lock`, `app-redis:rate-limit`, `app-redis:connection`: one message per event.
//
// Our commands go straight from JavaScript into the addon, so nothing could wrap them from the
// outside; this file wraps them itself, and only while one of these channels has a subscriber:
// it watches the channels' `subscribe`/`bindStore` (and their undoing) and puts the traced methods
// on the prototypes when the first subscriber comes, the plain ones back when the last one goes.
// With no subscriber, a call costs exactly what it costs without this file.
//
// A trace's context carries where the command went and what it was, never its arguments'
// values: `command` (the Redis command, upper case, or the toolkit method's name for sessions,
// locks, rate limits and `wrap`), `keyCount`, `batchSize`, `database`, `serverAddress`,
// `serverPort`, `clientName`; `error` (with its `code`) when it failed.

const dc = require('node:diagnostics_channel');

const STATE = Symbol.for('@app/redis.observe');

/** Methods that send one Redis command: the command, when it is not the method's name. */
const COMMANDS = {
  append: 0, decr: 0, decrBy: 0, del: 0, eval: 0, exists: 0, expire: 0, expireAt: 0, get: 0,
  getBuffer: 'GET', getJson: 'GET', getdel: 0, getex: 0, hDel: 0, hExists: 0, hGet: 0, hGetAll: 0,
  hIncrBy: 0, hKeys: 0, hLen: 0, hSet: 0, hVals: 0, hmGet: 0, incr: 0, incrBy: 0, incrByFloat: 0,
  lIndex: 0, lLen: 0, lPop: 0, lPush: 0, lRange: 0, lRem: 0, lTrim: 0, mget: 0, mset: 0, persist: 0,
  pexpire: 0, psetex: 0, pttl: 0, publish: 0, rPop: 0, rPush: 0, rename: 0, sAdd: 0, sCard: 0,
  sIsMember: 0, sMembers: 0, sRem: 0, scan: 0, set: 0, setJson: 'SET', setex: 0, strlen: 0, ttl: 0,
  type: 0, unlink: 0, zAdd: 0, zCard: 0, zIncrBy: 0, zRange: 0, zRangeByScore: 0,
  zRangeWithScores: 'ZRANGE', zRank: 0, zRem: 0, zRevRange: 0, zScore: 0, ping: 0, call: 0,
};

/** The toolkit's own operations (traced under the method's name): one key or id each. */
const FEATURES = [
  'getRateLimit', 'rateLimit', 'rateLimitMany', 'resetRateLimit', 'throttlerIncrement',
  'acquireLock', 'acquireLockWithFencing', 'acquireSemaphore', 'extendLock', 'extendSemaphore',
  'getLockTtl', 'getLockTTL', 'isLocked', 'releaseLock', 'releaseSemaphore', 'withLock',
  'withSemaphore', 'invalidate', 'invalidatePrefix', 'wrap', 'countUserSessions',
  'getUserSessionCount', 'createSession', 'destroySession', 'deleteSession',
  'destroyUserSessions', 'deleteUserSessions', 'getSession', 'listUserSessions', 'refreshSession',
  'extendSession', 'setSession', 'updateSession',
];

/** Commands whose arguments are all keys. */
const ALL_KEYS = new Set(['mget', 'del', 'exists', 'unlink']);
const NO_KEY = new Set(['ping', 'publish', 'scan']);

function keyCount(method, args) {
  if (NO_KEY.has(method)) return 0;
  if (ALL_KEYS.has(method)) {
    let n = 0;
    for (const a of args) n += Array.isArray(a) ? a.length : 1;
    return n;
  }
  if (method === 'mset') {
    const e = args[0];
    if (Array.isArray(e)) return Array.isArray(e[0]) ? e.length : Math.floor(e.length / 2);
    return e && typeof e === 'object' ? Object.keys(e).length : 0;
  }
  if (method === 'eval') {
    const n = args[1];
    if (typeof n === 'number') return n;
    return n && Array.isArray(n.keys) ? n.keys.length : 0;
  }
  if (method === 'rename') return 2;
  if (method === 'call') return args.length > 1 ? 1 : 0;
  return args.length > 0 ? 1 : 0;
}

function install(binding) {
  const { RedisService, Pipeline } = binding;
  const channels = binding[STATE] || (binding[STATE] = setUp(RedisService, Pipeline));
  // The addon publishes connection events through this realm's function (the last realm loaded).
  binding[Symbol.for('@app/redis.connectionEvent')] = (event) => {
    channels.moved();
    if (channels.connection.hasSubscribers) channels.connection.publish(event);
  };
}

function setUp(RedisService, Pipeline) {
  const command = dc.tracingChannel('app-redis:command');
  const lock = dc.channel('app-redis:lock');
  const rateLimit = dc.channel('app-redis:rate-limit');
  const connection = dc.channel('app-redis:connection');
  const watched = [command.start, command.end, command.asyncStart, command.asyncEnd, command.error, lock, rateLimit];
  const proto = RedisService.prototype;
  const pproto = Pipeline.prototype;
  const now = () => performance.now();
  /** Each pipeline's service and kind (made while the channels had subscribers). */
  const batches = new WeakMap();
  let plain = null; // the prototypes' own methods while the traced ones are in place

  const traced = {};

  function context(service, name, args, cmd) {
    const ctx = { command: cmd, keyCount: keyCount(name, args), batchSize: 1 };
    return target(service, ctx);
  }

  // Each service's target, asked of the addon once per connection event (a Sentinel failover
  // moves it; a connection event of any service asks every service again).
  const targets = new WeakMap();
  let generation = 0;
  const moved = () => { generation++; };

  function target(service, ctx) {
    let cached = targets.get(service);
    if (cached === undefined || cached.generation !== generation) {
      let t = null;
      try {
        t = service.__traceTarget();
      } catch {
        // not a RedisService: the call itself reports it
      }
      cached = { generation, t };
      if (t) targets.set(service, cached);
    }
    const { t } = cached;
    if (t) {
      ctx.database = t.database;
      ctx.serverAddress = t.serverAddress;
      ctx.serverPort = t.serverPort;
      if (t.clientName !== undefined) ctx.clientName = t.clientName;
      if (t.cluster) ctx.cluster = true;
    }
    return ctx;
  }

  const { start, end, asyncStart, asyncEnd, error } = command;
  const then = Promise.prototype.then;
  /** Whether the command channel has a subscriber (TracingChannel#hasSubscribers, spelled out). */
  const tracing = () => start.hasSubscribers || end.hasSubscribers || asyncStart.hasSubscribers || asyncEnd.hasSubscribers || error.hasSubscribers;

  /**
   * Runs `fn` as one trace: what `TracingChannel#tracePromise` does, except that the reply is
   * not put on the context (no value ever is).
   */
  function trace(fn, ctx, self, args) {
    if (!tracing()) return Reflect.apply(fn, self, args);
    return start.runStores(ctx, () => {
      let p;
      try {
        p = Reflect.apply(fn, self, args);
      } catch (err) {
        ctx.error = err;
        error.publish(ctx);
        throw err;
      } finally {
        end.publish(ctx);
      }
      return Reflect.apply(then, p, [(v) => {
        asyncStart.publish(ctx);
        asyncEnd.publish(ctx);
        return v;
      }, (err) => {
        ctx.error = err;
        error.publish(ctx);
        asyncStart.publish(ctx);
        asyncEnd.publish(ctx);
        throw err;
      }]);
    });
  }

  for (const [name, cmd] of Object.entries(COMMANDS)) {
    traced[name] = (native) => ({
      [name](...args) {
        if (!tracing()) return Reflect.apply(native, this, args);
        const c = name === 'call' ? String(args[0] ?? '').toUpperCase() : cmd || name.toUpperCase();
        return trace(native, context(this, name, args, c), this, args);
      },
    })[name];
  }
  for (const name of FEATURES) {
    traced[name] = (native) => ({
      [name](...args) {
        if (!tracing()) return Reflect.apply(native, this, args);
        return trace(native, context(this, name, args, name), this, args);
      },
    })[name];
  }

  // Locks: acquired (with how long it waited), released (how long it was held), lost, failed.
  for (const [name, kind] of [['withLock', 'lock'], ['withSemaphore', 'semaphore']]) {
    const inner = traced[name];
    traced[name] = (native) => {
      const t = inner(native);
      return ({
        [name](key, ...rest) {
          if (!lock.hasSubscribers) return Reflect.apply(t, this, [key, ...rest]);
          const at = name === 'withLock' ? 0 : 1; // withSemaphore(key, limit, fn, ...)
          const fn = rest[at];
          if (typeof fn !== 'function') return Reflect.apply(t, this, [key, ...rest]);
          const started = now();
          let acquired;
          rest[at] = function (ctx) {
            acquired = now();
            lock.publish({ event: 'acquired', kind, key: String(key), waitMs: acquired - started, degraded: Boolean(ctx && ctx.degraded) });
            if (ctx && ctx.signal) {
              ctx.signal.addEventListener('abort', () => {
                lock.publish({ event: 'lost', kind, key: String(key), heldMs: now() - acquired, code: ctx.signal.reason && ctx.signal.reason.code });
              }, { once: true });
            }
            return Reflect.apply(fn, this, arguments);
          };
          const p = Reflect.apply(t, this, [key, ...rest]);
          p.then(() => {
            if (acquired !== undefined) lock.publish({ event: 'released', kind, key: String(key), heldMs: now() - acquired });
          }, (err) => {
            if (acquired === undefined) lock.publish({ event: 'failed', kind, key: String(key), waitMs: now() - started, code: err && err.code });
            else lock.publish({ event: 'released', kind, key: String(key), heldMs: now() - acquired, code: err && err.code });
          });
          return p;
        },
      })[name];
    };
  }
  /** While `channel` has subscribers, `watch(key, rest, promise)` sees each call of `name`. */
  function watching(name, channel, watch) {
    const inner = traced[name];
    traced[name] = (native) => {
      const t = inner(native);
      return ({
        [name](key, ...rest) {
          const p = Reflect.apply(t, this, [key, ...rest]);
          if (channel.hasSubscribers) watch(String(key), rest, p);
          return p;
        },
      })[name];
    };
  }

  for (const [name, ok] of [['acquireLock', 'acquired'], ['acquireLockWithFencing', 'acquired'], ['acquireSemaphore', 'acquired'], ['releaseLock', 'released'], ['releaseSemaphore', 'released']]) {
    const kind = name.endsWith('Semaphore') ? 'semaphore' : 'lock';
    watching(name, lock, (key, rest, p) => {
      const started = now();
      p.then((v) => {
        const waitMs = now() - started;
        if (v === null || v === false) lock.publish({ event: ok === 'acquired' ? 'failed' : 'not-held', kind, key, waitMs });
        else lock.publish(ok === 'acquired' ? { event: 'acquired', kind, key, waitMs } : { event: 'released', kind, key });
      }, (err) => lock.publish({ event: 'failed', kind, key, waitMs: now() - started, code: err && err.code }));
    });
  }

  // Rate limits: the decision.
  for (const name of ['rateLimit', 'rateLimitMany', 'throttlerIncrement']) {
    watching(name, rateLimit, (key, rest, p) => {
      p.then((r) => {
        if (!r) return;
        rateLimit.publish(name === 'throttlerIncrement'
          // throttlerIncrement(key, ttlMs, limit, ...)
          ? { key, allowed: !r.isBlocked, remaining: Math.max(0, (rest[1] ?? 0) - r.totalHits), limit: rest[1], degraded: false }
          : { key, allowed: r.allowed, remaining: r.remaining, limit: r.limit, retryAfterMs: r.retryAfterMs, degraded: Boolean(r.degraded) });
      }, () => {});
    });
  }

  // Pipelines and transactions: one trace per batch.
  const batchOf = (kind, native) => ({
    [kind]() {
      const p = Reflect.apply(native, this, arguments);
      if (p && typeof p === 'object') batches.set(p, { service: this, kind: kind === 'multi' ? 'MULTI' : 'PIPELINE' });
      return p;
    },
  })[kind];
  const exec = (native) => function exec() {
    const b = batches.get(this);
    if (!tracing()) return Reflect.apply(native, this, arguments);
    const ctx = { command: b ? b.kind : 'PIPELINE', keyCount: 0, batchSize: this.length };
    if (b) target(b.service, ctx);
    return trace(native, ctx, this, arguments);
  };

  function swap(on) {
    if (on === (plain !== null)) return;
    if (on) {
      plain = { proto: {}, pproto: {} };
      for (const name of Object.keys(traced)) {
        const d = Object.getOwnPropertyDescriptor(proto, name);
        if (!d || typeof d.value !== 'function') continue;
        plain.proto[name] = d;
        Object.defineProperty(proto, name, { ...d, value: traced[name](d.value) });
      }
      for (const kind of ['pipeline', 'multi']) {
        const d = Object.getOwnPropertyDescriptor(proto, kind);
        if (!d || typeof d.value !== 'function') continue;
        plain.proto[kind] = d;
        Object.defineProperty(proto, kind, { ...d, value: batchOf(kind, d.value) });
      }
      const d = Object.getOwnPropertyDescriptor(pproto, 'exec');
      if (d && typeof d.value === 'function') {
        plain.pproto.exec = d;
        Object.defineProperty(pproto, 'exec', { ...d, value: exec(d.value) });
      }
    } else {
      for (const [name, d] of Object.entries(plain.proto)) Object.defineProperty(proto, name, d);
      for (const [name, d] of Object.entries(plain.pproto)) Object.defineProperty(pproto, name, d);
      plain = null;
    }
  }

  const refresh = () => swap(watched.some((c) => c.hasSubscribers));
  // Each channel tells us when it gains or loses a subscriber (or a bound store).
  for (const c of watched) {
    for (const m of ['subscribe', 'unsubscribe', 'bindStore', 'unbindStore']) {
      Object.defineProperty(c, m, {
        configurable: true,
        writable: true,
        value: function () {
          const r = Reflect.apply(Object.getPrototypeOf(this)[m], this, arguments);
          refresh();
          return r;
        },
      });
    }
  }
  refresh();
  return { command, lock, rateLimit, connection, moved };
}

module.exports = { install };
