'use strict';
// jest `globalSetup: '@app/redis/testing/global-setup'` (with
// `globalTeardown: '@app/redis/testing/global-teardown'`), or vitest
// `globalSetup: ['@app/redis/testing/global-setup']` (vitest calls the function this returns to
// tear down). With REDIS_URL set it does nothing; otherwise it starts one throwaway
// redis-server (from PATH) for the whole run, on a free loopback port, keeping nothing on disk,
// and sets REDIS_URL for the test workers (so an app under test that reads REDIS_URL finds it
// too). With neither, the tests' createTestRedis() says what to start.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const KEY = Symbol.for('@app/redis/testing:server');

/** A free loopback port (the OS picks one; it is released before it is used). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function answers(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(500);
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => done(d.toString().includes('PONG')));
    s.on('error', () => done(false));
    s.on('timeout', () => done(false));
  });
}

async function teardown() {
  const server = globalThis[KEY];
  if (!server) return;
  globalThis[KEY] = undefined;
  if (server.proc.exitCode === null && server.proc.signalCode === null) {
    const gone = new Promise((r) => server.proc.once('exit', r));
    server.proc.kill('SIGKILL');
    await gone;
  }
  fs.rmSync(server.dir, { recursive: true, force: true });
  if (process.env.REDIS_URL === server.url) delete process.env.REDIS_URL;
}

async function globalSetup() {
  if (process.env.REDIS_URL || globalThis[KEY]) return teardown;
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-testing-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const failed = new Promise((resolve) => {
    proc.once('error', (e) => resolve(e));
    proc.once('exit', (code) => resolve(new Error(`redis-server exited with ${code}`)));
  });
  const deadline = Date.now() + 10000;
  let up = false;
  while (!up && Date.now() < deadline) {
    const early = await Promise.race([failed, new Promise((r) => setTimeout(() => r(null), 20))]);
    if (early) {
      fs.rmSync(dir, { recursive: true, force: true });
      // No redis-server on PATH (or it would not start): leave REDIS_URL unset; createTestRedis()
      // then explains what to start.
      return teardown;
    }
    up = await answers(port);
  }
  if (!up) {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`@app/redis/testing: redis-server did not answer on port ${port} within 10 s`);
  }
  proc.unref();
  const url = `redis://127.0.0.1:${port}`;
  globalThis[KEY] = { proc, dir, url };
  process.env.REDIS_URL = url;
  return teardown;
}

module.exports = globalSetup;
module.exports.default = globalSetup;
module.exports.setup = globalSetup;
module.exports.teardown = teardown;
module.exports.freePort = freePort;
