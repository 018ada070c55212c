'use strict';
// NestJS integration for @app/redis: `RedisModule` (forRoot / forRootAsync, named connections),
// `@InjectRedis()`, the terminus health indicator, the `@RateLimit()` decorator with its guard,
// and a storage for @nestjs/throttler. Glue only: every operation is the Rust core's.
//
// The one implementation behind both entry points: `nestjs.js` (require, Nest 10/11) and
// `nestjs.mjs` (import, Nest 12 ships ES modules only) each load @nestjs/common, @nestjs/core and,
// when installed, @nestjs/terminus their own way and pass them here. Nothing here loads a Nest
// module.

const { checkHeaderSet, rateLimitHeaders } = require('./rate-limit-headers');

/**
 * @param {object} common   the `@nestjs/common` module
 * @param {object} core     the `@nestjs/core` module
 * @param {object|null} terminus  the `@nestjs/terminus` module, or null when it is not installed
 * @param {object} binding  the `@app/redis` main entry
 */
function defineNest(common, core, terminus, binding) {
  const { Injectable, Inject, Module, SetMetadata, HttpException, HttpStatus } = common;
  const { Reflector } = core;
  const { RedisService, EventBus } = binding;

  const RATE_LIMIT_OPTIONS = 'app-redis:rate-limit';

  /**
   * Limits a controller or route: `@RateLimit({ limit: 10, windowMs: 60_000 })`, enforced by
   * `RateLimitGuard`. Options are those of `redis.rateLimit()` plus `keyGenerator(req)` (default
   * `req.ip`), `message` and `headers` (default 'both').
   */
  function RateLimit(options) {
    if (!options || typeof options !== 'object') {
      throw new TypeError('@RateLimit(): argument `options` must be an object { limit, windowMs | windowSeconds, ... }');
    }
    if (options.headers !== undefined) checkHeaderSet('@RateLimit()', options.headers);
    return SetMetadata(RATE_LIMIT_OPTIONS, options);
  }

  function setHeader(res, name, value) {
    if (typeof res.setHeader === 'function') res.setHeader(name, value);
    else if (typeof res.header === 'function') res.header(name, value);
  }

  /** Enforces `@RateLimit()` on HTTP routes; routes without it pass. */
  class RateLimitGuard {
    constructor(redis, reflector) {
      this.redis = redis;
      this.reflector = reflector || new Reflector();
    }

    async canActivate(context) {
      const options = this.reflector.getAllAndOverride(RATE_LIMIT_OPTIONS, [context.getHandler(), context.getClass()]);
      if (!options) return true;
      const http = context.switchToHttp();
      const req = http.getRequest();
      const res = http.getResponse();
      const { keyGenerator, message, headers = 'both', ...limit } = options;
      const tracker = keyGenerator ? await keyGenerator(req) : req.ip;
      const route = `${context.getClass().name}.${context.getHandler().name}`;
      const r = await this.redis.rateLimit(`nest:${route}:${tracker}`, limit);
      if (!r.degraded) {
        const w = Math.ceil((limit.windowMs ?? limit.windowSeconds * 1000) / 1000);
        for (const [name, value] of rateLimitHeaders(headers, r, w)) setHeader(res, name, value);
      }
      if (r.allowed) return true;
      setHeader(res, 'Retry-After', String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))));
      throw new HttpException(message ?? 'Too Many Requests', HttpStatus.TOO_MANY_REQUESTS);
    }
  }
  Injectable()(RateLimitGuard);
  Inject(RedisService)(RateLimitGuard, undefined, 0);
  Inject(Reflector)(RateLimitGuard, undefined, 1);

  /**
   * A `ThrottlerStorage` for @nestjs/throttler backed by Redis, so every app instance shares the
   * counts: `ThrottlerModule.forRoot({ throttlers, storage: new RedisThrottlerStorage(redis) })`.
   */
  class RedisThrottlerStorage {
    constructor(redis) {
      if (!redis || typeof redis.throttlerIncrement !== 'function') {
        throw new TypeError('RedisThrottlerStorage: argument `redis` must be a RedisService');
      }
      this.redis = redis;
    }

    /** `ttl` and `blockDuration` in milliseconds; the result's times in seconds. */
    increment(key, ttl, limit, blockDuration, throttlerName) {
      return this.redis.throttlerIncrement(key, ttl, limit, blockDuration, throttlerName);
    }
  }

  const DEFAULT_NAME = 'default';

  /** The injection token of a connection: the `RedisService` class itself for the default one. */
  function getRedisToken(name = DEFAULT_NAME) {
    return name === DEFAULT_NAME ? RedisService : `@app/redis:connection:${name}`;
  }

  /** Injects the connection called `name` (default: the unnamed one, same as injecting `RedisService`). */
  function InjectRedis(name = DEFAULT_NAME) {
    return Inject(getRedisToken(name));
  }

  /** Closes the module's connections on `app.close()` (no `enableShutdownHooks()` needed). */
  class RedisConnections {
    constructor() { this.services = new Set(); }
    add(service) { this.services.add(service); return service; }
    async onApplicationShutdown() {
      const all = [...this.services];
      this.services.clear();
      await Promise.all(all.map((s) => s.disconnect()));
    }
  }
  Injectable()(RedisConnections);

  const CONNECTIONS = '@app/redis:connections';

  function splitOptions(options) {
    // A URL string is the connection's options (`forRoot('redis://...')`), as for `new RedisService(url)`.
    if (typeof options === 'string') return { isGlobal: false, name: DEFAULT_NAME, redisOptions: options };
    const { isGlobal, name = DEFAULT_NAME, ...redisOptions } = options || {};
    return { isGlobal: !!isGlobal, name, redisOptions };
  }

  /**
   * `RedisModule.forRoot(options & { isGlobal?, name? })` (or a `redis://` URL) /
   * `RedisModule.forRootAsync({ imports?, inject?, useFactory, isGlobal?, name? })` (`useFactory`
   * may resolve options or a URL). The connection opens while the module initialises
   * (the app fails to start with the connection error when Redis is unreachable and `failOpen` is
   * off) and closes on `app.close()`.
   */
  class RedisModule {
    static forRoot(options = {}) {
      const { isGlobal, name, redisOptions } = splitOptions(options);
      return RedisModule.build(name, isGlobal, [], [CONNECTIONS], (connections) =>
        connections.add(new RedisService(redisOptions)));
    }

    static forRootAsync(options = {}) {
      const { imports = [], inject = [], useFactory, isGlobal, name = DEFAULT_NAME } = options;
      if (typeof useFactory !== 'function') {
        throw new TypeError('RedisModule.forRootAsync(): option `useFactory` must be a function returning the connection options');
      }
      return RedisModule.build(name, !!isGlobal, imports, [CONNECTIONS, ...inject], async (connections, ...args) =>
        connections.add(new RedisService(await useFactory(...args))));
    }

    static build(name, isGlobal, imports, inject, create) {
      const token = getRedisToken(name);
      const provider = {
        provide: token,
        inject,
        useFactory: async (...args) => {
          const service = await create(...args);
          await service.connect();
          return service;
        },
      };
      const dynamic = {
        module: RedisModule,
        global: isGlobal,
        imports,
        providers: [{ provide: CONNECTIONS, useClass: RedisConnections }, provider],
        exports: [token],
      };
      return dynamic;
    }
  }
  Module({})(RedisModule);

  /**
   * Health indicator for @nestjs/terminus (its `HealthIndicatorService` API):
   * `() => this.redisHealth.isHealthy('redis')` is up with `latencyMs`, or down with a `reason`.
   */
  class RedisHealthIndicator {
    constructor(healthIndicatorService, redis) {
      this.healthIndicatorService = healthIndicatorService;
      this.redis = redis;
    }

    async isHealthy(key = 'redis', redis = this.redis) {
      const indicator = this.healthIndicatorService.check(key);
      const h = await redis.healthCheck();
      if (h.status === 'connected') return indicator.up({ latencyMs: h.latencyMs });
      const reason = h.status === 'disabled'
        ? 'Redis is disabled (enabled: false)'
        : `Redis at ${h.host}:${h.port} is unreachable`;
      return indicator.down({ reason });
    }
  }
  Injectable()(RedisHealthIndicator);
  // Without @nestjs/terminus, construct the indicator yourself if you need it.
  if (terminus && terminus.HealthIndicatorService) {
    Inject(terminus.HealthIndicatorService)(RedisHealthIndicator, undefined, 0);
    Inject(RedisService)(RedisHealthIndicator, undefined, 1);
  }

  return {
    RedisModule, InjectRedis, getRedisToken, RedisHealthIndicator, RedisService, EventBus,
    RateLimit, RateLimitGuard, RedisThrottlerStorage, RATE_LIMIT_OPTIONS,
  };
}

module.exports = { defineNest };
