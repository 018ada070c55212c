'use strict';
// The peers' connection, shared by the benchmark suites: a connected ioredis client for `url`.
const IORedis = require('ioredis');

async function connectIoredis(url) {
  const c = new IORedis({ port: Number(new URL(url).port), host: '127.0.0.1', lazyConnect: true });
  await c.connect();
  return c;
}

module.exports = { connectIoredis };
