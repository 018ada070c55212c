'use strict';
// The NestJS module and the demo app. Nest apps run in plain Node child processes (Nest 12 is
// ES modules only, which jest's module runtime cannot load); the spec asserts what they saw.
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { suiteServer, freePort, sleep } = require('./helpers/redis-server');
const { runNestScenario, ROOT } = require('./helpers/spawn');

let srv;
beforeAll(async () => { srv = await suiteServer(); });
afterAll(async () => { await srv.stop(); });

test('RedisModule: injection by class and by token, forRootAsync with ConfigService, named connections, health, app.close() closes them', async () => {
  const r = await runNestScenario('module', srv.url);
  expect(r.sameInstance).toBe(true);
  expect(r.isService).toBe(true);
  expect(r.tokenIsClass).toBe(true);
  expect(r.namedDiffers).toBe(true);
  expect(r.values).toEqual(['default', 'named']);
  // Each connected service holds two connections (see the README), both closed by app.close().
  expect(r.openBefore).toEqual([2, 2]);
  expect(r.openAfter).toEqual([0, 0]);
  expect(r.health.redis.status).toBe('up');
  expect(typeof r.health.redis.latencyMs).toBe('number');
  expect(r.healthDown.redis).toEqual({ status: 'down', reason: 'Redis at 127.0.0.1:1 is unreachable' });
}, 30000);

test('RedisModule.forRoot(url) and a useFactory resolving a URL string', async () => {
  const r = await runNestScenario('moduleUrl', srv.url);
  for (const name of ['forRoot', 'forRootAsync']) {
    expect(r[name]).toEqual({ connected: true, value: name, url: `${srv.url}/0` });
  }
}, 30000);

test('the app fails to start with a clear error when Redis is unreachable', async () => {
  const r = await runNestScenario('unreachable', srv.url);
  expect(r).toMatchObject({ started: false, code: 'ERR_CONNECTION' });
  expect(r.message).toMatch(/Redis connection failed/);
}, 30000);

test('demo app e2e: every route, with the 401, 409 and 429 paths', async () => {
  const r = await runNestScenario('demo', srv.url);
  expect(r.noAuth.status).toBe(401);
  expect(r.badLogin.status).toBe(400);
  expect(r.login.status).toBe(201);
  expect(r.login.body.token).toMatch(/^[0-9a-f]{40}$/);
  expect(r.get.body).toMatchObject({ id: '7', status: 'draft' });
  expect(r.get.headers.ratelimit).toMatch(/^limit=30, remaining=\d+, reset=\d+$/);
  // Both header sets by default, as the Express middleware.
  expect(r.get.headers['x-ratelimit-limit']).toBe('30');
  expect(Number(r.get.headers['x-ratelimit-remaining'])).toBe(Number(/remaining=(\d+)/.exec(r.get.headers.ratelimit)[1]));
  expect(r.cached).toBe(1);
  expect(r.lock.status).toBe(201);
  expect(r.lock.body).toMatchObject({ expiresIn: 300 });
  expect(r.lockTaken.status).toBe(409);
  expect(r.status.body).toMatchObject({ isLocked: true, expiresIn: 300 });
  expect(r.putWrongToken.status).toBe(409);
  expect(r.putWrongToken.body.error).toBe('lock_conflict');
  expect(r.quickWhileLocked.status).toBe(409);
  expect(r.extend.body).toEqual({ extended: true, expiresIn: 600 });
  expect(r.extendWrong.status).toBe(409);
  expect(r.put).toMatchObject({ status: 200, body: { title: 'Edited', status: 'review', version: 1, updatedBy: 'ada' } });
  expect(r.event.status).toBe(200);
  expect(r.event.type).toMatch(/text\/event-stream/);
  expect(r.event.event).toContain('"title":"Edited"');
  expect(r.afterPut.body).toMatchObject({ title: 'Edited', version: 1 }); // the cache was invalidated
  expect(r.quick.body).toMatchObject({ status: 'done', version: 2, updatedBy: 'bob' });
  expect(r.health.body).toMatchObject({ status: 'ok', info: { redis: { status: 'up' } } });
  expect(r.limited.status).toBe(429);
  expect(Number(r.limited.retryAfter)).toBeGreaterThan(0);
  // JSON like every other error of the demo's API.
  expect(r.limited.type).toMatch(/^application\/json/);
  expect(r.limited.body).toMatchObject({ error: 'rate_limited' });
}, 30000);

function get(port, p, headers = {}, method = 'GET', body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ port, path: p, method, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

test('`npm run demo` starts the app with a throwaway redis-server and serves an authenticated request', async () => {
  const port = await freePort();
  const env = { ...process.env, PORT: String(port) };
  delete env.REDIS_URL;
  const child = spawn(process.execPath, [path.join(ROOT, 'examples', 'nest-demo', 'main.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const end = Date.now() + 20000;
    while (!out.includes('listening on') && Date.now() < end) await sleep(50);
    expect(out).toContain('started a throwaway redis-server');
    expect(out).toContain(`listening on http://localhost:${port}`);
    expect(out).toContain('curl -s');
    const login = await get(port, '/api/v1/login', {}, 'POST', JSON.stringify({ username: 'ci' }));
    const { token } = JSON.parse(login.body);
    const res = await get(port, '/api/v1/processes/1', { Authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ id: '1' });
    const metrics = await get(port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^app_redis_commands_total\{app="nest-demo"\} [1-9]\d*$/m);
    expect(metrics.body).toMatch(/^app_redis_command_duration_seconds_count\{app="nest-demo"\} [1-9]\d*$/m);
  } finally {
    child.kill('SIGTERM');
  }
  expect(await exited).toEqual({ code: 0, signal: null });
}, 40000);
