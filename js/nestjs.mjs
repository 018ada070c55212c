// `import ... from '@app/redis/nestjs'`: loads Nest with `import`, so an app on Nest 12 (ES modules
// only) works under Node, jest's ESM mode and vitest. The implementation is nestjs-define.js,
// shared with the `require` entry.
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';
import nestDefine from './nestjs-define.js';
import binding from '../index.js';

let terminus = null;
try {
  terminus = await import('@nestjs/terminus');
} catch (e) {
  if (!e || (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'MODULE_NOT_FOUND') || !String(e.message).includes('@nestjs/terminus')) throw e;
}

const nest = nestDefine.defineNest(common, core, terminus, binding);

export const {
  RedisModule, InjectRedis, getRedisToken, RedisHealthIndicator, RedisService, EventBus,
  RateLimit, RateLimitGuard, RedisThrottlerStorage, RATE_LIMIT_OPTIONS,
} = nest;
export default nest;
