'use strict';
// A child process for the multi-process tests. argv[2] is a JSON job:
//   { mode: 'mutex', url, key, sections }      withLock sections doing read -> await -> write
//   { mode: 'semaphore', url, key, limit, sections }
//   { mode: 'hold', url, key, ttlMs }          takes the lock, prints "held", then waits forever
//   { mode: 'rate', url, key, options, requests, startAt }  fires `requests` rateLimit calls at
//                                              once at `startAt` (epoch ms); reports the allowed
//   { mode: 'rate-for', url, key, options, ms }  calls rateLimit in a loop for `ms`; reports the
//                                              server time of every allowed call
//   { mode: 'wrap', url, key, callers, loaderMs, startAt }  `callers` concurrent wrap() calls on a
//                                              cold key; the loader counts its runs in Redis
// It prints one JSON line with its results.
const { RedisService } = require('../..');

const job = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const redis = await RedisService.connect({ ...(job.conn || { url: job.url }), logger: false });
  const result = { violations: 0, fences: [], done: 0 };
  if (job.mode === 'mutex') {
    for (let i = 0; i < job.sections; i++) {
      await redis.withLock(job.key, async ({ fencingToken }) => {
        if ((await redis.incr('inside')) !== 1) result.violations++;
        result.fences.push(fencingToken);
        const v = Number(await redis.get('counter') || 0);
        await sleep(Math.random() < 0.5 ? 0 : 1);
        await redis.set('counter', String(v + 1));
        await redis.decr('inside');
        result.done++;
      }, { ttlMs: 5000, waitMs: 60000, retryDelayMs: 5 });
    }
  } else if (job.mode === 'semaphore') {
    for (let i = 0; i < job.sections; i++) {
      await redis.withSemaphore(job.key, job.limit, async () => {
        const inside = await redis.incr('sem-inside');
        result.max = Math.max(result.max || 0, inside);
        if (inside > job.limit) result.violations++;
        await sleep(2);
        await redis.decr('sem-inside');
        result.done++;
      }, { ttlMs: 5000, waitMs: 60000, retryDelayMs: 5 });
    }
  } else if (job.mode === 'rate') {
    await sleep(Math.max(0, job.startAt - Date.now()));
    const rs = await Promise.all(Array.from({ length: job.requests }, () => redis.rateLimit(job.key, job.options)));
    result.allowed = rs.filter((r) => r.allowed).length;
  } else if (job.mode === 'rate-for') {
    result.times = [];
    const end = Date.now() + job.ms;
    while (Date.now() < end) {
      const r = await redis.rateLimit(job.key, job.options);
      // The server time of the decision: resetTime - resetMs.
      if (r.allowed) result.times.push(r.resetTime - r.resetMs);
    }
  } else if (job.mode === 'wrap') {
    await sleep(Math.max(0, job.startAt - Date.now()));
    const loader = async () => {
      const run = await redis.incr('loader-runs');
      await sleep(job.loaderMs);
      return { value: 'expensive', run };
    };
    result.values = await Promise.all(Array.from({ length: job.callers }, () => redis.wrap(job.key, 60, loader)));
  } else if (job.mode === 'hold') {
    const token = await redis.acquireLock(job.key, { ttlMs: job.ttlMs });
    console.log(JSON.stringify({ held: token !== null }));
    setInterval(() => {}, 1000);
    return;
  }
  console.log(JSON.stringify(result));
  await redis.disconnect();
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
