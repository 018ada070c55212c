#!/usr/bin/env node
// `npm run demo:plain`: a tour of @app/redis in plain Node against a real Redis. Uses REDIS_URL
// when set; otherwise starts a throwaway redis-server from PATH on a free port and stops it on exit.
'use strict';
const { RedisService } = require('..');
const { demoRedis } = require('../scripts/redis-server');

async function main() {
  const { url, server } = await demoRedis();
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
