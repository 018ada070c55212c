// Compiled (never run) by types.js under each module resolution: the main entry and both subpaths
// must resolve to their typings.
import { RedisService, type RateLimitResult } from '@app/redis';
import { RedisModule, InjectRedis } from '@app/redis/nestjs';
import { rateLimitMiddleware } from '@app/redis/express';

export async function use(redis: RedisService): Promise<string | null> {
  const r: RateLimitResult = await redis.rateLimit('k', { limit: 1, windowSeconds: 1 });
  const buf: Buffer | null = await redis.getBuffer('k');
  void buf;
  void r.allowed;
  void RedisModule.forRoot({ url: 'redis://localhost:6379' });
  void InjectRedis('cache');
  void rateLimitMiddleware(redis, { windowMs: 1000, maxRequests: 1 });
  return redis.get('k');
}
