'use strict';
// Arrays whose `length` is far past their contents (2^32 - 1 with one element) and arrays past
// the element limit: refused at once with ERR_INVALID_ARGUMENT naming the argument, before any
// allocation (the JS thread used to loop and allocate 64 GB).
const { check, outcome, connect, done } = require('./common');

(async () => {
  const redis = await connect();
  const sparse = () => { const a = []; a.length = 2 ** 32 - 1; a[0] = 'k'; return a; };
  const started = Date.now();
  const cases = {
    del: () => redis.del(sparse()),
    mget: () => redis.mget(sparse()),
    exists: () => redis.exists(sparse()),
    'sAdd members': () => redis.sAdd('s', sparse()),
    'lPush values': () => redis.lPush('l', sparse()),
    'zAdd members': () => redis.zAdd('z', sparse()),
    'mset pairs': () => redis.mset(sparse()),
    'call args': () => redis.call('DEL', sparse()),
    'eval keys': () => redis.eval('return 1', { keys: sparse() }),
    'invalidate keys': () => redis.invalidate(sparse()),
    'rateLimitMany limits': () => redis.rateLimitMany('k', sparse()),
    'pipeline del': () => redis.pipeline().del(sparse()),
  };
  for (const [name, f] of Object.entries(cases)) {
    const r = await outcome(f);
    const e = r.threw || r.rejected;
    check(`${name}: ERR_INVALID_ARGUMENT`, e && e.code === 'ERR_INVALID_ARGUMENT', e ? `${e.code} ${e.message}` : 'no error');
    check(`${name}: names the limit`, e && /at most 4194304/.test(e.message), e && e.message);
  }
  check('refused quickly', Date.now() - started < 5000, `${Date.now() - started} ms`);
  check('the service still works', (await redis.ping()) === 'PONG');
  await redis.disconnect();
  done('sparse');
})();
