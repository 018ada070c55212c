'use strict';
// A child process for the multi-process lock tests. argv[2] is a JSON job:
//   { mode: 'mutex', url, key, sections }      withLock sections doing read -> await -> write
//   { mode: 'semaphore', url, key, limit, sections }
//   { mode: 'hold', url, key, ttlMs }          takes the lock, prints "held", then waits forever
// It prints one JSON line with its results.
const { RedisService } = require('../..');

const job = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const redis = await RedisService.connect({ url: job.url, logger: false });
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
