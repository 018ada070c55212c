'use strict';
// User code that replaces globals the engine once looked up at call time (queueMicrotask, JSON,
// Array.of, Array.prototype.push, Promise, Promise.prototype.then, AbortController): commands
// still go out and settle with right values
// (a no-op queueMicrotask used to leave every later command unsent for ever).
const { check, connect, done } = require('./common');

(async () => {
  const redis = await connect();
  const k = `crash:globals:${process.pid}`;
  const saved = { qm: globalThis.queueMicrotask, parse: JSON.parse, stringify: JSON.stringify, of: Array.of, push: Array.prototype.push };
  await redis.setJson(`${k}:j`, { a: [1, 2] });
  // One tick with a queueMicrotask that drops its callback.
  globalThis.queueMicrotask = () => {};
  const burst = Array.from({ length: 50 }, (_, i) => redis.set(`${k}:${i}`, String(i)));
  globalThis.queueMicrotask = saved.qm;
  const timeout = new Promise((r) => setTimeout(() => r('timeout'), 5000).unref());
  check('a burst queued while queueMicrotask was a no-op settles', (await Promise.race([Promise.all(burst).then(() => 'ok'), timeout])) === 'ok');
  // JSON and Array replaced by throwing stubs while replies are decoded.
  JSON.parse = () => { throw new Error('patched JSON.parse'); };
  JSON.stringify = () => { throw new Error('patched JSON.stringify'); };
  Array.of = () => { throw new Error('patched Array.of'); };
  Array.prototype.push = function () { throw new Error('patched push'); };
  let json; let many; let pipe;
  try {
    json = await redis.getJson(`${k}:j`);
    many = await redis.mget(Array.from({ length: 20 }, (_, i) => `${k}:${i}`));
    pipe = await redis.pipeline().get(`${k}:1`).get(`${k}:2`).exec();
  } finally {
    Object.assign(JSON, { parse: saved.parse, stringify: saved.stringify });
    Array.of = saved.of;
    Array.prototype.push = saved.push;
  }
  // Promise, Promise.prototype.then and AbortController replaced while withLock follows the
  // promise its callback returns and hands it a signal.
  const { then } = Promise.prototype;
  const OriginalPromise = Promise;
  const OriginalAbortController = globalThis.AbortController;
  let locked;
  globalThis.AbortController = function Patched() { throw new Error('patched AbortController'); };
  const pending = redis.withLock(`${k}:lock`, async (lock) => {
    globalThis.Promise = function Patched() { throw new Error('patched Promise'); };
    OriginalPromise.prototype.then = function () { throw new Error('patched then'); };
    return { token: typeof lock.token, aborted: lock.signal.aborted };
  }, 5);
  try {
    locked = await pending;
  } finally {
    globalThis.Promise = OriginalPromise;
    globalThis.AbortController = OriginalAbortController;
    OriginalPromise.prototype.then = then;
  }
  check('withLock with Promise, then and AbortController replaced', JSON.stringify(locked) === '{"token":"string","aborted":false}', locked);
  check('getJson uses the original JSON.parse', JSON.stringify(json) === '{"a":[1,2]}', json);
  check('mget of 20 uses the original Array.of', Array.isArray(many) && many.length === 20 && many[19] === '19', many);
  check('pipeline pairs do not use Array.prototype.push', JSON.stringify(pipe) === '[[null,"1"],[null,"2"]]', pipe);
  await redis.del(Array.from({ length: 50 }, (_, i) => `${k}:${i}`).concat(`${k}:j`));
  await redis.disconnect();
  done('globals');
})();
