'use strict';
// `@app/redis/testing`: isolated RedisService instances for an app's own jest or vitest suites,
// against a real Redis. Shared by testing.js (require) and testing.mjs (import); the NestJS
// module is defined from whichever Nest the entry point loaded.
const crypto = require('node:crypto');

const COMPOSE_HINT = 'Start one with `docker compose up -d` (the docker-compose.yml shipped in node_modules/@app/redis works) '
  + 'and set REDIS_URL=redis://localhost:6379, or install redis-server and add the package\'s globalSetup '
  + '(jest: globalSetup: \'@app/redis/testing/global-setup\', globalTeardown: \'@app/redis/testing/global-teardown\'; '
  + 'vitest: globalSetup: [\'@app/redis/testing/global-setup\']).';

/** The test runner's worker: jest's JEST_WORKER_ID, vitest's VITEST_POOL_ID, else the process id. */
function workerId() {
  return process.env.JEST_WORKER_ID || process.env.VITEST_POOL_ID || process.env.VITEST_WORKER_ID || String(process.pid);
}

/** Where the tests' Redis is: REDIS_URL (set by the user, or by the global setup's own server). */
function testUrl() {
  const url = process.env.REDIS_URL;
  if (!url) {
    const e = new Error(`@app/redis/testing: no Redis to test against: REDIS_URL is not set. ${COMPOSE_HINT}`);
    e.code = 'ERR_NO_TEST_REDIS';
    throw e;
  }
  return url;
}

function defineTesting(binding) {
  const { RedisService } = binding;

  /**
   * A connected `RedisService` of its own: every key it touches (plain keys, locks, rate limits,
   * sessions, cache entries, `scan` patterns) is under a prefix unique to this worker and call,
   * after any `keyPrefix` in `options`. `cleanup()` on it deletes exactly those keys and
   * disconnects. The server is `options.url`, else REDIS_URL.
   */
  async function createTestRedis(options = {}) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      const e = new TypeError('createTestRedis(options): options must be an object');
      e.code = 'ERR_INVALID_ARGUMENT';
      throw e;
    }
    const url = options.url || (options.host || options.cluster || options.sentinel ? undefined : testUrl());
    const prefix = `${options.keyPrefix || ''}test:${workerId()}:${crypto.randomBytes(6).toString('hex')}:`;
    const redis = new RedisService({ logger: false, ...options, ...(url ? { url } : {}), keyPrefix: prefix });
    try {
      await redis.connect();
    } catch (e) {
      await redis.disconnect().catch(() => {});
      if (e && e.code === 'ERR_CONNECTION') {
        e.message = `@app/redis/testing: cannot reach the tests' Redis: ${e.message}. ${COMPOSE_HINT}`;
      }
      throw e;
    }
    Object.defineProperty(redis, 'testPrefix', { value: prefix, enumerable: true });
    let cleaning = null;
    const cleanup = () => {
      if (!cleaning) cleaning = (async () => {
        if (redis.isConnected) {
          const batch = [];
          for await (const key of redis.scanIterator('*', 1000)) {
            batch.push(key);
            if (batch.length >= 1000) await redis.unlink(batch.splice(0));
          }
          if (batch.length) await redis.unlink(batch);
        }
        await redis.disconnect();
      })();
      return cleaning;
    };
    /** Deletes every key under this instance's prefix (SCAN + UNLINK, never FLUSHDB), then disconnects (once). */
    Object.defineProperty(redis, 'cleanup', { value: cleanup });
    // As a Nest provider, the service's own shutdown hooks (which disconnect) clean up first.
    Object.defineProperty(redis, 'onModuleDestroy', { value: cleanup });
    Object.defineProperty(redis, 'onApplicationShutdown', { value: cleanup });
    return redis;
  }

  return { createTestRedis };
}

/**
 * `RedisTestingModule.forRoot(options?)`: provides an isolated `RedisService` (from
 * `createTestRedis`) under the same token as `RedisModule` (global by default, so the app's
 * modules get it), and cleans it up on `app.close()`.
 */
function defineNestTesting(common, nest, createTestRedis) {
  const { Module, Injectable } = common;
  const CLEANUP = '@app/redis:testing-cleanup';

  class TestConnections {
    constructor() { this.services = new Set(); }
    add(service) { this.services.add(service); return service; }
    async onApplicationShutdown() {
      const all = [...this.services];
      this.services.clear();
      await Promise.all(all.map((s) => s.cleanup()));
    }
  }
  Injectable()(TestConnections);

  class RedisTestingModule {
    static forRoot(options = {}) {
      const { isGlobal = true, name, ...redisOptions } = options || {};
      const token = nest.getRedisToken(name);
      return {
        module: RedisTestingModule,
        global: !!isGlobal,
        providers: [
          { provide: CLEANUP, useClass: TestConnections },
          {
            provide: token,
            inject: [CLEANUP],
            useFactory: async (connections) => connections.add(await createTestRedis(redisOptions)),
          },
        ],
        exports: [token],
      };
    }
  }
  Module({})(RedisTestingModule);
  return { RedisTestingModule };
}

module.exports = { defineTesting, defineNestTesting, testUrl, workerId, COMPOSE_HINT };
