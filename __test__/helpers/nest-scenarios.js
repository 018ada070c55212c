'use strict';
// NestJS apps for the tests, run as a plain Node child process: Nest 12 ships ES modules only,
// which Node 20 can require() but jest's module runtime cannot. Usage:
//   node nest-scenarios.js <scenario> <redis url>
// Prints one JSON line: what the scenario observed (statuses, headers), asserted by the spec.
require('reflect-metadata');
const request = require('supertest');
const { Controller, Get, Module, UseGuards } = require('@nestjs/common');
const { NestFactory, APP_GUARD } = require('@nestjs/core');
const { ThrottlerModule, ThrottlerGuard } = require('@nestjs/throttler');
const { RedisService } = require('../..');
const { RedisThrottlerStorage, RateLimit, RateLimitGuard } = require('../../js/nestjs');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const method = (cls, name) => [cls.prototype, name, Object.getOwnPropertyDescriptor(cls.prototype, name)];

class HelloController {
  hello() { return 'hi'; }
}
Controller()(HelloController);
Get()(...method(HelloController, 'hello'));

async function throttledApp(redis, throttlers) {
  class AppModule {}
  Module({
    imports: [ThrottlerModule.forRoot({ throttlers, storage: new RedisThrottlerStorage(redis) })],
    controllers: [HelloController],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.init();
  return app;
}

const get = async (app, path = '/') => {
  const r = await request(app.getHttpServer()).get(path);
  return { status: r.status, headers: r.headers };
};

const scenarios = {
  // Two app instances, one shared limit of 3 per minute.
  async shared(redis) {
    const a = await throttledApp(redis, [{ ttl: 60000, limit: 3 }]);
    const b = await throttledApp(redis, [{ ttl: 60000, limit: 3 }]);
    const out = [await get(a), await get(b), await get(a), await get(b)];
    await a.close();
    await b.close();
    return out;
  },
  // limit 1 per 500 ms, blocked 2 s once exceeded.
  async block(redis) {
    const app = await throttledApp(redis, [{ ttl: 500, limit: 1, blockDuration: 2000 }]);
    const out = [await get(app), await get(app)];
    await sleep(700);
    out.push(await get(app));
    await sleep(1500);
    out.push(await get(app));
    await app.close();
    return out;
  },
  // @RateLimit() on one route of a controller guarded by RateLimitGuard.
  async decorator(redis) {
    class LimitedController {
      limited() { return 'limited'; }
      open() { return 'open'; }
    }
    Controller()(LimitedController);
    Get('limited')(...method(LimitedController, 'limited'));
    RateLimit({ limit: 2, windowMs: 60000, algorithm: 'sliding-window' })(...method(LimitedController, 'limited'));
    Get('open')(...method(LimitedController, 'open'));
    UseGuards(RateLimitGuard)(LimitedController);
    class AppModule {}
    Module({ controllers: [LimitedController], providers: [{ provide: RedisService, useValue: redis }] })(AppModule);
    const app = await NestFactory.create(AppModule, { logger: false });
    await app.init();
    const out = [];
    for (let i = 0; i < 3; i++) out.push(await get(app, '/limited'));
    for (let i = 0; i < 4; i++) out.push(await get(app, '/open'));
    await app.close();
    return out;
  },
};

(async () => {
  const [name, url] = process.argv.slice(2);
  const redis = await RedisService.connect({ url, logger: false });
  const result = await scenarios[name](redis);
  await redis.disconnect();
  console.log(JSON.stringify(result));
})().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
