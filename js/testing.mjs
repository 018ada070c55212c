// `import ... from '@app/redis/testing'`: the same helpers as testing.js, with Nest loaded by
// `import` (NestJS 12 is ES modules only). Without @nestjs/common installed, RedisTestingModule
// is the one export that is missing (it throws when used).
import binding from '../index.js';
import define from './testing-define.js';

const { createTestRedis } = define.defineTesting(binding);

let RedisTestingModule;
try {
  const common = await import('@nestjs/common');
  const nest = await import('./nestjs.mjs');
  ({ RedisTestingModule } = define.defineNestTesting(common, nest, createTestRedis));
} catch (e) {
  if (!e || (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'MODULE_NOT_FOUND')) throw e;
  RedisTestingModule = {
    forRoot() {
      throw new Error('RedisTestingModule needs @nestjs/common and @nestjs/core: npm install them, or use createTestRedis()');
    },
  };
}

export { createTestRedis, RedisTestingModule };
export default { createTestRedis, RedisTestingModule };
