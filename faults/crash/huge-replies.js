'use strict';
// Replies and pub/sub messages longer than V8's longest string (536,870,888 characters): the
// call rejects with ERR_REPLY saying so (getBuffer reads them), a message reaches the
// subscription's onError; the connection stays in step (Node used to crash, or never settle,
// or return a hole).
const { check, outcome, connect, done } = require('./common');

const LEN = 536870888 + 13;

(async () => {
  const redis = await connect();
  const k = `crash:huge:${process.pid}`;
  await redis.call('SETRANGE', k, LEN - 1, 'x');
  await redis.set(`${k}:small`, 'ok');
  await redis.hSet(`${k}:h`, 'f', 'v');
  const tooLong = (r) => { const e = r.rejected || r.threw; return e && e.code === 'ERR_REPLY' && /getBuffer/.test(e.message); };
  const cases = {
    get: () => redis.get(k),
    getJson: () => redis.getJson(k),
    'mget of 2': () => redis.mget([k, `${k}:small`]),
    'mget of 16': () => redis.mget([k, ...Array(15).fill(`${k}:small`)]),
    'call GET': () => redis.call('GET', k),
  };
  for (const [name, f] of Object.entries(cases)) {
    const r = await outcome(f);
    check(`${name}: ERR_REPLY`, tooLong(r), r.value !== undefined ? `resolved ${typeof r.value}` : String(r.rejected || r.threw));
    check(`${name}: next reply is in step`, (await redis.get(`${k}:small`)) === 'ok');
  }
  const p = await redis.pipeline().get(k).get(`${k}:small`).exec();
  check('pipeline: that slot errs with ERR_REPLY', p[0][0] && p[0][0].code === 'ERR_REPLY' && p[0][1] === null, p[0]);
  check('pipeline: the next slot is right', p[1][0] === null && p[1][1] === 'ok', p[1]);
  const buf = await redis.getBuffer(k);
  check('getBuffer reads it', Buffer.isBuffer(buf) && buf.length === LEN, buf && buf.length);

  // Pub/sub: the message cannot be delivered as a string; onError hears of it. (Redis drops a
  // subscriber past its pub/sub output buffer limit, 32 MB by default: faults/crash.js starts
  // its servers without that limit.) Standalone only: in a Redis 7.0 cluster a message this big
  // is relayed over the cluster bus, and neither it nor the next one reached any subscriber
  // within 60 s here (a server matter; the decoding path is the same in both modes).
  if (!process.env.REDIS_CLUSTER_NODES) {
    const heard = [];
    const sub = await redis.subscribe(`${k}:ch`, (m) => heard.push(['message', m.length]),
      { onError: (err, channel) => heard.push(['error', err.code, channel]) });
    await redis.publish(`${k}:ch`, buf);
    await redis.publish(`${k}:ch`, 'small');
    for (let i = 0; i < 400 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    check('pub/sub: onError, then the next message', JSON.stringify(heard) === JSON.stringify([['error', 'ERR_REPLY', `${k}:ch`], ['message', 5]]), heard);
    await sub.unsubscribe();
  }
  await redis.del([k, `${k}:small`, `${k}:h`]);
  await redis.disconnect();
  done('huge-replies');
})();
