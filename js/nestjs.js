'use strict';
// NestJS integration for @app/redis: the `@RateLimit()` decorator with its guard, and a storage
// for @nestjs/throttler. Glue only: decisions are made by the Rust core in one round trip.
// @nestjs/common and @nestjs/core are optional peer dependencies, loaded when this file is.
const { Injectable, Inject, SetMetadata, HttpException, HttpStatus } = require('@nestjs/common');
const { Reflector } = require('@nestjs/core');
const { RedisService } = require('../index');

const RATE_LIMIT_OPTIONS = 'app-redis:rate-limit';

/**
 * Limits a controller or route: `@RateLimit({ limit: 10, windowMs: 60_000 })`, enforced by
 * `RateLimitGuard`. Options are those of `redis.rateLimit()` plus `keyGenerator(req)` (default
 * `req.ip`) and `message`.
 */
function RateLimit(options) {
  if (!options || typeof options !== 'object') {
    throw new TypeError('@RateLimit(): argument `options` must be an object { limit, windowMs | windowSeconds, ... }');
  }
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
    const { keyGenerator, message, ...limit } = options;
    const tracker = keyGenerator ? await keyGenerator(req) : req.ip;
    const route = `${context.getClass().name}.${context.getHandler().name}`;
    const r = await this.redis.rateLimit(`nest:${route}:${tracker}`, limit);
    if (!r.degraded) {
      const w = Math.ceil((limit.windowMs ?? limit.windowSeconds * 1000) / 1000);
      setHeader(res, 'RateLimit-Policy', `${r.limit};w=${w}`);
      setHeader(res, 'RateLimit', `limit=${r.limit}, remaining=${r.remaining}, reset=${Math.ceil(r.resetMs / 1000)}`);
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

module.exports = { RateLimit, RateLimitGuard, RedisThrottlerStorage, RATE_LIMIT_OPTIONS };
