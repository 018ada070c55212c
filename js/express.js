'use strict';
// Express integration for @app/redis: rate-limit middleware and an express-session store. Glue
// only: decisions and storage are the Rust core's (`rateLimit()`, the session methods).

const { checkHeaderSet, rateLimitHeaders } = require('./rate-limit-headers');

const DEFAULT_MESSAGE = 'Too many requests, please try again later.';

/**
 * Express middleware limiting requests per key (default: `req.ip`).
 * Option names follow seed 004: `windowMs`, `maxRequests`, `keyGenerator`, `message`.
 */
function rateLimitMiddleware(redis, options = {}) {
  if (!redis || typeof redis.rateLimit !== 'function') {
    throw new TypeError('rateLimitMiddleware(): argument `redis` must be a RedisService');
  }
  const {
    windowMs, maxRequests, keyGenerator = (req) => req.ip, message = DEFAULT_MESSAGE,
    statusCode = 429, algorithm, headers = 'both', skip, prefix = 'http:',
  } = options;
  if (!Number.isInteger(maxRequests) || maxRequests < 1) {
    throw new TypeError('rateLimitMiddleware(): option `maxRequests` must be a positive integer');
  }
  if (!Number.isInteger(windowMs) || windowMs < 1) {
    throw new TypeError('rateLimitMiddleware(): option `windowMs` must be a positive integer (milliseconds)');
  }
  checkHeaderSet('rateLimitMiddleware()', headers);
  const windowSeconds = Math.ceil(windowMs / 1000);
  const limitOptions = { limit: maxRequests, windowMs, ...(algorithm ? { algorithm } : {}) };

  return async function rateLimit(req, res, next) {
    try {
      if (skip && (await skip(req, res))) return next();
      const id = await keyGenerator(req, res);
      const r = await redis.rateLimit(`${prefix}${id}`, limitOptions);
      req.rateLimit = r;
      if (!r.degraded) {
        for (const [name, value] of rateLimitHeaders(headers, r, windowSeconds)) res.setHeader(name, value);
      }
      if (r.allowed) return next();
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(r.retryAfterMs / 1000))));
      res.status(statusCode);
      if (typeof message === 'string') res.send(message);
      else res.json(message);
    } catch (err) {
      next(err);
    }
  };
}


// ---------------------------------------------------------------------------------------------
// express-session store

let SessionStoreBase;
try {
  ({ Store: SessionStoreBase } = require('express-session'));
} catch {
  // express-session is optional: without it the store still works wherever a Store-like object
  // (an EventEmitter with get/set/destroy) is accepted.
  SessionStoreBase = require('node:events').EventEmitter;
}

const DAY_SECONDS = 86400;
const globEscape = (s) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

function callback(promise, cb) {
  if (typeof cb !== 'function') return promise;
  promise.then((v) => cb(null, v), (e) => cb(e));
  return undefined;
}

/**
 * A real `express-session` store on @app/redis sessions: `get`, `set`, `destroy`, `touch`, `all`,
 * `length`, `clear`. TTL follows the cookie's expiry (else `ttlSeconds`). Sessions carrying a user
 * id (see `userId`) are indexed by user, so `redis.destroyUserSessions(id)` logs a user out
 * everywhere.
 */
class RedisSessionStore extends SessionStoreBase {
  constructor(options = {}) {
    super();
    const { redis, prefix = 'express:', ttlSeconds = DAY_SECONDS, disableTouch = false, userId } = options;
    if (!redis || typeof redis.setSession !== 'function') {
      throw new TypeError('RedisSessionStore: option `redis` must be a RedisService');
    }
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new TypeError('RedisSessionStore: option `ttlSeconds` must be a positive integer (seconds)');
    }
    this.redis = redis;
    this.prefix = prefix;
    this.ttlSeconds = ttlSeconds;
    this.disableTouch = disableTouch;
    this.userId = userId || ((sess) => sess.userId ?? sess.user?.id ?? sess.passport?.user);
  }

  ttl(sess) {
    const expires = sess && sess.cookie && sess.cookie.expires;
    if (expires) {
      const ms = new Date(expires).getTime() - Date.now();
      return Math.max(1, Math.ceil(ms / 1000));
    }
    return this.ttlSeconds;
  }

  get(sid, cb) {
    return callback(this.redis.getSession(this.prefix + sid), cb);
  }

  set(sid, sess, cb) {
    const user = this.userId(sess);
    const data = user === undefined || user === null ? { ...sess } : { ...sess, userId: user };
    return callback(this.redis.setSession(this.prefix + sid, data, this.ttl(sess)).then(() => undefined), cb);
  }

  destroy(sid, cb) {
    return callback(this.redis.destroySession(this.prefix + sid).then(() => undefined), cb);
  }

  touch(sid, sess, cb) {
    if (this.disableTouch) return callback(Promise.resolve(), cb);
    return callback(this.redis.refreshSession(this.prefix + sid, this.ttl(sess)).then(() => undefined), cb);
  }

  /** Ids (without the store prefix) of every session of this store, via SCAN. */
  async ids() {
    const pattern = `${globEscape(this.redis.sessionPrefix)}{${globEscape(this.prefix)}*}`;
    const start = this.redis.sessionPrefix.length + 1 + this.prefix.length;
    const out = [];
    for await (const key of this.redis.scanIterator(pattern, 1000)) out.push(key.slice(start, -1));
    return out;
  }

  all(cb) {
    const p = this.ids().then(async (ids) => {
      const sessions = await Promise.all(ids.map((id) => this.redis.getSession(this.prefix + id)));
      return sessions.map((s, i) => s && { ...s, id: ids[i] }).filter(Boolean);
    });
    return callback(p, cb);
  }

  length(cb) {
    return callback(this.ids().then((ids) => ids.length), cb);
  }

  clear(cb) {
    const p = this.ids().then(async (ids) => {
      await Promise.all(ids.map((id) => this.redis.destroySession(this.prefix + id)));
    });
    return callback(p, cb);
  }
}

module.exports = { rateLimitMiddleware, RedisSessionStore };
