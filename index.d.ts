
/**
 * Which binding artifact the generated loader actually loaded: `'native'` for
 * a native addon, otherwise the `platformArchABI` of the WASI flavor. Every
 * flavor napi-rs can build is listed, because `NAPI_RS_NATIVE_LIBRARY_PATH`
 * can point the loader at a WASI artifact this package does not build itself.
 */
export declare const __napiBindingTarget: 'native' | 'wasm32-wasi' | 'wasm32-wasip1'

/**
 * A batch of commands (from `pipeline()` or `multi()`). Each command method queues and returns
 * the batch; `exec()` sends them all in one round trip. Invalid arguments throw at once
 * (`ERR_INVALID_ARGUMENT`), so nothing of a bad batch is ever sent.
 */
export declare class Pipeline {
  /** Value of `key`, or `null` when it does not exist. [GET](https://redis.io/docs/latest/commands/get/) */
  get(key: RedisKey): this
  /** Value of `key` as a Buffer (binary-safe), or `null`. */
  getBuffer(key: RedisKey): this
  /**
   * Sets `key`. Options as an object (`{ EX: 60, NX: true }`; EX/PX/EXAT/PXAT are seconds,
   * milliseconds, epoch seconds, epoch milliseconds) or ioredis tokens (`'EX', 60, 'NX'`).
   * Resolves `'OK'`, or `null` when NX/XX prevented the write (with `GET`: the old value).
   * [SET](https://redis.io/docs/latest/commands/set/)
   */
  set(key: RedisKey, value: RedisValue, ...options: SetArgs): this
  /** Sets `key` with a TTL in seconds. [SETEX](https://redis.io/docs/latest/commands/setex/) */
  setex(key: RedisKey, ttlSeconds: number, value: RedisValue): this
  /** Sets `key` with a TTL in milliseconds. [PSETEX](https://redis.io/docs/latest/commands/psetex/) */
  psetex(key: RedisKey, ttlMs: number, value: RedisValue): this
  /** Gets and deletes `key`. [GETDEL](https://redis.io/docs/latest/commands/getdel/) */
  getdel(key: RedisKey): this
  /**
   * Gets `key` and changes its expiry: `{ EX | PX | EXAT | PXAT: number }` or `{ PERSIST: true }`.
   * [GETEX](https://redis.io/docs/latest/commands/getex/)
   */
  getex(key: RedisKey, options?: GetExOptions): this
  /** Values of several keys (`null` for missing ones), in order. [MGET](https://redis.io/docs/latest/commands/mget/) */
  mget(...keys: Array<RedisKey | RedisKey[]>): this
  /** Sets several keys: `{ k: v }`, `[[k, v], ...]` or `[k, v, ...]`. [MSET](https://redis.io/docs/latest/commands/mset/) */
  mset(entries: Record<string, RedisValue> | Array<[RedisKey, RedisValue]> | RedisValue[]): this
  /** Increments by 1; resolves the new value. [INCR](https://redis.io/docs/latest/commands/incr/) */
  incr(key: RedisKey): this
  /** Increments by an integer. [INCRBY](https://redis.io/docs/latest/commands/incrby/) */
  incrBy(key: RedisKey, increment: number): this
  /** Decrements by 1. [DECR](https://redis.io/docs/latest/commands/decr/) */
  decr(key: RedisKey): this
  /** Decrements by an integer. [DECRBY](https://redis.io/docs/latest/commands/decrby/) */
  decrBy(key: RedisKey, decrement: number): this
  /** Increments by a float; resolves the new value as a number. [INCRBYFLOAT](https://redis.io/docs/latest/commands/incrbyfloat/) */
  incrByFloat(key: RedisKey, increment: number): this
  /** Appends; resolves the new length. [APPEND](https://redis.io/docs/latest/commands/append/) */
  append(key: RedisKey, value: RedisValue): this
  /** Length of the string at `key` in bytes. [STRLEN](https://redis.io/docs/latest/commands/strlen/) */
  strlen(key: RedisKey): this
  /** Parses the JSON stored at `key`; `null` when missing. Rejects with the SyntaxError if the value is not JSON. */
  getJson(key: RedisKey): this
  /** Stores `JSON.stringify(value)` at `key`, with an optional TTL in seconds. `undefined` is refused. */
  setJson(key: RedisKey, value: unknown, ttlSeconds?: number): this
  /** Deletes keys (one, several, or an array); resolves how many existed. [DEL](https://redis.io/docs/latest/commands/del/) */
  del(...keys: Array<RedisKey | RedisKey[]>): this
  /** Deletes keys without blocking the server. [UNLINK](https://redis.io/docs/latest/commands/unlink/) */
  unlink(...keys: Array<RedisKey | RedisKey[]>): this
  /** How many of the keys exist. [EXISTS](https://redis.io/docs/latest/commands/exists/) */
  exists(...keys: Array<RedisKey | RedisKey[]>): this
  /** Sets a TTL in seconds; `true` if the key exists. [EXPIRE](https://redis.io/docs/latest/commands/expire/) */
  expire(key: RedisKey, ttlSeconds: number): this
  /** Sets a TTL in milliseconds; `true` if the key exists. [PEXPIRE](https://redis.io/docs/latest/commands/pexpire/) */
  pexpire(key: RedisKey, ttlMs: number): this
  /** Expires the key at a time: epoch seconds or a `Date`. [EXPIREAT](https://redis.io/docs/latest/commands/expireat/) */
  expireAt(key: RedisKey, timestampSeconds: number | Date): this
  /** Seconds to live; -1 without expiry, -2 when missing. [TTL](https://redis.io/docs/latest/commands/ttl/) */
  ttl(key: RedisKey): this
  /** Milliseconds to live; -1 without expiry, -2 when missing. [PTTL](https://redis.io/docs/latest/commands/pttl/) */
  pttl(key: RedisKey): this
  /** Removes the expiry; `true` if there was one. [PERSIST](https://redis.io/docs/latest/commands/persist/) */
  persist(key: RedisKey): this
  /** Type of the value: `string`, `list`, `set`, `zset`, `hash`, `stream` or `none`. [TYPE](https://redis.io/docs/latest/commands/type/) */
  type(key: RedisKey): this
  /** Renames a key. [RENAME](https://redis.io/docs/latest/commands/rename/) */
  rename(key: RedisKey, newKey: RedisKey): this
  /**
   * One SCAN step: `{ cursor, keys }` (keys without the key prefix); loop until `cursor` is `'0'`.
   * Options `{ MATCH, COUNT, TYPE }`. [SCAN](https://redis.io/docs/latest/commands/scan/)
   */
  scan(cursor: string | number, options?: ScanOptions): this
  /**
   * Sets hash fields: `(key, field, value)` or `(key, { field: value })`; resolves how many were new.
   * [HSET](https://redis.io/docs/latest/commands/hset/)
   */
  hSet(key: RedisKey, fieldOrObject: RedisValue | Record<string, RedisValue>, value?: RedisValue): this
  /** One hash field, or `null`. [HGET](https://redis.io/docs/latest/commands/hget/) */
  hGet(key: RedisKey, field: RedisValue): this
  /** All fields as a plain object (`{}` when missing). [HGETALL](https://redis.io/docs/latest/commands/hgetall/) */
  hGetAll(key: RedisKey): this
  /** Deletes fields; resolves how many existed. [HDEL](https://redis.io/docs/latest/commands/hdel/) */
  hDel(key: RedisKey, ...fields: Array<RedisValue | RedisValue[]>): this
  /** Whether a field exists. [HEXISTS](https://redis.io/docs/latest/commands/hexists/) */
  hExists(key: RedisKey, field: RedisValue): this
  /** Increments a field by an integer. [HINCRBY](https://redis.io/docs/latest/commands/hincrby/) */
  hIncrBy(key: RedisKey, field: RedisValue, increment: number): this
  /** Field names. [HKEYS](https://redis.io/docs/latest/commands/hkeys/) */
  hKeys(key: RedisKey): this
  /** Field values. [HVALS](https://redis.io/docs/latest/commands/hvals/) */
  hVals(key: RedisKey): this
  /** Number of fields. [HLEN](https://redis.io/docs/latest/commands/hlen/) */
  hLen(key: RedisKey): this
  /** Several fields, in order (`null` for missing ones). [HMGET](https://redis.io/docs/latest/commands/hmget/) */
  hmGet(key: RedisKey, ...fields: Array<RedisValue | RedisValue[]>): this
  /** Prepends elements; resolves the new length. [LPUSH](https://redis.io/docs/latest/commands/lpush/) */
  lPush(key: RedisKey, ...elements: Array<RedisValue | RedisValue[]>): this
  /** Appends elements; resolves the new length. [RPUSH](https://redis.io/docs/latest/commands/rpush/) */
  rPush(key: RedisKey, ...elements: Array<RedisValue | RedisValue[]>): this
  /** Removes and returns the first element (or `count` of them as an array). [LPOP](https://redis.io/docs/latest/commands/lpop/) */
  lPop(key: RedisKey, count?: number): this
  /** Removes and returns the last element (or `count` of them). [RPOP](https://redis.io/docs/latest/commands/rpop/) */
  rPop(key: RedisKey, count?: number): this
  /** Elements from `start` to `stop` (inclusive, negative from the end). [LRANGE](https://redis.io/docs/latest/commands/lrange/) */
  lRange(key: RedisKey, start: number, stop: number): this
  /** Keeps only `start`..`stop`. [LTRIM](https://redis.io/docs/latest/commands/ltrim/) */
  lTrim(key: RedisKey, start: number, stop: number): this
  /** List length. [LLEN](https://redis.io/docs/latest/commands/llen/) */
  lLen(key: RedisKey): this
  /** Removes `count` occurrences of `element` (0 = all, negative = from the tail). [LREM](https://redis.io/docs/latest/commands/lrem/) */
  lRem(key: RedisKey, count: number, element: RedisValue): this
  /** Element at `index`, or `null`. [LINDEX](https://redis.io/docs/latest/commands/lindex/) */
  lIndex(key: RedisKey, index: number): this
  /** Adds members; resolves how many were new. [SADD](https://redis.io/docs/latest/commands/sadd/) */
  sAdd(key: RedisKey, ...members: Array<RedisValue | RedisValue[]>): this
  /** Removes members; resolves how many existed. [SREM](https://redis.io/docs/latest/commands/srem/) */
  sRem(key: RedisKey, ...members: Array<RedisValue | RedisValue[]>): this
  /** All members. [SMEMBERS](https://redis.io/docs/latest/commands/smembers/) */
  sMembers(key: RedisKey): this
  /** Whether `member` is in the set. [SISMEMBER](https://redis.io/docs/latest/commands/sismember/) */
  sIsMember(key: RedisKey, member: RedisValue): this
  /** Number of members. [SCARD](https://redis.io/docs/latest/commands/scard/) */
  sCard(key: RedisKey): this
  /**
   * Adds members: `(key, [{ score, value }])`, `(key, { score, value })` or `(key, score, member)`;
   * resolves how many were new. [ZADD](https://redis.io/docs/latest/commands/zadd/)
   */
  zAdd(key: RedisKey, members: ZMember | ZMember[] | number, member?: RedisValue): this
  /** Removes members. [ZREM](https://redis.io/docs/latest/commands/zrem/) */
  zRem(key: RedisKey, ...members: Array<RedisValue | RedisValue[]>): this
  /** Score of `member`, or `null`. [ZSCORE](https://redis.io/docs/latest/commands/zscore/) */
  zScore(key: RedisKey, member: RedisValue): this
  /** Adds `increment` to the score; resolves the new score. [ZINCRBY](https://redis.io/docs/latest/commands/zincrby/) */
  zIncrBy(key: RedisKey, increment: number, member: RedisValue): this
  /** Number of members. [ZCARD](https://redis.io/docs/latest/commands/zcard/) */
  zCard(key: RedisKey): this
  /** Rank (0-based, lowest score first), or `null`. [ZRANK](https://redis.io/docs/latest/commands/zrank/) */
  zRank(key: RedisKey, member: RedisValue): this
  /** Members by rank, lowest score first. [ZRANGE](https://redis.io/docs/latest/commands/zrange/) */
  zRange(key: RedisKey, start: number, stop: number): this
  /** Members by rank, highest score first. [ZREVRANGE](https://redis.io/docs/latest/commands/zrevrange/) */
  zRevRange(key: RedisKey, start: number, stop: number): this
  /** Members with scores by rank: `[{ value, score }]`. */
  zRangeWithScores(key: RedisKey, start: number, stop: number): this
  /**
   * Members with `min <= score <= max` (numbers, or strings such as `'-inf'`, `'(5'`).
   * [ZRANGEBYSCORE](https://redis.io/docs/latest/commands/zrangebyscore/)
   */
  zRangeByScore(key: RedisKey, min: number | string, max: number | string): this
  /** Publishes a message; resolves how many subscribers received it. [PUBLISH](https://redis.io/docs/latest/commands/publish/) */
  publish(channel: string, message: RedisValue): this
  /**
   * Runs a Lua script: `eval(script, numKeys, ...keys, ...args)` (ioredis) or
   * `eval(script, { keys, arguments })` (node-redis). Keys get the key prefix. [EVAL](https://redis.io/docs/latest/commands/eval/)
   */
  eval(script: string, numKeysOrOptions: number | { keys?: RedisKey[]; arguments?: RedisValue[] }, ...keysAndArgs: RedisValue[]): this
  /**
   * Any command: `call('HINCRBYFLOAT', 'k', 'f', '1.5')`. Arguments are sent as given (the key
   * prefix is NOT applied: the service cannot know which arguments are keys).
   */
  call(command: string, ...args: Array<RedisValue | RedisValue[]>): this
  /** Number of queued commands. */
  get length(): number
  /**
   * Sends the queued commands in one round trip. Resolves `[[error | null, result], ...]`
   * in order (a failing command gets an `ERR_REPLY` error in its slot; the others still run,
   * except in `multi()`, where an aborted transaction rejects as a whole). The batch is
   * emptied, so it can be reused.
   */
  exec(): Promise<Array<[Error | null, any]>>
}

/**
 * A Redis connection with the commands, health checks and degradation policy of @app/redis.
 * Create it with `new RedisService(options)` then `await service.connect()`, or in one step
 * with `await RedisService.connect(options)`, or from `REDIS_*` variables with `RedisService.fromEnv()`.
 */
export declare class RedisService {
  /** Value of `key`, or `null` when it does not exist. [GET](https://redis.io/docs/latest/commands/get/) */
  get(key: RedisKey): Promise<string | null>
  /** Value of `key` as a Buffer (binary-safe), or `null`. */
  getBuffer(key: RedisKey): Promise<Buffer | null>
  /**
   * Sets `key`. Options as an object (`{ EX: 60, NX: true }`; EX/PX/EXAT/PXAT are seconds,
   * milliseconds, epoch seconds, epoch milliseconds) or ioredis tokens (`'EX', 60, 'NX'`).
   * Resolves `'OK'`, or `null` when NX/XX prevented the write (with `GET`: the old value).
   * [SET](https://redis.io/docs/latest/commands/set/)
   */
  set(key: RedisKey, value: RedisValue, ...options: SetArgs): Promise<'OK' | string | null>
  /** Sets `key` with a TTL in seconds. [SETEX](https://redis.io/docs/latest/commands/setex/) */
  setex(key: RedisKey, ttlSeconds: number, value: RedisValue): Promise<'OK' | null>
  /** Sets `key` with a TTL in milliseconds. [PSETEX](https://redis.io/docs/latest/commands/psetex/) */
  psetex(key: RedisKey, ttlMs: number, value: RedisValue): Promise<'OK' | null>
  /** Gets and deletes `key`. [GETDEL](https://redis.io/docs/latest/commands/getdel/) */
  getdel(key: RedisKey): Promise<string | null>
  /**
   * Gets `key` and changes its expiry: `{ EX | PX | EXAT | PXAT: number }` or `{ PERSIST: true }`.
   * [GETEX](https://redis.io/docs/latest/commands/getex/)
   */
  getex(key: RedisKey, options?: GetExOptions): Promise<string | null>
  /** Values of several keys (`null` for missing ones), in order. [MGET](https://redis.io/docs/latest/commands/mget/) */
  mget(...keys: Array<RedisKey | RedisKey[]>): Promise<Array<string | null>>
  /** Sets several keys: `{ k: v }`, `[[k, v], ...]` or `[k, v, ...]`. [MSET](https://redis.io/docs/latest/commands/mset/) */
  mset(entries: Record<string, RedisValue> | Array<[RedisKey, RedisValue]> | RedisValue[]): Promise<'OK' | null>
  /** Increments by 1; resolves the new value. [INCR](https://redis.io/docs/latest/commands/incr/) */
  incr(key: RedisKey): Promise<number>
  /** Increments by an integer. [INCRBY](https://redis.io/docs/latest/commands/incrby/) */
  incrBy(key: RedisKey, increment: number): Promise<number>
  /** Decrements by 1. [DECR](https://redis.io/docs/latest/commands/decr/) */
  decr(key: RedisKey): Promise<number>
  /** Decrements by an integer. [DECRBY](https://redis.io/docs/latest/commands/decrby/) */
  decrBy(key: RedisKey, decrement: number): Promise<number>
  /** Increments by a float; resolves the new value as a number. [INCRBYFLOAT](https://redis.io/docs/latest/commands/incrbyfloat/) */
  incrByFloat(key: RedisKey, increment: number): Promise<number>
  /** Appends; resolves the new length. [APPEND](https://redis.io/docs/latest/commands/append/) */
  append(key: RedisKey, value: RedisValue): Promise<number>
  /** Length of the string at `key` in bytes. [STRLEN](https://redis.io/docs/latest/commands/strlen/) */
  strlen(key: RedisKey): Promise<number>
  /** Parses the JSON stored at `key`; `null` when missing. Rejects with the SyntaxError if the value is not JSON. */
  getJson(key: RedisKey): Promise<any>
  /** Stores `JSON.stringify(value)` at `key`, with an optional TTL in seconds. `undefined` is refused. */
  setJson(key: RedisKey, value: unknown, ttlSeconds?: number): Promise<void>
  /** Deletes keys (one, several, or an array); resolves how many existed. [DEL](https://redis.io/docs/latest/commands/del/) */
  del(...keys: Array<RedisKey | RedisKey[]>): Promise<number>
  /** Deletes keys without blocking the server. [UNLINK](https://redis.io/docs/latest/commands/unlink/) */
  unlink(...keys: Array<RedisKey | RedisKey[]>): Promise<number>
  /** How many of the keys exist. [EXISTS](https://redis.io/docs/latest/commands/exists/) */
  exists(...keys: Array<RedisKey | RedisKey[]>): Promise<number>
  /** Sets a TTL in seconds; `true` if the key exists. [EXPIRE](https://redis.io/docs/latest/commands/expire/) */
  expire(key: RedisKey, ttlSeconds: number): Promise<boolean>
  /** Sets a TTL in milliseconds; `true` if the key exists. [PEXPIRE](https://redis.io/docs/latest/commands/pexpire/) */
  pexpire(key: RedisKey, ttlMs: number): Promise<boolean>
  /** Expires the key at a time: epoch seconds or a `Date`. [EXPIREAT](https://redis.io/docs/latest/commands/expireat/) */
  expireAt(key: RedisKey, timestampSeconds: number | Date): Promise<boolean>
  /** Seconds to live; -1 without expiry, -2 when missing. [TTL](https://redis.io/docs/latest/commands/ttl/) */
  ttl(key: RedisKey): Promise<number>
  /** Milliseconds to live; -1 without expiry, -2 when missing. [PTTL](https://redis.io/docs/latest/commands/pttl/) */
  pttl(key: RedisKey): Promise<number>
  /** Removes the expiry; `true` if there was one. [PERSIST](https://redis.io/docs/latest/commands/persist/) */
  persist(key: RedisKey): Promise<boolean>
  /** Type of the value: `string`, `list`, `set`, `zset`, `hash`, `stream` or `none`. [TYPE](https://redis.io/docs/latest/commands/type/) */
  type(key: RedisKey): Promise<string>
  /** Renames a key. [RENAME](https://redis.io/docs/latest/commands/rename/) */
  rename(key: RedisKey, newKey: RedisKey): Promise<'OK'>
  /**
   * One SCAN step: `{ cursor, keys }` (keys without the key prefix); loop until `cursor` is `'0'`.
   * Options `{ MATCH, COUNT, TYPE }`. [SCAN](https://redis.io/docs/latest/commands/scan/)
   */
  scan(cursor: string | number, options?: ScanOptions): Promise<ScanResult>
  /**
   * Sets hash fields: `(key, field, value)` or `(key, { field: value })`; resolves how many were new.
   * [HSET](https://redis.io/docs/latest/commands/hset/)
   */
  hSet(key: RedisKey, fieldOrObject: RedisValue | Record<string, RedisValue>, value?: RedisValue): Promise<number>
  /** One hash field, or `null`. [HGET](https://redis.io/docs/latest/commands/hget/) */
  hGet(key: RedisKey, field: RedisValue): Promise<string | null>
  /** All fields as a plain object (`{}` when missing). [HGETALL](https://redis.io/docs/latest/commands/hgetall/) */
  hGetAll(key: RedisKey): Promise<Record<string, string>>
  /** Deletes fields; resolves how many existed. [HDEL](https://redis.io/docs/latest/commands/hdel/) */
  hDel(key: RedisKey, ...fields: Array<RedisValue | RedisValue[]>): Promise<number>
  /** Whether a field exists. [HEXISTS](https://redis.io/docs/latest/commands/hexists/) */
  hExists(key: RedisKey, field: RedisValue): Promise<boolean>
  /** Increments a field by an integer. [HINCRBY](https://redis.io/docs/latest/commands/hincrby/) */
  hIncrBy(key: RedisKey, field: RedisValue, increment: number): Promise<number>
  /** Field names. [HKEYS](https://redis.io/docs/latest/commands/hkeys/) */
  hKeys(key: RedisKey): Promise<string[]>
  /** Field values. [HVALS](https://redis.io/docs/latest/commands/hvals/) */
  hVals(key: RedisKey): Promise<string[]>
  /** Number of fields. [HLEN](https://redis.io/docs/latest/commands/hlen/) */
  hLen(key: RedisKey): Promise<number>
  /** Several fields, in order (`null` for missing ones). [HMGET](https://redis.io/docs/latest/commands/hmget/) */
  hmGet(key: RedisKey, ...fields: Array<RedisValue | RedisValue[]>): Promise<Array<string | null>>
  /** Prepends elements; resolves the new length. [LPUSH](https://redis.io/docs/latest/commands/lpush/) */
  lPush(key: RedisKey, ...elements: Array<RedisValue | RedisValue[]>): Promise<number>
  /** Appends elements; resolves the new length. [RPUSH](https://redis.io/docs/latest/commands/rpush/) */
  rPush(key: RedisKey, ...elements: Array<RedisValue | RedisValue[]>): Promise<number>
  /** Removes and returns the first element (or `count` of them as an array). [LPOP](https://redis.io/docs/latest/commands/lpop/) */
  lPop(key: RedisKey, count?: number): Promise<string | string[] | null>
  /** Removes and returns the last element (or `count` of them). [RPOP](https://redis.io/docs/latest/commands/rpop/) */
  rPop(key: RedisKey, count?: number): Promise<string | string[] | null>
  /** Elements from `start` to `stop` (inclusive, negative from the end). [LRANGE](https://redis.io/docs/latest/commands/lrange/) */
  lRange(key: RedisKey, start: number, stop: number): Promise<string[]>
  /** Keeps only `start`..`stop`. [LTRIM](https://redis.io/docs/latest/commands/ltrim/) */
  lTrim(key: RedisKey, start: number, stop: number): Promise<'OK'>
  /** List length. [LLEN](https://redis.io/docs/latest/commands/llen/) */
  lLen(key: RedisKey): Promise<number>
  /** Removes `count` occurrences of `element` (0 = all, negative = from the tail). [LREM](https://redis.io/docs/latest/commands/lrem/) */
  lRem(key: RedisKey, count: number, element: RedisValue): Promise<number>
  /** Element at `index`, or `null`. [LINDEX](https://redis.io/docs/latest/commands/lindex/) */
  lIndex(key: RedisKey, index: number): Promise<string | null>
  /** Adds members; resolves how many were new. [SADD](https://redis.io/docs/latest/commands/sadd/) */
  sAdd(key: RedisKey, ...members: Array<RedisValue | RedisValue[]>): Promise<number>
  /** Removes members; resolves how many existed. [SREM](https://redis.io/docs/latest/commands/srem/) */
  sRem(key: RedisKey, ...members: Array<RedisValue | RedisValue[]>): Promise<number>
  /** All members. [SMEMBERS](https://redis.io/docs/latest/commands/smembers/) */
  sMembers(key: RedisKey): Promise<string[]>
  /** Whether `member` is in the set. [SISMEMBER](https://redis.io/docs/latest/commands/sismember/) */
  sIsMember(key: RedisKey, member: RedisValue): Promise<boolean>
  /** Number of members. [SCARD](https://redis.io/docs/latest/commands/scard/) */
  sCard(key: RedisKey): Promise<number>
  /**
   * Adds members: `(key, [{ score, value }])`, `(key, { score, value })` or `(key, score, member)`;
   * resolves how many were new. [ZADD](https://redis.io/docs/latest/commands/zadd/)
   */
  zAdd(key: RedisKey, members: ZMember | ZMember[] | number, member?: RedisValue): Promise<number>
  /** Removes members. [ZREM](https://redis.io/docs/latest/commands/zrem/) */
  zRem(key: RedisKey, ...members: Array<RedisValue | RedisValue[]>): Promise<number>
  /** Score of `member`, or `null`. [ZSCORE](https://redis.io/docs/latest/commands/zscore/) */
  zScore(key: RedisKey, member: RedisValue): Promise<number | null>
  /** Adds `increment` to the score; resolves the new score. [ZINCRBY](https://redis.io/docs/latest/commands/zincrby/) */
  zIncrBy(key: RedisKey, increment: number, member: RedisValue): Promise<number>
  /** Number of members. [ZCARD](https://redis.io/docs/latest/commands/zcard/) */
  zCard(key: RedisKey): Promise<number>
  /** Rank (0-based, lowest score first), or `null`. [ZRANK](https://redis.io/docs/latest/commands/zrank/) */
  zRank(key: RedisKey, member: RedisValue): Promise<number | null>
  /** Members by rank, lowest score first. [ZRANGE](https://redis.io/docs/latest/commands/zrange/) */
  zRange(key: RedisKey, start: number, stop: number): Promise<string[]>
  /** Members by rank, highest score first. [ZREVRANGE](https://redis.io/docs/latest/commands/zrevrange/) */
  zRevRange(key: RedisKey, start: number, stop: number): Promise<string[]>
  /** Members with scores by rank: `[{ value, score }]`. */
  zRangeWithScores(key: RedisKey, start: number, stop: number): Promise<Array<{ value: string; score: number }>>
  /**
   * Members with `min <= score <= max` (numbers, or strings such as `'-inf'`, `'(5'`).
   * [ZRANGEBYSCORE](https://redis.io/docs/latest/commands/zrangebyscore/)
   */
  zRangeByScore(key: RedisKey, min: number | string, max: number | string): Promise<string[]>
  /** Publishes a message; resolves how many subscribers received it. [PUBLISH](https://redis.io/docs/latest/commands/publish/) */
  publish(channel: string, message: RedisValue): Promise<number>
  /**
   * Runs a Lua script: `eval(script, numKeys, ...keys, ...args)` (ioredis) or
   * `eval(script, { keys, arguments })` (node-redis). Keys get the key prefix. [EVAL](https://redis.io/docs/latest/commands/eval/)
   */
  eval(script: string, numKeysOrOptions: number | { keys?: RedisKey[]; arguments?: RedisValue[] }, ...keysAndArgs: RedisValue[]): Promise<any>
  /**
   * Any command: `call('HINCRBYFLOAT', 'k', 'f', '1.5')`. Arguments are sent as given (the key
   * prefix is NOT applied: the service cannot know which arguments are keys).
   */
  call(command: string, ...args: Array<RedisValue | RedisValue[]>): Promise<any>
  /**
   * Creates a service; nothing connects until `connect()`. Only the given options and the
   * defaults apply (use `RedisService.fromEnv()` to read `REDIS_*` variables).
   * Throws `ERR_INVALID_ARGUMENT` naming the option when one is invalid.
   */
  constructor(options?: RedisOptions)
  /**
   * Creates a service from `REDIS_*` variables (`env` defaults to `process.env`), with
   * `overrides` on top: options > `REDIS_URL` > discrete variables > defaults.
   */
  static fromEnv(env?: Record<string, string | undefined>, overrides?: RedisOptions): RedisService
  /**
   * Creates a service and connects it: resolves the connected service, or rejects with
   * `ERR_CONNECTION` / `ERR_TIMEOUT` / `ERR_AUTH` within `connectTimeoutMs`.
   */
  static connect(options?: RedisOptions): Promise<RedisService>
  /**
   * Connects. Idempotent: concurrent calls share one attempt. Rejects with `ERR_CONNECTION`,
   * `ERR_TIMEOUT` or `ERR_AUTH` within `connectTimeoutMs`; with `failOpen` it resolves anyway
   * (one warning is logged) and keeps reconnecting in the background. A disabled service resolves at once.
   */
  connect(): Promise<void>
  /**
   * Closes the connection after in-flight commands finish. Idempotent. Nothing of the service
   * keeps the process alive afterwards.
   */
  disconnect(): Promise<void>
  /** NestJS lifecycle hook: calls `disconnect()`. */
  onModuleDestroy(): Promise<void>
  /** NestJS lifecycle hook: calls `disconnect()`. */
  onApplicationShutdown(signal?: string): Promise<void>
  /** Whether the connection is up right now. */
  get isConnected(): boolean
  /** Whether commands will reach Redis right now: enabled and connected (synchronous). */
  isAvailable(): boolean
  /** Whether the service was created enabled (`enabled` option / `REDIS_ENABLED`). */
  get isEnabled(): boolean
  /** The key prefix applied to every key. */
  get keyPrefix(): string
  /** Connection target with the password masked: `redis://user:***@host:port/db`. */
  get url(): string
  /** Sends PING; resolves `'PONG'`. A disabled service rejects with `ERR_DISABLED`. */
  ping(): Promise<string>
  /**
   * Never rejects: `{ status: 'connected' | 'disconnected' | 'disabled', latencyMs, host, port, db }`.
   * `latencyMs` is the PING round trip in milliseconds (`null` unless connected).
   */
  healthCheck(): Promise<HealthCheckResult>
  /**
   * Returns the service itself, so code written against a raw client
   * (`redisService.getClient().lPush(...)`) keeps working.
   */
  getClient(): this
  /**
   * A pipeline: queue commands with the same names as the service's, then `exec()` sends them
   * in one round trip and resolves `[[error | null, result], ...]`.
   */
  pipeline(): Pipeline
  /** Like `pipeline()`, but `exec()` wraps the commands in MULTI/EXEC: atomic. */
  multi(): Pipeline
  /**
   * Iterates every key (matching `pattern`, without the key prefix) with SCAN:
   * `for await (const key of redis.scanIterator('user:*')) ...`. `count` is a batch-size hint.
   */
  scanIterator(pattern?: string, count?: number): AsyncIterableIterator<string>
}

/**
 * Async iterator returned by `scanIterator()`; use it with `for await`. Keys may repeat if
 * they are modified during the scan (a SCAN guarantee, not ours to hide).
 */
export declare class ScanIterator {
  /** The next key: `{ done: false, value }`, then `{ done: true, value: undefined }`. */
  next(): Promise<IteratorResult<string, undefined>>
  /** Stops the iteration (called by `break` in `for await`). */
  return(): Promise<IteratorResult<string, undefined>>
}

/**
 * Whether any Redis setting (`REDIS_URL`, `REDIS_HOST`, `REDIS_PORT`, ...) is present in `env`
 * (default `process.env`) and `REDIS_ENABLED` is not false.
 */
export declare function isRedisConfigured(env?: Record<string, string | undefined>): JsResult<boolean>

/** A logger: `console`, a NestJS `Logger`, pino, winston... */
export interface RedisLogger {
  log?: (message: string) => void
  warn?: (message: string) => void
  error?: (message: string) => void
}

/**
 * Options for `new RedisService(options)`, `RedisService.connect(options)` and the overrides
 * of `RedisService.fromEnv(env, overrides)`. Explicit options beat `url`, which beats defaults.
 */
export interface RedisOptions {
  /**
   * `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS). Fields given
   * separately below win over the URL's.
   */
  url?: string
  /** Server host name or IP. Default `localhost`. */
  host?: string
  /** Server port. Default `6379`. */
  port?: number
  /** ACL user name (Redis 6+). Default none (the `default` user). */
  username?: string
  /** Password. Never appears in errors, logs, `healthCheck()` or `util.inspect`. */
  password?: string
  /** Database index. Default `0`. */
  db?: number
  /** `true` for TLS with the system trust store, or details. Default off (`rediss://` turns it on). */
  tls?: boolean | RedisTlsOptions
  /** Prefix added to every key argument, to `scan` patterns, and stripped from returned keys. Default `''`. */
  keyPrefix?: string
  /** Milliseconds to wait for a connection (TCP + TLS + AUTH). Default `5000`. */
  connectTimeoutMs?: number
  /** Milliseconds to wait for each reply before rejecting with `ERR_TIMEOUT`. Default `5000`. */
  commandTimeoutMs?: number
  /** First delay in milliseconds between reconnect attempts after a connection loss. Default `50`. */
  reconnectMinDelayMs?: number
  /** Largest delay in milliseconds between reconnect attempts (the delay doubles up to it). Default `500`. */
  reconnectMaxDelayMs?: number
  /** `false` makes a disabled service: nothing connects, reads resolve empty, writes are no-ops. Default `true`. */
  enabled?: boolean
  /**
   * `true`: while Redis is unreachable, reads resolve empty (`null`, `[]`, `{}`, `0`) and writes
   * are no-ops, with one warning per outage. Default `false` (reject with `ERR_CONNECTION`).
   */
  failOpen?: boolean
  /**
   * Where outage warnings go: any object with `log`/`warn`/`error` (a NestJS `Logger`, `console`).
   * `false` silences them. Default `console`.
   */
  logger?: RedisLogger | false
  /** Name shown in `CLIENT LIST` (no spaces). Default none. */
  clientName?: string
}

/** TLS details. PEM text or Buffers. */
export interface RedisTlsOptions {
  /** CA certificate(s) to trust instead of the system store. */
  ca?: string | Buffer
  /** Client certificate, for mutual TLS. */
  cert?: string | Buffer
  /** Client private key, for mutual TLS. */
  key?: string | Buffer
  /** Name to verify the server certificate against (and send as SNI), when it differs from `host`. */
  servername?: string
  /** `false` accepts any certificate: for tests only. Default `true`. */
  rejectUnauthorized?: boolean
}
