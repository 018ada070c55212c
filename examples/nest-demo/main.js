#!/usr/bin/env node
// `npm run demo`: the example NestJS app on http://localhost:3000 (PORT to change it). Uses
// REDIS_URL when set; otherwise starts a throwaway redis-server from PATH on a free port and
// stops it on exit.
'use strict';
const { demoRedis } = require('../../scripts/redis-server');
const { createApp } = require('./app');

async function main() {
  const { url, server } = await demoRedis();
  const port = Number(process.env.PORT || 3000);
  const app = await createApp(url, { logger: ['error', 'warn'] });
  await app.listen(port);
  const base = `http://localhost:${port}`;
  console.log(`@app/redis demo (NestJS) listening on ${base}. Paste these in order:
  TOKEN=$(curl -s -X POST ${base}/api/v1/login -H 'Content-Type: application/json' -d '{"username":"ada"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -s -N ${base}/api/v1/events -H "Authorization: Bearer $TOKEN" &   # live updates, printed as they happen
  curl -s -X PATCH ${base}/api/v1/processes/7/quick-update -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"status":"review"}'
  curl -s ${base}/api/v1/processes/7 -H "Authorization: Bearer $TOKEN"
  LOCK=$(curl -s -X POST ${base}/api/v1/processes/123/lock -H "Authorization: Bearer $TOKEN" | sed 's/.*"lockToken":"\\([^"]*\\)".*/\\1/')
  curl -s ${base}/api/v1/processes/123/lock/status -H "Authorization: Bearer $TOKEN"
  curl -s -X POST ${base}/api/v1/processes/123/lock/extend -H "Authorization: Bearer $TOKEN" -H "X-Lock-Token: $LOCK" -H 'Content-Type: application/json' -d '{"ttl":600}'
  curl -s -X PUT ${base}/api/v1/processes/123 -H "Authorization: Bearer $TOKEN" -H "X-Lock-Token: $LOCK" -H 'Content-Type: application/json' -d '{"title":"Q3 report","status":"done"}'
  curl -s -X PATCH ${base}/api/v1/processes/123/quick-update -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"status":"x"}'   # 409: 123 is locked
  curl -s ${base}/health
  curl -s ${base}/metrics
Ctrl-C stops it.`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await app.close();
    if (server) await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
