'use strict';
// Starts and stops real redis-server processes on free loopback ports (tests, benchmark, demo).
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

// The package's own test helper finds free ports the same way (js/testing/global-setup.js).
const { freePort } = require('../js/testing/global-setup');

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
    return cli(this.port, ...tlsCliArgs(this.tls), ...args);
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

/** redis-cli's arguments for a server started with `tls` (none without). */
function tlsCliArgs(tls) {
  return tls ? ['--tls', '--cacert', tls.ca] : [];
}

function cli(port, ...args) {
  return execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).trim();
}

async function until(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (check()) return;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * A local Redis Cluster: `masters` masters with `replicasPerMaster` replicas each, on free
 * loopback ports, created with `redis-cli --cluster create`. A short `cluster-node-timeout`
 * (`nodeTimeoutMs`) makes failover quick for tests. `options` is what a service needs to reach it.
 */
class RedisCluster {
  constructor({ masters = 3, replicasPerMaster = 1, nodeTimeoutMs = 1000, password = null, tls = null } = {}) {
    this.password = password;
    this.tls = tls;
    this.masters = masters;
    this.replicasPerMaster = replicasPerMaster;
    this.nodeTimeoutMs = nodeTimeoutMs;
    this.nodes = [];
  }

  get options() {
    return { cluster: { nodes: this.nodes.slice(0, this.masters).map((n) => `127.0.0.1:${n.port}`) } };
  }

  async start() {
    const count = this.masters * (1 + this.replicasPerMaster);
    this.nodes = await Promise.all(Array.from({ length: count }, () => new RedisServer({
      tls: this.tls,
      args: ['--cluster-enabled', 'yes', ...(this.tls ? ['--tls-cluster', 'yes', '--tls-replication', 'yes'] : []), '--cluster-node-timeout', String(this.nodeTimeoutMs),
        '--cluster-config-file', 'nodes.conf', '--cluster-replica-validity-factor', '0',
        ...(this.password ? ['--requirepass', this.password, '--masterauth', this.password] : [])],
    }).start()));
    execFileSync('redis-cli', [...this.tlsArgs(), '--cluster', 'create', ...this.nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(this.replicasPerMaster), '--cluster-yes'], { stdio: 'ignore', env: this.cliEnv() });
    await this.waitHealthy();
    return this;
  }

  /** redis-cli reads the password from REDISCLI_AUTH (never on its command line). */
  cliEnv() {
    return this.password ? { ...process.env, REDISCLI_AUTH: this.password } : process.env;
  }

  tlsArgs() {
    return this.tls ? ['--tls', '--cacert', this.tls.ca] : [];
  }

  cli(port, ...args) {
    return execFileSync('redis-cli', [...this.tlsArgs(), '-p', String(port), ...args], { encoding: 'utf8', env: this.cliEnv() }).trim();
  }

  /** Waits until every live node reports `cluster_state:ok` and knows every master. */
  async waitHealthy(timeoutMs = 20000) {
    await until('the cluster to be healthy', () => this.live().every((n) => {
      const info = this.cli(n.port, 'CLUSTER', 'INFO');
      return /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${this.nodes.length}`).test(info);
    }), timeoutMs);
    // Replicas must have synced, or a failover has no candidate.
    await until('replicas to sync', () => this.live().every((n) => {
      const role = this.cli(n.port, 'ROLE').split('\n')[0];
      return role === 'master' || /master_link_status:up/.test(this.cli(n.port, 'INFO', 'replication'));
    }), timeoutMs);
  }

  live() {
    return this.nodes.filter((n) => n.proc && n.proc.exitCode === null && n.proc.signalCode === null);
  }

  /** The live master serving `key`'s slot. */
  masterFor(key) {
    const slot = Number(this.cli(this.live()[0].port, 'CLUSTER', 'KEYSLOT', key));
    const shards = this.cli(this.live()[0].port, 'CLUSTER', 'NODES').split('\n');
    for (const line of shards) {
      const f = line.split(' ');
      if (!f[2].includes('master') || f[2].includes('fail')) continue;
      const port = Number(f[1].split('@')[0].split(':')[1]);
      for (const range of f.slice(8)) {
        const [a, b = a] = range.split('-').map(Number);
        if (slot >= a && slot <= b) return this.nodes.find((n) => n.port === port);
      }
    }
    throw new Error(`no master serves ${key}`);
  }

  /**
   * Starts moving `key`'s slot to another master: marks it importing there and migrating here,
   * and migrates `key` (the source then answers ASK for it). Returns the two masters, the slot,
   * and `finish()`, which gives the slot to the new master on every master (MOVED from then on).
   */
  migrateSlotOf(key) {
    const src = this.masterFor(key);
    const masters = this.live().filter((n) => this.cli(n.port, 'ROLE').split('\n')[0] === 'master');
    const dst = masters.find((n) => n.port !== src.port);
    const slot = this.cli(src.port, 'CLUSTER', 'KEYSLOT', key);
    const id = (n) => this.cli(n.port, 'CLUSTER', 'MYID');
    this.cli(dst.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', id(src));
    this.cli(src.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', id(dst));
    this.cli(src.port, 'MIGRATE', '127.0.0.1', String(dst.port), '', '0', '5000', 'KEYS', key);
    const finish = () => {
      for (const n of masters) this.cli(n.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', id(dst));
    };
    return { src, dst, slot, finish };
  }

  /** Runs a command on every live master (e.g. FLUSHALL). */
  eachMaster(...args) {
    for (const n of this.live()) {
      if (this.cli(n.port, 'ROLE').split('\n')[0] === 'master') this.cli(n.port, ...args);
    }
  }

  async stop() {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/**
 * A Sentinel setup: one master, one replica, three Sentinels monitoring `masterName`, with
 * short timeouts so a failover takes a few seconds.
 */
class RedisSentinels {
  /** `tls` (`{ cert, key, ca }` files): every server and Sentinel speaks TLS only. */
  constructor({ masterName = 'mymaster', downAfterMs = 1000, tls = null } = {}) {
    this.masterName = masterName;
    this.downAfterMs = downAfterMs;
    this.tls = tls ? { ...tls, authClients: false } : null;
    this.sentinels = [];
  }

  get options() {
    return { sentinel: { sentinels: this.sentinels.map((s) => `127.0.0.1:${s.port}`), masterName: this.masterName } };
  }

  cli(port, ...args) {
    return cli(port, ...tlsCliArgs(this.tls), ...args);
  }

  async start() {
    const tls = this.tls;
    const replication = tls ? ['--tls-replication', 'yes'] : [];
    this.master = await new RedisServer({ tls, args: replication }).start();
    this.replica = await new RedisServer({ tls, args: [...replication, '--replicaof', '127.0.0.1', String(this.master.port)] }).start();
    await until('the replica to sync', () => /master_link_status:up/.test(this.replica.cli('INFO', 'replication')));
    this.sentinels = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-sentinel-'));
      const conf = path.join(dir, 'sentinel.conf');
      const listen = tls
        ? ['port 0', `tls-port ${port}`, `tls-cert-file ${tls.cert}`, `tls-key-file ${tls.key}`, `tls-ca-cert-file ${tls.ca}`,
          'tls-auth-clients no', 'tls-replication yes']
        : [`port ${port}`];
      fs.writeFileSync(conf, [
        ...listen, 'bind 127.0.0.1', `dir ${dir}`, `logfile ${path.join(dir, 'sentinel.log')}`,
        `sentinel monitor ${this.masterName} 127.0.0.1 ${this.master.port} 2`,
        `sentinel down-after-milliseconds ${this.masterName} ${this.downAfterMs}`,
        `sentinel failover-timeout ${this.masterName} 3000`,
        `sentinel parallel-syncs ${this.masterName} 1`, '',
      ].join('\n'));
      const proc = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
      proc.unref();
      const s = { port, dir, proc };
      this.sentinels.push(s);
      await waitForPing(port, { tls: !!tls });
    }
    // Every Sentinel must have found the replica, or a failover has no candidate.
    await until('the Sentinels to see the replica', () => this.sentinels.every((s) =>
      /\d/.test(this.cli(s.port, 'SENTINEL', 'REPLICAS', this.masterName)) &&
      this.cli(s.port, 'SENTINEL', 'REPLICAS', this.masterName).includes(String(this.replica.port))));
    return this;
  }

  /** The port the Sentinels name as master now. */
  masterPort() {
    return Number(this.cli(this.sentinels[0].port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName).split('\n')[1]);
  }

  /** The data server whose port is `port`. */
  server(port) {
    return [this.master, this.replica].find((s) => s.port === port);
  }

  async stop() {
    for (const s of this.sentinels) {
      try {
        s.proc.kill('SIGKILL');
      } catch {
        // already gone
      }
      fs.rmSync(s.dir, { recursive: true, force: true });
    }
    await Promise.all([this.master, this.replica].filter(Boolean).map((s) => s.stop()));
  }
}

module.exports = { freePort, startRedis, sleep, waitForPing, RedisServer, RedisCluster, RedisSentinels, demoRedis };
