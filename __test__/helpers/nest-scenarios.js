'use strict';
// NestJS apps for the tests, run as a plain Node child process: Nest 12 ships ES modules only,
// which Node 20 can require() but jest's module runtime cannot. Usage:
//   node nest-scenarios.js <scenario> <redis url | JSON connection options>
// Prints one JSON line: what the scenario observed (statuses, headers), asserted by the spec.
require('reflect-metadata');
const request = require('supertest');
const { Controller, Get, Module, UseGuards } = require('@nestjs/common');
const { NestFactory, APP_GUARD } = require('@nestjs/core');
const { ThrottlerModule, ThrottlerGuard } = require('@nestjs/throttler');
const http = require('node:http');
const { Injectable, Inject } = require('@nestjs/common');
const { ConfigModule, ConfigService } = require('@nestjs/config');
const { Test } = require('@nestjs/testing');
const { TerminusModule, HealthIndicatorService } = require('@nestjs/terminus');
const { RedisService } = require('../..');
const {
  RedisThrottlerStorage, RateLimit, RateLimitGuard, RedisModule, InjectRedis, getRedisToken, RedisHealthIndicator,
} = require('../../js/nestjs');
const { createApp } = require('../../examples/nest-demo/app');

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

const clientsNamed = async (redis, name) => {
  const list = await redis.call('CLIENT', 'LIST');
  return list.split('\n').filter((l) => l.includes(`name=${name} `)).length;
};

/** Reads the first server-sent event of `path` (with `headers`), after calling `trigger()`. */
function firstEvent(port, path, headers, trigger) {
  return new Promise((resolve, reject) => {
    const req = http.get({ port, path, headers }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        const end = buf.indexOf('\n\n');
        if (end >= 0) {
          req.destroy();
          resolve({ status: res.statusCode, type: res.headers['content-type'], event: buf.slice(0, end) });
        }
      });
      setTimeout(trigger, 200);
    });
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    setTimeout(() => { req.destroy(); reject(new Error('no event')); }, 5000);
  });
}

const scenarios = {
  // RedisModule: injection by class and by token, forRootAsync with ConfigService, named
  // connections, the health indicator, connections closed by app.close().
  async module(redis, url) {
    class UsesDefault {
      constructor(byClass, byToken) { this.byClass = byClass; this.byToken = byToken; }
    }
    Injectable()(UsesDefault);
    Inject(RedisService)(UsesDefault, undefined, 0);
    InjectRedis()(UsesDefault, undefined, 1);
    class UsesNamed {
      constructor(cache) { this.cache = cache; }
    }
    Injectable()(UsesNamed);
    InjectRedis('cache')(UsesNamed, undefined, 0);
    class AppModule {}
    const { Module: ModuleDec } = require('@nestjs/common');
    ModuleDec({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ REDIS_URL: url })] }),
        RedisModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config) => ({ url: config.get('REDIS_URL'), clientName: 'nest-default', logger: false }),
          isGlobal: true,
        }),
        RedisModule.forRoot({ url, name: 'cache', clientName: 'nest-cache', keyPrefix: 'c:', logger: false, isGlobal: true }),
        TerminusModule,
      ],
      providers: [UsesDefault, UsesNamed, RedisHealthIndicator],
    })(AppModule);
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const d = app.get(UsesDefault);
    const n = app.get(UsesNamed);
    await d.byClass.set('k', 'default');
    await n.cache.set('k', 'named');
    const out = {
      sameInstance: d.byClass === d.byToken,
      isService: d.byClass instanceof RedisService,
      tokenIsClass: getRedisToken() === RedisService,
      namedDiffers: d.byClass !== n.cache,
      values: [await d.byClass.get('k'), await d.byClass.get('c:k')],
      openBefore: [await clientsNamed(redis, 'nest-default'), await clientsNamed(redis, 'nest-cache')],
      health: await app.get(RedisHealthIndicator).isHealthy('redis'),
    };
    const down = new RedisService({ url: 'redis://127.0.0.1:1', logger: false });
    out.healthDown = await app.get(RedisHealthIndicator).isHealthy('redis', down);
    await app.close();
    out.openAfter = [await clientsNamed(redis, 'nest-default'), await clientsNamed(redis, 'nest-cache')];
    return out;
  },

  // A URL string wherever connection options go: forRoot(url), and a useFactory resolving one.
  async moduleUrl(redis, url) {
    const results = {};
    for (const [name, mod] of [
      ['forRoot', RedisModule.forRoot(url)],
      ['forRootAsync', RedisModule.forRootAsync({ useFactory: async () => url })],
    ]) {
      class AppModule {}
      require('@nestjs/common').Module({ imports: [mod] })(AppModule);
      const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      await app.init();
      const svc = app.get(RedisService);
      await svc.set(`url:${name}`, name);
      results[name] = { connected: svc.isConnected, value: await svc.get(`url:${name}`), url: svc.url };
      await app.close();
    }
    return results;
  },

  // The app fails to start with the connection error when Redis is unreachable.
  async unreachable() {
    class AppModule {}
    require('@nestjs/common').Module({ imports: [RedisModule.forRoot({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 300, logger: false })] })(AppModule);
    try {
      await NestFactory.create(AppModule, { logger: false, abortOnError: false });
      return { started: true };
    } catch (e) {
      return { started: false, code: e.code, message: e.message };
    }
  },

  // Every route of the demo app (examples/nest-demo), including the 401, 409 and 429 paths.
  async demo(redis, url) {
    const app = await createApp(url, { maxRequests: 30 });
    await app.listen(0);
    const port = app.getHttpServer().address().port;
    const agent = request(app.getHttpServer());
    const out = {};
    const r = async (name, req) => {
      const res = await req;
      out[name] = { status: res.status, body: res.body, headers: res.headers };
      return res;
    };
    await r('noAuth', agent.get('/api/v1/processes/1'));
    await r('badLogin', agent.post('/api/v1/login').send({}));
    const login = await r('login', agent.post('/api/v1/login').send({ username: 'ada' }));
    const other = await agent.post('/api/v1/login').send({ username: 'bob' });
    const auth = { Authorization: `Bearer ${login.body.token}` };
    const bob = { Authorization: `Bearer ${other.body.token}` };
    await r('get', agent.get('/api/v1/processes/7').set(auth));
    await r('getAgain', agent.get('/api/v1/processes/7').set(auth));
    out.cached = await redis.exists('cache:process:7');
    const lock = await r('lock', agent.post('/api/v1/processes/7/lock').set(auth));
    await r('lockTaken', agent.post('/api/v1/processes/7/lock').set(bob));
    await r('status', agent.get('/api/v1/processes/7/lock/status').set(auth));
    await r('putWrongToken', agent.put('/api/v1/processes/7').set(bob).set('X-Lock-Token', 'nope').send({ title: 'x' }));
    await r('quickWhileLocked', agent.patch('/api/v1/processes/7/quick-update').set(bob).send({ status: 'x' }));
    await r('extend', agent.post('/api/v1/processes/7/lock/extend').set(auth).set('X-Lock-Token', lock.body.lockToken).send({ ttl: 600 }));
    await r('extendWrong', agent.post('/api/v1/processes/7/lock/extend').set(bob).set('X-Lock-Token', 'nope').send({ ttl: 600 }));
    out.event = await firstEvent(port, '/api/v1/events', auth, () => {
      agent.put('/api/v1/processes/7').set(auth).set('X-Lock-Token', lock.body.lockToken).send({ title: 'Edited', status: 'review' })
        .then((res) => { out.put = { status: res.status, body: res.body }; });
    });
    await sleep(100);
    await r('afterPut', agent.get('/api/v1/processes/7').set(auth));
    await redis.releaseLock('process:7', lock.body.lockToken);
    await r('quick', agent.patch('/api/v1/processes/7/quick-update').set(bob).send({ status: 'done' }));
    await r('health', agent.get('/health'));
    let last;
    for (let i = 0; i < 40; i++) last = await agent.get('/api/v1/processes/7/lock/status').set(auth);
    out.limited = { status: last.status, retryAfter: last.headers['retry-after'], ratelimit: last.headers.ratelimit, type: last.headers['content-type'], body: last.body };
    await app.close();
    return out;
  },
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

  // RedisTestingModule (@app/redis/testing): an app provider gets the isolated service; its keys
  // are gone and it is disconnected after app.close().
  async testingModule(redis, url) {
    const { RedisTestingModule } = require('../../js/testing');
    class Jobs {
      constructor(r) { this.redis = r; }
      run(id) { return this.redis.withLock(`job:${id}`, async () => this.redis.incr(`runs:${id}`)); }
    }
    Injectable()(Jobs);
    Inject(RedisService)(Jobs, undefined, 0);
    const moduleRef = await Test.createTestingModule({
      imports: [RedisTestingModule.forRoot({ url })],
      providers: [Jobs],
    }).compile();
    const app = moduleRef.createNestApplication();
    await app.init();
    const service = app.get(RedisService);
    const runs = [await app.get(Jobs).run(7), await app.get(Jobs).run(7)];
    const stored = await redis.get(`${service.testPrefix}runs:7`);
    await app.close();
    return {
      prefix: service.testPrefix,
      runs,
      stored,
      connectedAfter: service.isConnected,
      keysAfter: await redis.call('KEYS', `${service.testPrefix}*`),
    };
  },
};

(async () => {
  const [name, target] = process.argv.slice(2);
  // A URL, or the JSON connection options of a cluster / Sentinel suite.
  const conn = target.startsWith('{') ? JSON.parse(target) : { url: target };
  const redis = await RedisService.connect({ ...conn, logger: false });
  const result = await scenarios[name](redis, conn.url, conn);
  await redis.disconnect();
  console.log(JSON.stringify(result));
})().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
