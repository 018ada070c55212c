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
  /**
   * Which headers to set: both the IETF RateLimit fields (draft 7: `RateLimit-Policy`,
   * `RateLimit`) and the legacy `X-RateLimit-Limit` / `-Remaining` / `-Reset` (epoch seconds)
   * by default (`'both'`, as express-rate-limit's clients expect), one set, draft 6, or none
   * (`false`). `Retry-After` (seconds) is always set on a refusal.
   */
  headers?: 'both' | 'draft-7' | 'draft-6' | 'legacy' | false
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

/** `new RedisSessionStore(options)`. */
export interface RedisSessionStoreOptions {
  redis: RedisService
  /** Prefix of this store's session ids (default `'express:'`); `clear()` only removes these. */
  prefix?: string
  /** TTL in seconds when the cookie has no expiry (default 86400). */
  ttlSeconds?: number
  /** Do not reset the TTL on every request (default false). */
  disableTouch?: boolean
  /** The user a session belongs to, for `destroyUserSessions` (default `sess.userId ?? sess.user?.id ?? sess.passport?.user`). */
  userId?: (sess: any) => string | number | undefined | null
}

/** An express-session `Store` backed by @app/redis sessions. */
export declare class RedisSessionStore {
  constructor(options: RedisSessionStoreOptions)
  get(sid: string, cb?: (err: unknown, session?: any) => void): Promise<any> | void
  set(sid: string, session: any, cb?: (err?: unknown) => void): Promise<void> | void
  destroy(sid: string, cb?: (err?: unknown) => void): Promise<void> | void
  touch(sid: string, session: any, cb?: (err?: unknown) => void): Promise<void> | void
  all(cb?: (err: unknown, sessions?: any[]) => void): Promise<any[]> | void
  length(cb?: (err: unknown, length?: number) => void): Promise<number> | void
  clear(cb?: (err?: unknown) => void): Promise<void> | void
  /** Session ids of this store (without its prefix). */
  ids(): Promise<string[]>
}
