'use strict';
// A load process for the fault suite: mixed commands, locks and rate limits against one server
// for `ms` milliseconds. Records every acknowledged write, how long failed calls took to settle,
// the first success after the outage, and any unhandled rejection or uncaught exception.
// argv[2]: JSON { url, ms, id, commandTimeoutMs }. Prints one JSON line.
const { RedisService } = require('..');

const job = JSON.parse(process.argv[2]);
const stats = {
  ok: 0, failed: 0, codes: {}, maxFailMs: 0, acked: [], unhandled: 0, uncaught: 0,
  firstFailAt: 0, lastFailAt: 0, firstOkAfterFail: 0, locks: 0, rateLimits: 0,
};
process.on('unhandledRejection', () => { stats.unhandled++; });
process.on('uncaughtException', () => { stats.uncaught++; });

async function timed(fn) {
  const start = Date.now();
  try {
    const v = await fn();
    stats.ok++;
    if (stats.lastFailAt && !stats.firstOkAfterFail) stats.firstOkAfterFail = Date.now();
    return v;
  } catch (e) {
    const took = Date.now() - start;
    stats.failed++;
    stats.codes[e.code] = (stats.codes[e.code] || 0) + 1;
    stats.maxFailMs = Math.max(stats.maxFailMs, took);
    if (!stats.firstFailAt) stats.firstFailAt = Date.now();
    stats.lastFailAt = Date.now();
    stats.firstOkAfterFail = 0;
    return undefined;
  }
}

async function main() {
  const redis = await RedisService.connect({
    url: job.url, logger: false, commandTimeoutMs: job.commandTimeoutMs, reconnectMaxDelayMs: 100,
  });
  const end = Date.now() + job.ms;
  let n = 0;
  while (Date.now() < end) {
    n++;
    const key = `w${job.id}:${n}`;
    const batch = [
      timed(async () => {
        const r = await redis.set(key, String(n));
        if (r === 'OK') stats.acked.push(key);
      }),
      timed(() => redis.incr(`counter:${job.id}`)),
      timed(() => redis.get(key)),
    ];
    if (n % 10 === 0) {
      batch.push(timed(async () => {
        await redis.withLock(`job:${n % 3}`, async () => { stats.locks++; }, { ttlMs: 2000, waitMs: 200 });
      }));
    }
    if (n % 5 === 0) {
      batch.push(timed(async () => {
        const r = await redis.rateLimit(`client:${job.id}`, { limit: 1000000, windowMs: 60000 });
        if (!r.degraded) stats.rateLimits++;
      }));
    }
    await Promise.all(batch);
    await new Promise((r) => setTimeout(r, 2));
  }
  await redis.disconnect();
  console.log(JSON.stringify(stats));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
