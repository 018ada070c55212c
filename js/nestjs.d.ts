import type { RedisService, RedisOptions, RateLimitOptions } from '../index'

export { RedisService, EventBus } from '../index'

/** `RedisModule.forRoot()` options: the connection options, plus module settings. */
export interface RedisModuleOptions extends RedisOptions {
  /** Register the module globally (default false). */
  isGlobal?: boolean
  /** A named connection, injected with `@InjectRedis(name)` (default: the `RedisService` class token). */
  name?: string
}

/** `RedisModule.forRootAsync()` options. */
export interface RedisModuleAsyncOptions {
  imports?: any[]
  inject?: any[]
  /** Resolves the connection options, or a `redis://` URL. */
  useFactory: (...args: any[]) => RedisOptions | string | Promise<RedisOptions | string>
  isGlobal?: boolean
  name?: string
}

/** The NestJS module: the connection opens on module init and closes on `app.close()`. */
export declare class RedisModule {
  /** `options`, or a `redis://` URL (the default connection, not global). */
  static forRoot(options?: RedisModuleOptions | string): any
  static forRootAsync(options: RedisModuleAsyncOptions): any
}

/** The injection token of connection `name` (the `RedisService` class for the default one). */
export declare function getRedisToken(name?: string): any

/** Injects connection `name`. */
export declare function InjectRedis(name?: string): ParameterDecorator & PropertyDecorator

/** @nestjs/terminus health indicator: `isHealthy(key)` is up with `latencyMs`, or down with a `reason`. */
export declare class RedisHealthIndicator {
  constructor(healthIndicatorService: any, redis: RedisService)
  isHealthy(key?: string, redis?: RedisService): Promise<Record<string, any>>
}

/** `@RateLimit()` options: those of `redis.rateLimit()`, plus the request's key and the refusal message. */
export interface RateLimitDecoratorOptions extends RateLimitOptions {
  /** The key a request counts against (default `req.ip`); the route is added to it. */
  keyGenerator?: (req: any) => string | Promise<string>
  /** Body of the 429 (default 'Too Many Requests'). */
  message?: string | object
  /**
   * Which headers to set: both the IETF RateLimit fields (draft 7: `RateLimit-Policy`,
   * `RateLimit`) and the legacy `X-RateLimit-Limit` / `-Remaining` / `-Reset` (epoch seconds)
   * by default (`'both'`), one set, draft 6, or none (`false`).
   */
  headers?: 'both' | 'draft-7' | 'draft-6' | 'legacy' | false
}

/** Limits a controller or route; enforced by `RateLimitGuard`. */
export declare function RateLimit(options: RateLimitDecoratorOptions): ClassDecorator & MethodDecorator

/** Guard enforcing `@RateLimit()`: sets the RateLimit headers (draft 7 and `X-RateLimit-*` by default), refuses with 429 and `Retry-After` (seconds). */
export declare class RateLimitGuard {
  constructor(redis: RedisService, reflector?: unknown)
  canActivate(context: any): Promise<boolean>
}

/** What @nestjs/throttler's storage returns (times in seconds). */
export interface ThrottlerStorageRecord {
  totalHits: number
  timeToExpire: number
  isBlocked: boolean
  timeToBlockExpire: number
}

/** A Redis-backed `ThrottlerStorage` for @nestjs/throttler, shared by every app instance. */
export declare class RedisThrottlerStorage {
  constructor(redis: RedisService)
  /** `ttl` and `blockDuration` in milliseconds. */
  increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord>
}

export declare const RATE_LIMIT_OPTIONS: string
