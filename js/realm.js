'use strict';
// Defaults `env` to the caller's `process.env` for `RedisService.fromEnv()` and
// `isRedisConfigured()`, and the default logger to the caller's `console`. The addon only sees the `process` of the realm it was loaded in; a
// jest or `vm` sandbox has its own `process.env` (jest copies it per test file), so a test that
// sets `process.env.REDIS_URL` would otherwise be read from the wrong object. index.js (generated
// by `npm run build`) calls this with the native binding; this file runs in the caller's realm.

const NATIVE = Symbol.for('@app/redis.native');

function install(binding) {
  const { RedisService } = binding;
  // The native binding is shared between realms: keep its own functions once, wrap them again per realm.
  const native = binding[NATIVE] || (binding[NATIVE] = {
    fromEnv: RedisService.fromEnv,
    isRedisConfigured: binding.isRedisConfigured,
  });
  RedisService.fromEnv = function fromEnv(env, overrides) {
    return native.fromEnv.call(this, env === undefined ? process.env : env, overrides);
  };
  // The near cache's hits answered without calling in (once per process: the prototype is shared).
  require('./near-mirror.js').install(RedisService);
  // The diagnostics channels (installs its traced methods only while they have subscribers).
  require('./observe.js').install(binding);
  // metricsText() and registerPromClient().
  require('./metrics.js').install(binding);
  // The default logger is this realm's console (jest's, with its spies and buffering, in a test).
  binding[Symbol.for('@app/redis.console')] = console;
  binding.isRedisConfigured = function isRedisConfigured(env) {
    return native.isRedisConfigured(env === undefined ? process.env : env);
  };
}

module.exports = { install };
