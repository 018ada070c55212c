import type { RedisService, RedisOptions } from '../index'

/** A `RedisService` isolated for one test file: see `createTestRedis`. */
export interface TestRedis extends RedisService {
  /** The prefix of every key this instance touches: `<your keyPrefix>test:<worker>:<random>:`. */
  readonly testPrefix: string
  /**
   * Deletes every key under `testPrefix` (SCAN + UNLINK, never FLUSHDB), then disconnects.
   * Call it in `afterAll`.
   */
  cleanup(): Promise<void>
}

/**
 * A connected `RedisService` whose keys (plain keys, locks, rate limits, sessions, cache entries
 * and `scan` patterns) live under a prefix unique to this test worker and this call, so test
 * files running in parallel never see each other's data. The server is `options.url`, else
 * `REDIS_URL` (set by you, or by the package's global setup when it started a local
 * redis-server); with neither, it rejects with `ERR_NO_TEST_REDIS` saying what to start.
 */
export function createTestRedis(options?: RedisOptions): Promise<TestRedis>

/** `RedisTestingModule.forRoot()` options: connection options plus module settings. */
export interface RedisTestingModuleOptions extends RedisOptions {
  /** Register the module globally (default **true**: every module of the app gets the test connection). */
  isGlobal?: boolean
  /** Provide a named connection (`@InjectRedis(name)`) instead of the default `RedisService`. */
  name?: string
}

/**
 * For `Test.createTestingModule({ imports: [RedisTestingModule.forRoot()] })`: provides an
 * isolated `RedisService` (as `createTestRedis` makes) under the token `RedisModule` uses, and
 * deletes its keys and disconnects on `app.close()`.
 */
export declare class RedisTestingModule {
  static forRoot(options?: RedisTestingModuleOptions): any
}
