'use strict';
// Starts and stops real redis-server processes on free loopback ports (tests, benchmark, demo).
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

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

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once a TCP connection to the port succeeds and PING answers. */
async function waitForPing(port, { tls = false, timeoutMs = 10000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.setTimeout(500);
      const done = (v) => {
        sock.destroy();
        resolve(v);
      };
      sock.on('connect', () => {
        if (tls) return done(true);
        sock.write('PING\r\n');
      });
      sock.on('data', (d) => done(/PONG|NOAUTH|NOPERM/.test(d.toString())));
      sock.on('error', () => done(false));
      sock.on('timeout', () => done(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
}

/**
 * A redis-server owned by a test. `args` are extra command-line arguments.
 * `stop()` kills it for good; `kill(signal)` and `start()` let a test take it down and bring it
 * back on the same port.
 */
class RedisServer {
  constructor({ args = [], tls = null } = {}) {
    this.extraArgs = args;
    this.tls = tls;
    this.proc = null;
    this.port = 0;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-test-'));
    this.log = path.join(this.dir, 'redis.log');
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!this.port) this.port = await freePort();
    const args = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--logfile', this.log];
    if (this.tls) {
      args.push('--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.tls.cert, '--tls-key-file', this.tls.key,
        '--tls-ca-cert-file', this.tls.ca, '--tls-auth-clients', this.tls.authClients ? 'yes' : 'no');
    } else {
      args.push('--port', String(this.port));
    }
    args.push(...this.extraArgs);
    this.proc = spawn('redis-server', args, { stdio: 'ignore' });
    this.proc.unref();
    const exited = new Promise((_, reject) => this.proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${this.readLog()}`))));
    exited.catch(() => {});
    await Promise.race([waitForPing(this.port, { tls: !!this.tls }), exited]);
    return this;
  }

  readLog() {
    try {
      return fs.readFileSync(this.log, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '';
    }
  }

  /** Sends a signal (default SIGKILL) and waits for the process to exit when it is fatal. */
  async kill(signal = 'SIGKILL') {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const p = this.proc;
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      p.kill(signal);
      return;
    }
    const gone = new Promise((r) => p.once('exit', r));
    // The child is unref'd while it runs; waiting for its exit must keep the loop alive.
    p.ref();
    p.kill(signal);
    await gone;
  }

  /** Runs redis-cli against this server and returns its output. */
  cli(...args) {
    return execFileSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' }).trim();
  }

  async stop() {
    await this.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function startRedis(opts) {
  return new RedisServer(opts).start();
}

function haveRedisServer() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * For the demos: `REDIS_URL` when set; else a throwaway redis-server from PATH (returned so the
 * caller stops it); else explains how to get one and exits.
 */
async function demoRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, server: null };
  if (!haveRedisServer()) {
    console.error('No REDIS_URL set and no redis-server on PATH.\n' +
      '  Install one (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis),\n' +
      '  run `docker compose up -d` in this folder, or point REDIS_URL at a server: REDIS_URL=redis://host:6379 npm run demo');
    process.exit(1);
  }
  const server = await startRedis();
  console.log(`REDIS_URL is not set: started a throwaway redis-server at ${server.url} (stopped on exit)`);
  return { url: server.url, server };
}

module.exports = { freePort, startRedis, sleep, waitForPing, RedisServer, demoRedis };
