// Compiled by __test__/types.spec.js with `tsc --noEmit --strict`: the typings must accept the
// documented usage (and reject obvious misuse, see the @ts-expect-error lines).
import { RedisService, EventBus, isRedisConfigured, type RateLimitResult, type LockContext } from '../..'
import { rateLimitMiddleware, RedisSessionStore } from '../../js/express'
import { RedisModule, InjectRedis, getRedisToken, RedisHealthIndicator, RateLimit, RateLimitGuard, RedisThrottlerStorage } from '../../js/nestjs'
import { createTestRedis, RedisTestingModule, type TestRedis } from '../../js/testing'
import globalSetup = require('../../js/testing/global-setup')
import globalTeardown = require('../../js/testing/global-teardown')

async function main(): Promise<void> {
  const redis = await RedisService.connect({ url: 'redis://localhost:6379', keyPrefix: 'app:', lockFailOpen: false, rateLimitFailOpen: true, sessionPrefix: 's:' })
  const v: string | null = await redis.get('k')
  await redis.set('k', 'v', { EX: 60 })
  await redis.set('k', 'v', 'EX', 60, 'NX')
  const n: number = await redis.del('a', 'b')
  const token: string | null = await redis.acquireLock('process:1', 300)
  const ttl: number | null = await redis.getLockTTL('process:1')
  const total: number = await redis.withLock('k', async ({ token, fencingToken, signal }: LockContext) => {
    signal.addEventListener('abort', () => undefined)
    return (fencingToken ?? 0) + token!.length
  }, { ttlMs: 1000, waitMs: 100 })
  const r: RateLimitResult = await redis.rateLimit('ip', { limit: 10, windowMs: 1000, algorithm: 'sliding-window' })
  const many = await redis.rateLimitMany('u', [{ limit: 1, windowSeconds: 1 }, { limit: 100, windowSeconds: 3600 }])
  const first: number = many.limits[0].remaining
  const id: string = await redis.createSession('user', { role: 'admin' }, 3600)
  const s = await redis.getSession(id)
  const cached: { a: number } = await redis.wrap('c', 60, async () => ({ a: 1 }), { staleSeconds: 10 })
  const sub = await redis.subscribe('ch', (message: string, channel: string) => undefined)
  await sub.unsubscribe()
  await new EventBus(redis).emit('e', { x: 1 })
  const health = await redis.healthCheck()
  const status: 'connected' | 'disconnected' | 'disabled' = health.status
  const mode: 'standalone' | 'cluster' | 'sentinel' = health.mode
  const roles: string[] = health.nodes.map((node) => `${node.host}:${node.port} ${node.role} ${node.ok}`)
  new RedisService({ cluster: { nodes: ['10.0.0.1:6379', { host: '10.0.0.2', port: 6380 }] }, password: 'p' })
  new RedisService({ sentinel: { sentinels: [{ host: 's1', port: 26379 }, 's2:26379'], masterName: 'mymaster' } })
  // @ts-expect-error: the lock TTL is a number of seconds or an options object
  await redis.acquireLock('k', 'ten')
  rateLimitMiddleware(redis, { windowMs: 1000, maxRequests: 5, headers: 'draft-6' })
  new RedisSessionStore({ redis, ttlSeconds: 60 })
  RedisModule.forRoot({ url: 'redis://x', name: 'cache', isGlobal: true })
  RedisModule.forRootAsync({ inject: [], useFactory: async () => ({ url: 'redis://x' }) })
  InjectRedis('cache')
  getRedisToken()
  RateLimit({ limit: 1, windowMs: 1000 })
  new RedisThrottlerStorage(redis).increment('k', 1000, 1, 0, 'default')
  const testRedis: TestRedis = await createTestRedis({ keyPrefix: 'app:' })
  const prefix: string = testRedis.testPrefix
  await testRedis.set('k', 'v')
  await testRedis.cleanup()
  RedisTestingModule.forRoot({ url: 'redis://x', isGlobal: false })
  const teardown: () => Promise<void> = await globalSetup()
  await teardown()
  await globalTeardown()
  void prefix
  void [v, n, token, ttl, total, r, first, s, cached, status, mode, roles, isRedisConfigured(), RedisHealthIndicator, RateLimitGuard]
}

void main
