#!/usr/bin/env node
// `npm run demo:plain`: a tour of @app/redis in plain Node against a real Redis. Uses REDIS_URL when set; otherwise
// starts a throwaway redis-server from PATH on a free port and stops it on exit.
'use strict';
const { execFileSync } = require('node:child_process');
const { RedisService } = require('..');
const { startRedis } = require('../scripts/redis-server');

function haveRedisServer() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main() {
  let server = null;
  let url = process.env.REDIS_URL;
  if (!url) {
    if (!haveRedisServer()) {
      console.error('No REDIS_URL set and no redis-server on PATH.\n' +
        '  Install one (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis),\n' +
        '  run `docker compose up -d` in this folder, or point REDIS_URL at a server: REDIS_URL=redis://host:6379 npm run demo');
      process.exit(1);
    }
    server = await startRedis();
    url = server.url;
    console.log(`REDIS_URL is not set: started a throwaway redis-server at ${url} (stopped on exit)`);
  }
  const redis = await RedisService.connect({ url, keyPrefix: 'demo:' });
  try {
    console.log('health:', await redis.healthCheck());
    await redis.set('greeting', 'hello from Rust', { EX: 60 });
    console.log('get greeting ->', await redis.get('greeting'), `(ttl ${await redis.ttl('greeting')} s)`);
    await redis.setJson('user:1', { name: 'Ada', roles: ['admin'] }, 300);
    console.log('getJson user:1 ->', await redis.getJson('user:1'));
    await redis.hSet('user:1:profile', { name: 'Ada', city: 'London' });
    console.log('hGetAll user:1:profile ->', await redis.hGetAll('user:1:profile'));
    await redis.zAdd('leaderboard', [{ score: 100, value: 'ada' }, { score: 85, value: 'alan' }]);
    console.log('zRangeWithScores leaderboard ->', await redis.zRangeWithScores('leaderboard', 0, -1));
    const results = await redis.multi().incr('visits').expire('visits', 3600).exec();
    console.log('multi incr/expire ->', results);
    const keys = [];
    for await (const k of redis.scanIterator()) keys.push(k);
    console.log('keys (prefix stripped) ->', keys.sort());
    await redis.del(keys);
  } finally {
    await redis.disconnect();
    if (server) await server.stop();
  }
}

main().catch((e) => {
  console.error(`demo failed: ${e.code || ''} ${e.message}`);
  process.exit(1);
});
