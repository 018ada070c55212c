'use strict';
// How every benchmark client connects to the server under test, shared by the suites. A server
// is `{ url, tls }`: `tls` is `null` for plain TCP, or `{ ca }` (the CA that signed the server's
// certificate) for TLS, which every client then checks the certificate against.

/** Options for `RedisService.connect`. */
function ourOptions(server) {
  return { url: server.url, logger: false, ...(server.tls ? { tls: { ca: server.tls.ca } } : {}) };
}

/** Options for `new IORedis(...)` (connected later, with `connect()`). */
function ioredisOptions(server, extra = {}) {
  const port = Number(new URL(server.url).port);
  return { port, host: '127.0.0.1', lazyConnect: true, ...(server.tls ? { tls: { ca: server.tls.ca } } : {}), ...extra };
}

/** Options for node-redis's `createClient`. */
function nodeRedisOptions(server) {
  return { url: server.url, ...(server.tls ? { socket: { tls: true, ca: server.tls.ca } } : {}) };
}

/** A connected ioredis client. */
async function connectIoredis(server) {
  const IORedis = require('ioredis');
  const c = new IORedis(ioredisOptions(server));
  await c.connect();
  return c;
}

module.exports = { ourOptions, ioredisOptions, nodeRedisOptions, connectIoredis };
