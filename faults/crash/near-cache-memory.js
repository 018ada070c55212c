'use strict';
// The near cache's counters live in the addon's memory and JS reads them through an
// ArrayBuffer over that memory (js/near-mirror.js). That buffer must keep the memory alive after
// its service is gone and collected, only one buffer may ever cover it (V8 aborts on a second),
// and a worker ended while its hits are answered must take nothing down. Cluster mode on the
// runtime path refuses `clientCache` (no JS-thread connections): that mode checks the refusal.
const v8 = require('node:v8');
const vm = require('node:vm');
const { Worker, isMainThread, parentPort } = require('node:worker_threads');
const { check, connect, done } = require('./common');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const refused = process.env.REDIS_CLUSTER_NODES && process.env.APP_REDIS_NO_UV === '1';

async function cached() {
  return connect({ clientCache: true });
}

async function hits(redis, n) {
  await redis.set('crash:nc', 'v');
  for (let i = 0; i < n; i++) await redis.get('crash:nc');
}

if (!isMainThread) {
  (async () => {
    const redis = await cached();
    parentPort.postMessage('busy');
    for (;;) await hits(redis, 1000);
  })();
} else if (refused) {
  connect({ clientCache: true }).then(
    () => check('cluster on the runtime path refuses clientCache', false),
    (e) => check('cluster on the runtime path refuses clientCache', e.code === 'ERR_INVALID_ARGUMENT', e.message),
  ).finally(() => done('near-cache-memory'));
} else {
  (async () => {
    // The buffer outlives its service: the memory stays the cache's until the buffer goes.
    let views = [];
    for (let i = 0; i < 20; i++) {
      const redis = await cached();
      const buf = redis.__nearCacheSignals();
      check('the first call hands the memory over', buf instanceof ArrayBuffer);
      check('a second call does not (one buffer per cache)', redis.__nearCacheSignals() === null);
      await hits(redis, 5);
      await redis.clearClientCache();
      await redis.disconnect();
      const view = new Uint32Array(buf);
      views.push([view, Array.from(view)]);
    }
    for (let i = 0; i < 5; i++) {
      gc();
      // Churn: freed memory would be handed out again and overwritten.
      const junk = [];
      for (let j = 0; j < 20000; j++) junk.push(Buffer.alloc(24, 0xab));
      await new Promise(setImmediate);
    }
    check('every counter reads what it held when its service went', views.every(([v, was]) => Array.from(v).every((x, i) => x === was[i])), views.map(([v]) => Array.from(v)));
    views = null;
    gc();

    // Hits answered in JS while the workers that make them are terminated.
    for (let round = 0; round < 3; round++) {
      const workers = Array.from({ length: 4 }, () => new Worker(__filename));
      await Promise.all(workers.map((w) => new Promise((r, j) => { w.once('message', r); w.once('error', j); })));
      await new Promise((r) => setTimeout(r, 50));
      await Promise.all(workers.map((w) => w.terminate()));
      gc();
    }
    const redis = await cached();
    // (In cluster mode the first reads may go out before the slot map is known, uncached.)
    await hits(redis, 200);
    check('hits are still answered and counted', redis.clientCacheStats().hits >= 150, redis.clientCacheStats());
    await redis.disconnect();
    done('near-cache-memory');
  })().catch((e) => { console.error(e); process.exitCode = 1; });
}
