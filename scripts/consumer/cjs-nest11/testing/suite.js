// The body of files 1 to 4, run in parallel: each uses the same logical keys, lock and rate limit
// through its own createTestRedis(), and a NestJS testing module with RedisTestingModule.
require('reflect-metadata');
const { Injectable, Inject } = require('@nestjs/common');
const { Test } = require('@nestjs/testing');
const { RedisService } = require('@app/redis');
const { createTestRedis, RedisTestingModule } = require('@app/redis/testing');

let redis;
beforeAll(async () => { redis = await createTestRedis(); });
afterAll(() => redis.cleanup());

test('same keys, lock and rate limit as the other files, isolated', async () => {
  await redis.set('user:1', process.env.JEST_WORKER_ID);
  const token = await redis.acquireLock('nightly', { ttlMs: 10000 });
  expect(token).toBeTruthy();
  let allowed = 0;
  for (let i = 0; i < 8; i++) if ((await redis.rateLimit('login:1.2.3.4', { limit: 5, windowMs: 60000 })).allowed) allowed++;
  expect(allowed).toBe(5);
  await new Promise((r) => setTimeout(r, 300));
  expect(await redis.get('user:1')).toBe(process.env.JEST_WORKER_ID);
  expect(await redis.releaseLock('nightly', token)).toBe(true);
});

class Jobs {
  constructor(r) { this.redis = r; }
  run() { return this.redis.withLock('job', () => this.redis.incr('runs')); }
}
Injectable()(Jobs);
Inject(RedisService)(Jobs, undefined, 0);

test('RedisTestingModule gives the app its own isolated service, cleaned up on moduleRef.close()', async () => {
  const moduleRef = await Test.createTestingModule({ imports: [RedisTestingModule.forRoot()], providers: [Jobs] }).compile();
  await moduleRef.init();
  expect(await moduleRef.get(Jobs).run()).toBe(1);
  const service = moduleRef.get(RedisService);
  await moduleRef.close();
  expect(service.isConnected).toBe(false);
  expect(await redis.call('EXISTS', `${service.testPrefix}runs`)).toBe(0);
});
