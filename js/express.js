'use strict';
// Express integration for @app/redis: rate-limit middleware. Glue only: the decision is one
// `redis.rateLimit()` call (one round trip, server clock) in the Rust core.

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
    statusCode = 429, algorithm, headers = 'draft-7', skip, prefix = 'http:',
  } = options;
  if (!Number.isInteger(maxRequests) || maxRequests < 1) {
    throw new TypeError('rateLimitMiddleware(): option `maxRequests` must be a positive integer');
  }
  if (!Number.isInteger(windowMs) || windowMs < 1) {
    throw new TypeError('rateLimitMiddleware(): option `windowMs` must be a positive integer (milliseconds)');
  }
  if (![false, 'draft-6', 'draft-7', 'legacy'].includes(headers)) {
    throw new TypeError("rateLimitMiddleware(): option `headers` must be 'draft-7', 'draft-6', 'legacy' or false");
  }
  const windowSeconds = Math.ceil(windowMs / 1000);
  const limitOptions = { limit: maxRequests, windowMs, ...(algorithm ? { algorithm } : {}) };

  function setHeaders(res, r) {
    const resetSeconds = Math.ceil(r.resetMs / 1000);
    if (headers === 'draft-7') {
      res.setHeader('RateLimit-Policy', `${r.limit};w=${windowSeconds}`);
      res.setHeader('RateLimit', `limit=${r.limit}, remaining=${r.remaining}, reset=${resetSeconds}`);
    } else if (headers === 'draft-6') {
      res.setHeader('RateLimit-Policy', `${r.limit};w=${windowSeconds}`);
      res.setHeader('RateLimit-Limit', String(r.limit));
      res.setHeader('RateLimit-Remaining', String(r.remaining));
      res.setHeader('RateLimit-Reset', String(resetSeconds));
    } else if (headers === 'legacy') {
      res.setHeader('X-RateLimit-Limit', String(r.limit));
      res.setHeader('X-RateLimit-Remaining', String(r.remaining));
      res.setHeader('X-RateLimit-Reset', String(Math.ceil(r.resetTime / 1000)));
    }
  }

  return async function rateLimit(req, res, next) {
    try {
      if (skip && (await skip(req, res))) return next();
      const id = await keyGenerator(req, res);
      const r = await redis.rateLimit(`${prefix}${id}`, limitOptions);
      req.rateLimit = r;
      if (!r.degraded) setHeaders(res, r);
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

module.exports = { rateLimitMiddleware };
