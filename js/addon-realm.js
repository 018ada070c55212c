// Evaluated by the addon itself when it loads (src/binding/mod.rs embeds this file with
// include_str!), in the realm the addon was loaded in, once per environment. Not required by any
// module: it must run in the addon's own realm, where the errors the native methods throw are made
// (`e instanceof TypeError` in a jest sandbox would test the sandbox's TypeError instead).
//
// Glue the class syntax cannot express: methods that take a variable number of arguments get a
// thin wrapper that packs the extra ones into one array for the native method, `ScanIterator`
// becomes async-iterable, a wrong `this` becomes ERR_INVALID_ARGUMENT, plus EventBus and the
// seeds' method aliases. `checked` lists the methods whose entry points test `this` themselves.
// Returns the helpers the addon keeps: `withLock`'s callback context.
(function (exports, checked) {
  // The original AbortController, taken now: a lock's signal is ours whatever user code does to
  // the global later.
  const Controller = AbortController;
  const variadic = { del: 0, unlink: 0, exists: 0, mget: 0, hDel: 1, hmGet: 1, lPush: 1, rPush: 1,
    sAdd: 1, sRem: 1, zRem: 1, set: 2, call: 1, eval: 2, invalidate: 0 };
  for (const proto of [exports.RedisService.prototype, exports.Pipeline.prototype]) {
    for (const name of Object.keys(variadic)) {
      const native = proto[name];
      const fixed = variadic[name];
      if (typeof native !== 'function') continue;
      // No item at all (`del()`, `sAdd(key)`) passes an empty array: the empty call's answer
      // (see src/binding/commands, `B::keys`); an explicit `undefined` stays an argument to refuse.
      const wrapped = { [name](...args) {
        if (args.length > fixed + 1) return native.call(this, ...args.slice(0, fixed), args.slice(fixed));
        if (args.length === fixed) return native.call(this, ...args, []);
        return native.apply(this, args);
      } }[name];
      Object.defineProperty(proto, name, { value: wrapped, writable: true, configurable: true });
    }
  }
  exports.ScanIterator.prototype[Symbol.asyncIterator] = function () { return this; };
  // A wrong `this` is ERR_INVALID_ARGUMENT on every method and getter. The direct entry points
  // (`checked`) test it themselves; the generated ones fail in V8's receiver check ('Illegal
  // invocation') or in napi-rs's unwrap (code 'InvalidArg') before any of our code runs, so
  // their failure is renamed here. Nothing is added to a call that succeeds but a try block.
  const apply = Reflect.apply;
  const wrongThis = (cls, name) => {
    const e = new TypeError(`${name}(): must be called on a ${cls}`);
    e.code = 'ERR_INVALID_ARGUMENT';
    return e;
  };
  for (const cls of ['RedisService', 'Pipeline', 'ScanIterator', 'Subscription']) {
    const proto = exports[cls].prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || checked.includes(`${cls}.${name}`)) continue;
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (typeof d.value === 'function') {
        const native = d.value;
        const wrapped = { [name](...args) {
          try {
            return apply(native, this, args);
          } catch (e) {
            throw e instanceof TypeError && e.message === 'Illegal invocation' ? wrongThis(cls, name) : e;
          }
        } }[name];
        Object.defineProperty(proto, name, { ...d, value: wrapped });
      } else if (typeof d.get === 'function') {
        const native = d.get;
        const get = { [name]() {
          try {
            return apply(native, this, []);
          } catch (e) {
            throw e && (e.code === 'InvalidArg' || e.message === 'Illegal invocation') ? wrongThis(cls, name) : e;
          }
        } }[name];
        Object.defineProperty(proto, name, { ...d, get });
      }
    }
  }
  // Seed 000's distributed event bus: JSON events over pub/sub.
  class EventBus {
    constructor(redis, { prefix = 'events:' } = {}) {
      if (!redis || typeof redis.publish !== 'function') throw new TypeError('EventBus: argument `redis` must be a RedisService');
      this.redis = redis;
      this.prefix = prefix;
    }
    emit(event, payload) {
      return this.redis.publish(this.prefix + event, JSON.stringify(payload === undefined ? null : payload));
    }
    on(event, handler, options) {
      return this.redis.subscribe(this.prefix + event, (message) => handler(JSON.parse(message), event), options);
    }
  }
  exports.EventBus = EventBus;
  // The seeds' spellings.
  const aliases = { getLockTTL: 'getLockTtl', deleteSession: 'destroySession', extendSession: 'refreshSession',
    deleteUserSessions: 'destroyUserSessions', getUserSessionCount: 'countUserSessions' };
  for (const [alias, name] of Object.entries(aliases)) {
    Object.defineProperty(exports.RedisService.prototype, alias, {
      value: exports.RedisService.prototype[name], writable: true, configurable: true });
  }
  // `withLock`'s callback argument. `signal` is made on first read: an AbortController and its
  // signal cost more than the rest of a lock cycle's JavaScript, and most callbacks never look.
  // A lease lost before the first read gives a signal that is already aborted.
  class LockContext {
    #controller;
    #reason;
    constructor(token, fencingToken, degraded) {
      this.token = token;
      this.fencingToken = fencingToken;
      this.degraded = degraded;
    }
    get signal() {
      if (this.#controller === undefined) {
        this.#controller = new Controller();
        if (this.#reason !== undefined) this.#controller.abort(this.#reason);
      }
      return this.#controller.signal;
    }
    static abort(ctx, reason) {
      if (ctx.#reason !== undefined) return;
      ctx.#reason = reason;
      if (ctx.#controller !== undefined) ctx.#controller.abort(reason);
    }
  }
  return {
    lockContext: (token, fencingToken, degraded) => new LockContext(token, fencingToken, degraded),
    abortLockContext: LockContext.abort,
  };
})
