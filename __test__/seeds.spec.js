'use strict';
// The seed codebases' own samples (../shared/seeds/), run against @app/redis with only the
// import changed. Lock, rate-limit and session helpers of their own that need later features
// (withLock, rateLimit, sessions) are exercised in those features' suites.
const { RedisService, isRedisConfigured } = require('..');
const { suiteServer } = require('./helpers/redis-server');

let srv;
let redisService;
beforeAll(async () => {
  srv = await suiteServer();
  redisService = new RedisService({ url: srv.url, logger: false });
  await redisService.connect();
});
afterEach(async () => { await redisService.call('FLUSHDB'); });
afterAll(async () => {
  await redisService.disconnect();
  await srv.stop();
});

describe('seed 000 (ioredis style helpers)', () => {
  test('getCachedData / setCachedData', async () => {
    const redis = redisService;
    async function getCachedData(key) {
      if (!redis) return null;
      const data = await redis.get(key);
      return data ? JSON.parse(data) : null;
    }
    async function setCachedData(key, value, ttlSeconds) {
      if (!redis) return;
      await redis.set(key, JSON.stringify(value), 'EX', ttlSeconds);
    }
    await setCachedData('cache:x', { a: 1 }, 60);
    expect(await getCachedData('cache:x')).toEqual({ a: 1 });
    expect(await redis.ttl('cache:x')).toBeGreaterThan(55);
    expect(await getCachedData('cache:none')).toBeNull();
  });

  test('redis-config-available', () => {
    expect(isRedisConfigured({ REDIS_URL: 'redis://:password@hostname:6379/0' })).toBe(true);
    expect(isRedisConfigured({})).toBe(false);
  });
});

describe('seed 001 (node-redis style RedisService)', () => {
  test('core operations as documented', async () => {
    await redisService.set('user:123', JSON.stringify({ name: 'John Doe' }));
    await redisService.set('session:abc', 'session-data', { EX: 300 });
    const userData = await redisService.get('user:123');
    const user = userData ? JSON.parse(userData) : null;
    expect(user).toEqual({ name: 'John Doe' });
    expect(await redisService.exists('user:123')).toBe(1);
    await redisService.del('user:123');
    expect(await redisService.exists('user:123')).toBe(0);
    await redisService.expire('session:abc', 600);
    expect(await redisService.ttl('session:abc')).toBeGreaterThan(595);
    await redisService.hSet('user:123:profile', 'name', 'John Doe');
    await redisService.hSet('user:123:profile', 'email', 'john@example.com');
    expect(await redisService.hGet('user:123:profile', 'name')).toBe('John Doe');
    expect(await redisService.hGetAll('user:123:profile')).toEqual({ name: 'John Doe', email: 'john@example.com' });
    expect(redisService.isConnected).toBe(true);
  });

  test('advanced operations through getClient()', async () => {
    const client = redisService.getClient();
    expect(client).toBeTruthy();
    await client.lPush('notifications:user:123', 'New message');
    expect(await client.lRange('notifications:user:123', 0, 9)).toEqual(['New message']);
    await client.sAdd('active-users', 'user123', 'user456');
    expect((await client.sMembers('active-users')).sort()).toEqual(['user123', 'user456']);
    await client.zAdd('leaderboard', [{ score: 100, value: 'player1' }, { score: 85, value: 'player2' }]);
    expect(await client.zRevRange('leaderboard', 0, 4)).toEqual(['player1', 'player2']);
    expect(await client.publish('notifications', JSON.stringify({ message: 'Hello!' }))).toBe(0);
  });

  test('ApiCache', async () => {
    class ApiCache {
      static async getCachedResponse(endpoint) {
        const cached = await redisService.get(`api:${endpoint}`);
        return cached ? JSON.parse(cached) : null;
      }
      static async setCachedResponse(endpoint, data, ttlSeconds = 300) {
        return await redisService.set(`api:${endpoint}`, JSON.stringify(data), { EX: ttlSeconds });
      }
      static async invalidateCache(endpoint) {
        return await redisService.del(`api:${endpoint}`);
      }
    }
    expect(await ApiCache.setCachedResponse('user-profile-1', { id: 1 })).toBe('OK');
    expect(await ApiCache.getCachedResponse('user-profile-1')).toEqual({ id: 1 });
    expect(await ApiCache.invalidateCache('user-profile-1')).toBe(1);
    expect(await ApiCache.getCachedResponse('user-profile-1')).toBeNull();
  });

  test('SessionManager', async () => {
    let n = 0;
    const generateSessionId = () => `sid-${++n}`;
    class SessionManager {
      static async createSession(userId, sessionData) {
        const sessionId = generateSessionId();
        const data = { userId, createdAt: new Date().toISOString(), ...sessionData };
        await redisService.set(`session:${sessionId}`, JSON.stringify(data), { EX: 86400 });
        return sessionId;
      }
      static async getSession(sessionId) {
        const data = await redisService.get(`session:${sessionId}`);
        return data ? JSON.parse(data) : null;
      }
      static async updateSession(sessionId, updates) {
        const session = await this.getSession(sessionId);
        if (!session) return false;
        return await redisService.set(`session:${sessionId}`, JSON.stringify({ ...session, ...updates }), { EX: 86400 });
      }
      static async destroySession(sessionId) {
        return await redisService.del(`session:${sessionId}`);
      }
      static async extendSession(sessionId, additionalSeconds = 3600) {
        return await redisService.expire(`session:${sessionId}`, additionalSeconds);
      }
    }
    const sessionId = await SessionManager.createSession('user123', { role: 'admin', permissions: ['read', 'write'] });
    const session = await SessionManager.getSession(sessionId);
    expect(session.userId).toBe('user123');
    expect(session.permissions).toEqual(['read', 'write']);
    expect(await SessionManager.updateSession(sessionId, { role: 'user' })).toBe('OK');
    expect((await SessionManager.getSession(sessionId)).role).toBe('user');
    expect(await SessionManager.updateSession('nope', {})).toBe(false);
    expect(await SessionManager.extendSession(sessionId)).toBe(true);
    expect(await SessionManager.destroySession(sessionId)).toBe(1);
  });

  test('RateLimiter (MULTI INCR/EXPIRE, results[0][1])', async () => {
    class RateLimiter {
      static async checkRateLimit(identifier, limit = 100, windowSeconds = 3600) {
        const key = `rate_limit:${identifier}`;
        const client = redisService.getClient();
        if (!client) return { allowed: true, remaining: limit };
        const pipeline = client.multi();
        pipeline.incr(key);
        pipeline.expire(key, windowSeconds);
        const results = await pipeline.exec();
        const count = results[0][1];
        if (count > limit) {
          const ttl = await client.ttl(key);
          return { allowed: false, remaining: 0, resetTime: Date.now() + (ttl * 1000) };
        }
        return { allowed: true, remaining: limit - count };
      }
    }
    for (let i = 0; i < 3; i++) expect((await RateLimiter.checkRateLimit('1.2.3.4', 3, 60)).allowed).toBe(true);
    const refused = await RateLimiter.checkRateLimit('1.2.3.4', 3, 60);
    expect(refused.allowed).toBe(false);
    expect(refused.resetTime).toBeGreaterThan(Date.now() + 50000);
  });

  test('RealtimeDataManager', async () => {
    const key = 'room:r1:users';
    await redisService.hSet(key, 'u1', JSON.stringify({ joinedAt: 1 }));
    const client = redisService.getClient();
    const users = await redisService.hGetAll(key);
    expect(JSON.parse(users.u1)).toEqual({ joinedAt: 1 });
    await client.lPush('room:r1:messages', JSON.stringify({ content: 'hi' }));
    await client.lTrim('room:r1:messages', 0, 99);
    await client.expire('room:r1:messages', 86400);
    const messages = await client.lRange('room:r1:messages', 0, 9);
    expect(messages.map((m) => JSON.parse(m))).toEqual([{ content: 'hi' }]);
    expect(await client.hDel(key, 'u1')).toBe(1);
  });

  test('DistributedLock with the Lua release script via client.eval', async () => {
    const client = redisService.getClient();
    const script = `
      if redis.call("GET", KEYS[1]) == ARGV[1] then
        return redis.call("DEL", KEYS[1])
      else
        return 0
      end
    `;
    expect(await client.set('lock:r', 'tok', { NX: true, EX: 30 })).toBe('OK');
    expect(await client.set('lock:r', 'tok2', { NX: true, EX: 30 })).toBeNull();
    expect(await client.eval(script, 1, 'lock:r', 'wrong')).toBe(0);
    expect(await client.eval(script, 1, 'lock:r', 'tok')).toBe(1);
  });

  test('healthCheck used in a health endpoint', async () => {
    const redis = await redisService.healthCheck();
    const body = { status: redis.status === 'connected' ? 'healthy' : 'unhealthy', services: { redis } };
    expect(body.status).toBe('healthy');
    expect(typeof body.services.redis.latencyMs).toBe('number');
  });
});

describe('seed 003 (NestJS services with constructor injection)', () => {
  test('UserService cache, SessionService, OrderService lock', async () => {
    const prisma = { user: { findUnique: async ({ where }) => ({ id: where.id, name: 'N' }) } };
    class UserService {
      constructor(redis) { this.redis = redis; this.prisma = prisma; }
      async getUser(id) {
        const cached = await this.redis.get(`user:${id}`);
        if (cached) return JSON.parse(cached);
        const user = await this.prisma.user.findUnique({ where: { id } });
        await this.redis.setex(`user:${id}`, 3600, JSON.stringify(user));
        return user;
      }
      async invalidateUserCache(id) { await this.redis.del(`user:${id}`); }
    }
    class SessionService {
      constructor(redis) { this.redis = redis; }
      async createSession(userId, sessionData) {
        const sessionId = require('node:crypto').randomUUID();
        await this.redis.setex(`session:${sessionId}`, 86400, JSON.stringify({ userId, ...sessionData }));
        return sessionId;
      }
      async getSession(sessionId) {
        const session = await this.redis.get(`session:${sessionId}`);
        return session ? JSON.parse(session) : null;
      }
      async deleteSession(sessionId) { await this.redis.del(`session:${sessionId}`); }
    }
    class OrderService {
      constructor(redis) { this.redis = redis; this.done = 0; }
      async processOrder(orderId) {
        const lockKey = `lock:order:${orderId}`;
        const acquired = await this.redis.set(lockKey, 'locked', 'PX', 30000, 'NX');
        if (!acquired) throw new Error('Order is being processed by another instance');
        try { this.done++; } finally { await this.redis.del(lockKey); }
      }
    }
    const users = new UserService(redisService);
    expect(await users.getUser('7')).toEqual({ id: '7', name: 'N' });
    expect(await redisService.ttl('user:7')).toBeGreaterThan(3590);
    await users.invalidateUserCache('7');
    expect(await redisService.exists('user:7')).toBe(0);
    const sessions = new SessionService(redisService);
    const sid = await sessions.createSession('u1', { role: 'x' });
    expect(await sessions.getSession(sid)).toEqual({ userId: 'u1', role: 'x' });
    await sessions.deleteSession(sid);
    expect(await sessions.getSession(sid)).toBeNull();
    const orders = new OrderService(redisService);
    await redisService.set('lock:order:9', 'locked', 'PX', 30000, 'NX');
    await expect(orders.processOrder('9')).rejects.toThrow(/being processed/);
    await redisService.del('lock:order:9');
    await orders.processOrder('9');
    expect(orders.done).toBe(1);
  });
});
