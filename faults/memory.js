'use strict';
// 1,000,000 mixed operations (commands, withLock, rateLimit, subscribe/unsubscribe cycles,
// connect/disconnect cycles) against one server, after a 200,000-operation warm-up; reports RSS
// and heapUsed before and after. MEMORY_OPS changes the count.
// Run with --expose-gc. argv[2]: JSON { url }. Prints one JSON line.
const { RedisService } = require('..');

const { url } = JSON.parse(process.argv[2]);
const TOTAL = Number(process.env.MEMORY_OPS || 1_000_000);
const BATCH = 1000;

function snapshot() {
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

async function batch(redis, start) {
  const ps = [];
  for (let i = start; i < start + BATCH; i++) {
    const k = `m:${i % 5000}`;
    switch (i % 20) {
      case 0: ps.push(redis.withLock(`lock:${i % 50}`, () => i, { ttlMs: 5000, waitMs: 2000 })); break;
      case 1: ps.push(redis.rateLimit(`rl:${i % 100}`, { limit: 1e9, windowMs: 60000 })); break;
      case 2: ps.push(redis.hSet(`h:${i % 100}`, 'f', String(i))); break;
      case 3: ps.push(redis.del(k)); break;
      case 4: ps.push(redis.incr(`c:${i % 100}`)); break;
      default: ps.push(i % 2 ? redis.set(k, 'v'.repeat(64)) : redis.get(k));
    }
  }
  await Promise.all(ps);
}

async function cycleSubscribe(redis) {
  const sub = await redis.subscribe('mem', () => {});
  await redis.publish('mem', 'x');
  await sub.unsubscribe();
}

async function cycleConnect() {
  const r = await RedisService.connect({ url, logger: false });
  await r.get('m:1');
  await r.disconnect();
}

async function main() {
  const redis = await RedisService.connect({ url, logger: false });
  // Warm-up to steady state: the allocator and V8 keep the pages they reach first (a one-time
  // high-water mark of about 20 MB, the same after 1 or 3 million operations), which is not a leak.
  for (let i = 0; i < 200; i++) {
    await batch(redis, i * BATCH);
    if (i % 10 === 0) await cycleSubscribe(redis);
    if (i % 50 === 0) await cycleConnect();
  }
  const before = snapshot();
  let ops = 0;
  for (let start = 0; ops < TOTAL; start += BATCH) {
    await batch(redis, start);
    ops += BATCH;
    if (start % 10000 === 0) { await cycleSubscribe(redis); ops += 3; }
    if (start % 50000 === 0) { await cycleConnect(); ops += 3; }
  }
  await redis.disconnect();
  await new Promise((r) => setTimeout(r, 200));
  const after = snapshot();
  console.log(JSON.stringify({
    ops, rssBefore: before.rss, rssAfter: after.rss, heapBefore: before.heap, heapAfter: after.heap,
    rssGrowth: after.rss - before.rss, heapGrowth: after.heap - before.heap,
  }));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
