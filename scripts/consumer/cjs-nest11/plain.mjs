// Plain Node with import: named exports, the default export, and the subpaths.
import { RedisService } from '@app/redis';
import redisModule from '@app/redis';
import { rateLimitMiddleware } from '@app/redis/express';

const redis = await RedisService.connect({ url: process.env.REDIS_URL });
await redis.set('plain:esm', 'ok', { EX: 60 });
const value = await redis.get('plain:esm');
await redis.disconnect();
if (value !== 'ok') throw new Error(`expected ok, got ${value}`);
if (redisModule.RedisService !== RedisService) throw new Error('default and named exports differ');
if (typeof rateLimitMiddleware !== 'function') throw new Error('@app/redis/express has no rateLimitMiddleware');
console.log('import: ok');
