'use strict';
// Test access to the redis-server launchers, plus the server choice for ordinary suites.
const { freePort, startRedis, sleep, RedisServer, RedisCluster, RedisSentinels } = require('../../scripts/redis-server');

/** `standalone` (default), `cluster` or `sentinel`: set by `npm run test:cluster` through REDIS_MODE. */
const MODE = process.env.REDIS_MODE || 'standalone';

/**
 * The server for an ordinary suite, in the mode REDIS_MODE names: a fresh redis-server (or
 * `REDIS_URL` when set), a fresh 3-master cluster, or a fresh Sentinel setup. `options` are the
 * connection options for `RedisService` (spread them into the service's options); `url` is set
 * in standalone mode only. `stop()` only stops what it started.
 */
async function suiteServer() {
  if (MODE === 'cluster') {
    const cluster = await new RedisCluster().start();
    return { mode: MODE, options: cluster.options, url: null, cluster, stop: () => cluster.stop() };
  }
  if (MODE === 'sentinel') {
    const sentinels = await new RedisSentinels().start();
    return { mode: MODE, options: sentinels.options, url: null, sentinels, stop: () => sentinels.stop() };
  }
  if (process.env.REDIS_URL) {
    const url = process.env.REDIS_URL;
    return { mode: MODE, options: { url }, url, external: true, stop: async () => {} };
  }
  const s = await startRedis();
  return { mode: MODE, options: { url: s.url }, url: s.url, external: false, server: s, stop: () => s.stop() };
}

module.exports = { MODE, freePort, startRedis, suiteServer, sleep, RedisServer, RedisCluster, RedisSentinels };
