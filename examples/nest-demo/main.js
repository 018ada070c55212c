#!/usr/bin/env node
// `npm run demo`: the example NestJS app on http://localhost:3000 (PORT to change it). Uses
// REDIS_URL when set; otherwise starts a throwaway redis-server from PATH on a free port and
// stops it on exit.
'use strict';
const { execFileSync } = require('node:child_process');
const { startRedis } = require('../../scripts/redis-server');
const { createApp } = require('./app');

function haveRedisServer() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main() {
  let server = null;
  let url = process.env.REDIS_URL;
  if (!url) {
    if (!haveRedisServer()) {
      console.error('No REDIS_URL set and no redis-server on PATH.\n' +
        '  Install one (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis),\n' +
        '  run `docker compose up -d` in this folder, or point REDIS_URL at a server: REDIS_URL=redis://host:6379 npm run demo');
      process.exit(1);
    }
    server = await startRedis();
    url = server.url;
    console.log(`REDIS_URL is not set: started a throwaway redis-server at ${url} (stopped on exit)`);
  }
  const port = Number(process.env.PORT || 3000);
  const app = await createApp(url, { logger: ['error', 'warn'] });
  await app.listen(port);
  const base = `http://localhost:${port}`;
  console.log(`@app/redis demo (NestJS) listening on ${base}. Try:
  TOKEN=$(curl -s -X POST ${base}/api/v1/login -H 'Content-Type: application/json' -d '{"username":"ada"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -s ${base}/api/v1/processes/123 -H "Authorization: Bearer $TOKEN"
  curl -s -X POST ${base}/api/v1/processes/123/lock -H "Authorization: Bearer $TOKEN"
  curl -s -N ${base}/api/v1/events -H "Authorization: Bearer $TOKEN"     # in another terminal
  curl -s -X PATCH ${base}/api/v1/processes/123/quick-update -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"status":"review"}'
  curl -s ${base}/api/v1/processes/123/lock/status -H "Authorization: Bearer $TOKEN"
  curl -s ${base}/health
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
