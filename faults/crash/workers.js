'use strict';
// Workers ended with work in flight: thousands of commands, pipelines, rate limits, locks and a
// subscription, then `worker.terminate()` (three rounds of 8 workers), then a round where each
// worker calls `process.exit()`. The process must go on and exit by itself (it used to die of
// SIGSEGV, or SIGABRT "uv_loop_close() while having open handles": our libuv handles outlived
// the worker's environment).
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { check, done } = require('./common');

if (isMainThread) {
  (async () => {
    const round = async (mode) => {
      const workers = Array.from({ length: 8 }, () => new Worker(__filename, { workerData: { mode } }));
      const exits = workers.map((w) => new Promise((r) => w.once('exit', r)));
      await Promise.all(workers.map((w) => new Promise((r, j) => { w.once('message', r); w.once('error', j); })));
      if (mode === 'terminate') await Promise.all(workers.map((w) => w.terminate()));
      return Promise.all(exits);
    };
    for (let i = 0; i < 3; i++) check(`terminate round ${i}`, (await round('terminate')).length === 8);
    check('process.exit round', (await round('exit')).every((c) => c === 7));
    done('workers');
  })().catch((e) => { console.error(e); process.exitCode = 1; });
} else {
  const { connect } = require('./common');
  (async () => {
    const redis = await connect();
    const swallow = () => {};
    await redis.subscribe(`crash:workers:${process.pid}`, () => {});
    for (let i = 0; i < 5000; i++) redis.get(`crash:workers:${i % 10}`).catch(swallow);
    const p = redis.pipeline();
    for (let i = 0; i < 500; i++) p.incr('crash:workers:n');
    p.exec().catch(swallow);
    for (let i = 0; i < 200; i++) redis.rateLimit(`crash:workers:${i}`, { limit: 5, windowSeconds: 10 }).catch(swallow);
    for (let i = 0; i < 50; i++) redis.withLock(`crash:workers:lock:${i}`, () => new Promise(() => {}), 5).catch(swallow);
    parentPort.postMessage('busy');
    if (workerData.mode === 'exit') process.exit(7);
  })();
}
