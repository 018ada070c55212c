'use strict';
// Option getters and Proxy traps that throw while a method reads its arguments: the call throws
// that very error, synchronously, and nothing is created or sent (Node used to crash: a promise
// made while the exception was pending was settled through a NULL deferred).
const { check, outcome, connect, done } = require('./common');

const boom = new Error('boom');
const getter = (name) => ({ get [name]() { throw boom; } });
const trap = () => new Proxy({}, {
  get() { throw boom; }, ownKeys() { throw boom; }, has() { throw boom; }, getOwnPropertyDescriptor() { throw boom; },
});

(async () => {
  const redis = await connect();
  const k = `crash:getters:${process.pid}`;
  const cases = {
    'set options': () => redis.set(k, 'v', getter('EX')),
    'set Proxy': () => redis.set(k, 'v', trap()),
    'getex options': () => redis.getex(k, getter('EX')),
    'scan options': () => redis.scan('0', getter('MATCH')),
    'hSet object': () => redis.hSet(k, getter('field')),
    'hSet Proxy': () => redis.hSet(k, trap()),
    'mset object': () => redis.mset(getter(k)),
    'withLock options': () => redis.withLock(k, async () => 1, getter('ttlMs')),
    'withLock Proxy': () => redis.withLock(k, async () => 1, trap()),
    'acquireLock options': () => redis.acquireLock(k, getter('ttlMs')),
    'acquireLockWithFencing options': () => redis.acquireLockWithFencing(k, getter('ttlMs')),
    'extendLock options': () => redis.extendLock(k, 'token', getter('ttlMs')),
    'rateLimit options': () => redis.rateLimit(k, getter('limit')),
    'rateLimit Proxy': () => redis.rateLimit(k, trap()),
    'createSession data': () => redis.createSession('u1', getter('role')),
    'setSession data': () => redis.setSession(k, getter('role')),
    'wrap options': () => redis.wrap(k, 60, async () => 1, getter('staleSeconds')),
    'subscribe options': () => redis.subscribe(k, () => {}, getter('onError')),
    'mget array element': () => { const a = [k]; Object.defineProperty(a, 1, { get() { throw boom; }, enumerable: true }); return redis.mget(a); },
  };
  for (const [name, f] of Object.entries(cases)) {
    const r = await outcome(f);
    check(`${name}: throws the getter's own error`, r.threw === boom || r.rejected === boom,
      r.threw || r.rejected ? String(r.threw || r.rejected) : 'no error');
  }
  // A pipeline whose builder call threw queued nothing.
  const p = redis.pipeline();
  const q = await outcome(() => p.set(`${k}:p`, 'v', getter('EX')));
  check('pipeline set: throws', q.threw === boom);
  check('pipeline set: nothing queued', p.length === 0, p.length);
  check('pipeline set: nothing ran', JSON.stringify(await p.exec()) === '[]');
  check('nothing was written', (await redis.exists([k, `${k}:p`])) === 0);
  check('the service still works', (await redis.set(k, 'ok', { EX: 10 })) === 'OK' && (await redis.get(k)) === 'ok');
  await redis.disconnect();
  done('getters');
})();
