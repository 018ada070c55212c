// Shared by parallel-1 and parallel-2 (vitest runs files in parallel workers): the same logical
// keys through createTestRedis(), and RedisTestingModule in a Nest 12 testing module.
import 'reflect-metadata';
import { beforeAll, afterAll, test, expect } from 'vitest';
import { Injectable, Inject } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { RedisService } from '@app/redis';
import { createTestRedis, RedisTestingModule } from '@app/redis/testing';

export function suite(name) {
  let redis;
  beforeAll(async () => { redis = await createTestRedis(); });
  afterAll(() => redis.cleanup());

  test(`${name}: same keys and lock as the other file, isolated`, async () => {
    await redis.set('user:1', name);
    const token = await redis.acquireLock('nightly', { ttlMs: 10000 });
    expect(token).toBeTruthy();
    await new Promise((r) => setTimeout(r, 300));
    expect(await redis.get('user:1')).toBe(name);
    expect(await redis.releaseLock('nightly', token)).toBe(true);
  });

  test(`${name}: RedisTestingModule`, async () => {
    class Jobs {
      constructor(r) { this.redis = r; }
      run() { return this.redis.withLock('job', () => this.redis.incr('runs')); }
    }
    Injectable()(Jobs);
    Inject(RedisService)(Jobs, undefined, 0);
    const moduleRef = await Test.createTestingModule({ imports: [RedisTestingModule.forRoot()], providers: [Jobs] }).compile();
    await moduleRef.init();
    expect(await moduleRef.get(Jobs).run()).toBe(1);
    const service = moduleRef.get(RedisService);
    await moduleRef.close();
    expect(service.isConnected).toBe(false);
  });
}
