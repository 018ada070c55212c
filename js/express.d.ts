import type { RedisService, RateLimitResult } from '../index'

/** `rateLimitMiddleware()` options (seed 004's names). */
export interface RateLimitMiddlewareOptions {
  /** Window length in milliseconds. */
  windowMs: number
  /** Requests allowed per window. */
  maxRequests: number
  /** The key a request counts against (default `req.ip`). May return a promise. */
  keyGenerator?: (req: any, res: any) => string | Promise<string>
  /** Body of the refusal: a string, or an object sent as JSON. */
  message?: string | object
  /** Status of the refusal (default 429). */
  statusCode?: number
  /** Default `'fixed-window'`. */
  algorithm?: 'fixed-window' | 'sliding-window' | 'token-bucket'
  /** Which headers to set: IETF RateLimit draft 7 (default) or 6, legacy `X-RateLimit-*`, or none. `Retry-After` (seconds) is always set on a refusal. */
  headers?: 'draft-7' | 'draft-6' | 'legacy' | false
  /** Requests for which this returns true are not counted. */
  skip?: (req: any, res: any) => boolean | Promise<boolean>
  /** Prepended to the key (default `'http:'`). */
  prefix?: string
}

/** Express middleware limiting requests per key; sets `req.rateLimit` to the decision. */
export declare function rateLimitMiddleware(
  redis: RedisService,
  options: RateLimitMiddlewareOptions,
): (req: any, res: any, next: (err?: unknown) => void) => Promise<void>

export type { RateLimitResult }
