'use strict';
// The response headers of a rate-limit decision, shared by the Express middleware and the Nest
// guard. By default both sets: the IETF RateLimit fields (draft 7) for standard clients, and the
// `X-RateLimit-*` ones that express-rate-limit sends and existing clients read.

const HEADER_SETS = ['both', 'draft-7', 'draft-6', 'legacy', false];

/** Throws when `headers` is not one of the accepted sets; `where` names the caller. */
function checkHeaderSet(where, headers) {
  if (!HEADER_SETS.includes(headers)) {
    throw new TypeError(`${where}: option \`headers\` must be 'both', 'draft-7', 'draft-6', 'legacy' or false`);
  }
}

/**
 * The `[name, value]` headers for decision `r` (from `redis.rateLimit()`) in set `headers`;
 * `windowSeconds` is the window's length. Reset values: seconds from now in the standard
 * fields, epoch seconds in `X-RateLimit-Reset` (as express-rate-limit sends it).
 */
function rateLimitHeaders(headers, r, windowSeconds) {
  const out = [];
  const resetSeconds = Math.ceil(r.resetMs / 1000);
  if (headers === 'both' || headers === 'draft-7') {
    out.push(['RateLimit-Policy', `${r.limit};w=${windowSeconds}`]);
    out.push(['RateLimit', `limit=${r.limit}, remaining=${r.remaining}, reset=${resetSeconds}`]);
  } else if (headers === 'draft-6') {
    out.push(['RateLimit-Policy', `${r.limit};w=${windowSeconds}`]);
    out.push(['RateLimit-Limit', String(r.limit)]);
    out.push(['RateLimit-Remaining', String(r.remaining)]);
    out.push(['RateLimit-Reset', String(resetSeconds)]);
  }
  if (headers === 'both' || headers === 'legacy') {
    out.push(['X-RateLimit-Limit', String(r.limit)]);
    out.push(['X-RateLimit-Remaining', String(r.remaining)]);
    out.push(['X-RateLimit-Reset', String(Math.ceil(r.resetTime / 1000))]);
  }
  return out;
}

module.exports = { checkHeaderSet, rateLimitHeaders };
