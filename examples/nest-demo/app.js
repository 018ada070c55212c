'use strict';
// The demo NestJS app (seed 004's routes) on @app/redis: sessions for auth, locks around process
// edits, a cached read through wrap(), changes published on pub/sub and streamed as server-sent
// events, rate limits with standard headers on every route, a terminus health check, and the
// service's metrics for Prometheus on GET /metrics.
// Plain JavaScript (no build step), so decorators are applied as functions.
require('reflect-metadata');
const {
  Controller, Get, Post, Put, Patch, Sse, Module, Req, UseGuards, Injectable, Inject, Header,
  HttpException, HttpStatus, UnauthorizedException,
} = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { TerminusModule, HealthCheckService, HealthCheck } = require('@nestjs/terminus');
const { Observable } = require('rxjs');
const { RedisModule, RedisService, RedisHealthIndicator, EventBus } = require('../../js/nestjs');
const { rateLimitMiddleware } = require('../../js/express');

const LOCK_TTL_SECONDS = 300;
const CACHE_TTL_SECONDS = 60;

/** Applies a method decorator and gives the handler the request as its only argument. */
function route(cls, name, ...decorators) {
  const d = Object.getOwnPropertyDescriptor(cls.prototype, name);
  for (const dec of decorators) dec(cls.prototype, name, d);
  Req()(cls.prototype, name, 0);
}

/** `Authorization: Bearer <session id>` → `req.session`, else 401. */
class AuthGuard {
  constructor(redis) { this.redis = redis; }
  async canActivate(ctx) {
    const req = ctx.switchToHttp().getRequest();
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
    const session = m && (await this.redis.getSession(m[1]));
    if (!session) throw new UnauthorizedException({ error: 'unauthorized', message: 'Send Authorization: Bearer <token> from POST /api/v1/login' });
    req.session = session;
    req.sessionId = m[1];
    return true;
  }
}
Injectable()(AuthGuard);
Inject(RedisService)(AuthGuard, undefined, 0);

// The "database" the cache sits in front of.
const processes = new Map();
const processFromDb = async (id) => {
  await new Promise((r) => setTimeout(r, 20));
  return processes.get(id) || { id, title: `Process ${id}`, status: 'draft', description: '', version: 0 };
};

const conflict = (message) => new HttpException({ error: 'lock_conflict', message }, HttpStatus.CONFLICT);

class AuthController {
  constructor(redis) { this.redis = redis; }
  async login(req) {
    const username = req.body && req.body.username;
    if (typeof username !== 'string' || !username) {
      throw new HttpException({ error: 'bad_request', message: 'Send { "username": "..." }' }, HttpStatus.BAD_REQUEST);
    }
    const token = await this.redis.createSession(username, { username }, 3600);
    return { token, expiresIn: 3600 };
  }
}
Controller('api/v1')(AuthController);
Inject(RedisService)(AuthController, undefined, 0);
route(AuthController, 'login', Post('login'));

class ProcessController {
  constructor(redis) {
    this.redis = redis;
    this.bus = new EventBus(redis, { prefix: 'demo:' });
  }

  lockKey(id) { return `process:${id}`; }

  async get(req) {
    const { id } = req.params;
    return this.redis.wrap(`process:${id}`, CACHE_TTL_SECONDS, () => processFromDb(id));
  }

  async save(id, changes, by) {
    const current = await processFromDb(id);
    const next = { ...current, ...changes, id, version: current.version + 1, updatedBy: by };
    processes.set(id, next);
    await this.redis.invalidate(`process:${id}`);
    await this.bus.emit('process.updated', next);
    return next;
  }

  async lock(req) {
    const { id } = req.params;
    const lockToken = await this.redis.acquireLock(this.lockKey(id), LOCK_TTL_SECONDS);
    if (!lockToken) throw conflict(`process ${id} is locked by someone else`);
    return { lockToken, expiresIn: LOCK_TTL_SECONDS };
  }

  async update(req) {
    const { id } = req.params;
    const token = req.headers['x-lock-token'];
    // Only the holder can extend: this both checks the token and keeps the lock for the edit.
    if (!token || !(await this.redis.extendLock(this.lockKey(id), token, LOCK_TTL_SECONDS))) {
      throw conflict(`X-Lock-Token does not hold the lock of process ${id}: POST /api/v1/processes/${id}/lock first`);
    }
    const { title, status, description } = req.body || {};
    return this.save(id, { title, status, description }, req.session.userId);
  }

  async quickUpdate(req) {
    const { id } = req.params;
    try {
      return await this.redis.withLock(this.lockKey(id), () => this.save(id, req.body || {}, req.session.userId), 30);
    } catch (e) {
      if (e.code === 'ERR_LOCK_NOT_ACQUIRED') throw conflict(`process ${id} is locked by someone else`);
      throw e;
    }
  }

  async status(req) {
    const ttl = await this.redis.getLockTtl(this.lockKey(req.params.id));
    return { isLocked: ttl !== null, ttl, expiresIn: ttl === null ? 0 : Math.ceil(ttl / 1000) };
  }

  async extend(req) {
    const { id } = req.params;
    const ttl = Number((req.body && req.body.ttl) || LOCK_TTL_SECONDS);
    const token = req.headers['x-lock-token'];
    if (!token || !(await this.redis.extendLock(this.lockKey(id), token, ttl))) {
      throw conflict(`X-Lock-Token does not hold the lock of process ${id}`);
    }
    return { extended: true, expiresIn: ttl };
  }

  events() {
    return new Observable((subscriber) => {
      const sub = this.bus.on('process.updated', (data) => subscriber.next({ type: 'process.updated', data }));
      return () => { sub.then((s) => s.unsubscribe(), () => {}); };
    });
  }
}
Controller('api/v1')(ProcessController);
Inject(RedisService)(ProcessController, undefined, 0);
UseGuards(AuthGuard)(ProcessController);
route(ProcessController, 'get', Get('processes/:id'));
route(ProcessController, 'lock', Post('processes/:id/lock'));
route(ProcessController, 'update', Put('processes/:id'));
route(ProcessController, 'quickUpdate', Patch('processes/:id/quick-update'));
route(ProcessController, 'status', Get('processes/:id/lock/status'));
route(ProcessController, 'extend', Post('processes/:id/lock/extend'));
Sse('events')(ProcessController.prototype, 'events', Object.getOwnPropertyDescriptor(ProcessController.prototype, 'events'));

class HealthController {
  constructor(health, redisHealth) { this.health = health; this.redisHealth = redisHealth; }
  check() { return this.health.check([() => this.redisHealth.isHealthy('redis')]); }
}
Controller()(HealthController);
Inject(HealthCheckService)(HealthController, undefined, 0);
Inject(RedisHealthIndicator)(HealthController, undefined, 1);
for (const dec of [Get('health'), HealthCheck()]) {
  dec(HealthController.prototype, 'check', Object.getOwnPropertyDescriptor(HealthController.prototype, 'check'));
}

class MetricsController {
  constructor(redis) { this.redis = redis; }
  metrics() { return this.redis.metricsText({ labels: { app: 'nest-demo' } }); }
}
Controller()(MetricsController);
Inject(RedisService)(MetricsController, undefined, 0);
for (const dec of [Get('metrics'), Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')]) {
  dec(MetricsController.prototype, 'metrics', Object.getOwnPropertyDescriptor(MetricsController.prototype, 'metrics'));
}

/** The Nest app on Redis at `url`, rate limited per client (`maxRequests` per minute). */
async function createApp(url, { maxRequests = 100, logger = false } = {}) {
  class AppModule {}
  Module({
    imports: [RedisModule.forRoot({ url, isGlobal: true, logger: false }), TerminusModule],
    controllers: [AuthController, ProcessController, HealthController, MetricsController],
    providers: [AuthGuard, RedisHealthIndicator],
  })(AppModule);
  const app = await NestFactory.create(AppModule, { logger });
  const redis = app.get(RedisService);
  app.use(rateLimitMiddleware(redis, {
    windowMs: 60_000, maxRequests, prefix: 'demo:',
    keyGenerator: (req) => req.headers.authorization || req.ip,
    // An object is sent as JSON, like every other error of this API.
    message: { error: 'rate_limited', message: `At most ${maxRequests} requests a minute: see the Retry-After header (seconds)` },
  }));
  await app.init();
  return app;
}

module.exports = { createApp };
