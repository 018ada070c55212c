// The NestJS 12 app's own test suite, written once and run by jest (ESM mode) and by vitest:
// each runner passes its own test functions. RedisModule.forRoot from the environment, a
// provider that injects RedisService.
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { Injectable, Inject } from '@nestjs/common';
import { RedisModule, RedisService } from '@app/redis/nestjs';

export class Jobs {
  constructor(redis) { this.redis = redis; }

  run(id) {
    return this.redis.withLock(`job:${id}`, async (lock) => {
      const second = await this.redis.acquireLock(`job:${id}`, { ttlMs: 1000 });
      return { token: lock.token, second };
    }, 10);
  }
}
Injectable()(Jobs);
Inject(RedisService)(Jobs, undefined, 0);

export function defineSuite({ beforeAll, afterAll, test, expect }, runner) {
  const prefix = `consumer-esm:${runner}:${process.pid}:`;
  let app;
  let redis;

  beforeAll(async () => {
    app = await Test.createTestingModule({
      imports: [RedisModule.forRoot({ url: process.env.REDIS_URL, keyPrefix: prefix })],
      providers: [Jobs],
    }).compile();
    await app.init();
    redis = app.get(RedisService);
  });
  afterAll(() => app && app.close());

  test('RedisService is injected and connected: set / get', async () => {
    expect(redis).toBeInstanceOf(RedisService);
    await redis.set('greeting', 'hello', { EX: 60 });
    expect(await redis.get('greeting')).toBe('hello');
  });

  test('withLock runs the callback under the lock', async () => {
    const r = await app.get(Jobs).run(1);
    expect(typeof r.token).toBe('string');
    expect(r.second).toBeNull();
  });

  test('rateLimit allows 2, then refuses', async () => {
    const opts = { limit: 2, windowSeconds: 60 };
    const results = [];
    for (let i = 0; i < 3; i++) results.push((await redis.rateLimit('login:1.2.3.4', opts)).allowed);
    expect(results).toEqual([true, true, false]);
  });

  test('a session round-trips', async () => {
    const id = await redis.createSession('user123', { role: 'admin' }, 60);
    expect(await redis.getSession(id)).toMatchObject({ role: 'admin', userId: 'user123' });
  });
}
