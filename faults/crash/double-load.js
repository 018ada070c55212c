'use strict';
// The addon registered twice in one thread, as test runners do (the require cache cleared, the
// package required again): two independent bindings, both usable, and the process exits
// cleanly with pipelines and services of both alive (a Drop calling Node-API during the
// environment's teardown used to crash it at exit).
const path = require('node:path');
const { check, done, tlsOptions } = require('./common');

const ROOT = path.join(__dirname, '..', '..');
(async () => {
  const first = require(ROOT);
  for (const k of Object.keys(require.cache)) if (k.startsWith(ROOT) && !k.includes('node_modules')) delete require.cache[k];
  // The .node file left the require cache too: requiring it again registers the addon a second
  // time in this thread, with new exports.
  const second = require(ROOT);
  check('a second, independent registration', first.RedisService !== second.RedisService);
  const a = first.RedisService.fromEnv(process.env, tlsOptions());
  const b = second.RedisService.fromEnv(process.env, tlsOptions());
  await Promise.all([a.connect(), b.connect()]);
  const k = `crash:double:${process.pid}`;
  await a.set(k, 'a');
  check('second binding reads what the first wrote', (await b.get(k)) === 'a');
  const pa = await a.pipeline().get(k).incr(`${k}:n`).exec();
  const pb = await b.pipeline().get(k).incr(`${k}:n`).exec();
  check('pipelines on both', pa[0][1] === 'a' && pb[1][1] === 2, [pa, pb]);
  for (let i = 0; i < 1000; i++) { a.get(k); b.get(k); }
  b.pipeline().get(k).exec();
  await b.del([k, `${k}:n`]);
  done('double-load');
  // No disconnect: services, pipelines and in-flight commands of both are left to the exit.
  setTimeout(() => process.exit(0), 50);
})();
