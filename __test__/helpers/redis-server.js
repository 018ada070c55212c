'use strict';
// Test access to the redis-server launcher, plus the server choice for ordinary suites.
const { freePort, startRedis, sleep, RedisServer } = require('../../scripts/redis-server');

/**
 * The server for an ordinary suite: `REDIS_URL` from the environment when set, else a fresh
 * redis-server. `stop()` only stops what it started.
 */
async function suiteServer() {
  if (process.env.REDIS_URL) {
    return { url: process.env.REDIS_URL, external: true, stop: async () => {} };
  }
  const s = await startRedis();
  return { url: s.url, external: false, server: s, stop: () => s.stop() };
}

module.exports = { freePort, startRedis, suiteServer, sleep, RedisServer };
