'use strict';
// Connection lifecycle: connect/disconnect, outages, failOpen, process exit.
const { spawn } = require('node:child_process');
const path = require('node:path');
const util = require('node:util');
const { RedisService } = require('..');
const { startRedis, freePort, sleep } = require('./helpers/redis-server');
const { until } = require('./helpers/assert');

const ROOT = path.resolve(__dirname, '..');

function recorder() {
  const lines = [];
  return {
    lines,
    log: (m) => lines.push(['log', m]),
    warn: (m) => lines.push(['warn', m]),
    error: (m) => lines.push(['error', m]),
  };
}

// A connected service holds two connections: commands go over one driven by the JS thread, and
// scripts, lock renewal and health checks over one on the Rust runtime (see the README). With
// APP_REDIS_NO_UV (the fallback path without libuv) everything shares the runtime connection.
const PER_SERVICE = process.env.APP_REDIS_NO_UV ? 1 : 2;

function clientCount(server, name) {
  return server.cli('CLIENT', 'LIST').split('\n').filter((l) => l.includes(`name=${name} `)).length;
}

describe('connect', () => {
  let server;
  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server.stop(); });

  test('new RedisService() does not connect; connect() does; isConnected and isAvailable follow', async () => {
    const r = new RedisService({ url: server.url, logger: false, clientName: 'lazy-one' });
    expect(r.isConnected).toBe(false);
    expect(r.isAvailable()).toBe(false);
    expect(clientCount(server, 'lazy-one')).toBe(0);
    await expect(r.get('x')).rejects.toMatchObject({ code: 'ERR_CONNECTION', message: expect.stringMatching(/connect\(\)/) });
    await r.connect();
    expect(r.isConnected).toBe(true);
    expect(r.isAvailable()).toBe(true);
    expect(clientCount(server, 'lazy-one')).toBe(PER_SERVICE);
    await r.disconnect();
  });

  test('concurrent connect() calls share one attempt; connect() is idempotent', async () => {
    const r = new RedisService({ url: server.url, logger: false, clientName: 'shared-attempt' });
    await Promise.all([r.connect(), r.connect(), r.connect(), r.connect()]);
    await r.connect();
    expect(clientCount(server, 'shared-attempt')).toBe(PER_SERVICE);
    await r.disconnect();
    await r.disconnect();
    expect(await until(() => clientCount(server, 'shared-attempt') === 0)).toBe(true);
  });

  test('connect() after disconnect(), awaited or not, leaves the service connected and serving', async () => {
    const r = await RedisService.connect({ url: server.url, logger: false, clientName: 'reconnects' });
    await r.set('reconnect:k', 'v');
    const orders = {
      awaited: async () => { await r.disconnect(); await r.connect(); },
      'same tick': async () => { r.disconnect(); await r.connect(); },
      together: async () => { await Promise.all([r.disconnect(), r.connect()]); },
      'with calls in flight': async () => {
        const inflight = Array.from({ length: 200 }, (_, i) => r.get(`reconnect:${i}`).catch((e) => e.code));
        r.disconnect();
        await r.connect();
        // Each call settles: with its reply or a typed error, never left hanging.
        for (const v of await Promise.all(inflight)) expect([null, 'ERR_CONNECTION']).toContain(v);
      },
    };
    for (const [name, order] of Object.entries(orders)) {
      await order();
      expect([name, r.isConnected]).toEqual([name, true]);
      expect([name, await r.get('reconnect:k')]).toEqual([name, 'v']);
      expect([name, (await r.healthCheck()).status]).toEqual([name, 'connected']);
    }
    expect(clientCount(server, 'reconnects')).toBe(PER_SERVICE);
    await r.disconnect();
  });

  test('RedisService.connect() resolves a connected service', async () => {
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, logger: false });
    expect(r).toBeInstanceOf(RedisService);
    expect(r.isConnected).toBe(true);
    expect(await r.ping()).toBe('PONG');
    await r.disconnect();
  });

  test('connecting to a closed port fails fast with ERR_CONNECTION', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const err = await RedisService.connect({ port, host: '127.0.0.1', connectTimeoutMs: 2000, logger: false }).catch((e) => e);
    expect(err.code).toBe('ERR_CONNECTION');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test('an address that never answers fails within connectTimeoutMs with ERR_TIMEOUT or ERR_CONNECTION', async () => {
    // A listening socket that never speaks RESP: the handshake cannot finish.
    const net = require('node:net');
    const silent = net.createServer(() => {});
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    const t0 = Date.now();
    const err = await RedisService.connect({ port: silent.address().port, host: '127.0.0.1', connectTimeoutMs: 300, logger: false }).catch((e) => e);
    const elapsed = Date.now() - t0;
    silent.close();
    expect(['ERR_TIMEOUT', 'ERR_CONNECTION']).toContain(err.code);
    expect(elapsed).toBeLessThan(1500);
  });

  test('disconnect() right after unawaited calls in the same tick still sends them', async () => {
    const r = await RedisService.connect({ url: server.url, logger: false });
    const w = r.set('same-tick', 'sent');
    await r.disconnect();
    expect(await w).toBe('OK');
    const check = await RedisService.connect({ url: server.url, logger: false });
    expect(await check.get('same-tick')).toBe('sent');
    await check.disconnect();
  });

  test('disconnect() lets in-flight commands finish', async () => {
    const r = await RedisService.connect({ url: server.url, logger: false });
    const pending = Array.from({ length: 200 }, (_, i) => r.set(`inflight:${i}`, 'v'));
    const closing = r.disconnect();
    const results = await Promise.all(pending);
    await closing;
    expect(results.every((x) => x === 'OK')).toBe(true);
    await expect(r.get('x')).rejects.toMatchObject({ code: 'ERR_CONNECTION' });
    await r.connect();
    expect(await r.get('inflight:199')).toBe('v');
    await r.disconnect();
  });

  test('healthCheck reports status, latency in ms, host, port and db', async () => {
    const r = new RedisService({ host: '127.0.0.1', port: server.port, db: 2, logger: false });
    expect(await r.healthCheck()).toEqual({
      status: 'disconnected', latencyMs: null, host: '127.0.0.1', port: server.port, db: 2, mode: 'standalone',
      nodes: [{ host: '127.0.0.1', port: server.port, role: 'master', ok: false }],
    });
    await r.connect();
    const h = await r.healthCheck();
    expect(h.status).toBe('connected');
    expect(typeof h.latencyMs).toBe('number');
    expect(h.latencyMs).toBeGreaterThanOrEqual(0);
    expect(h.latencyMs).toBeLessThan(1000);
    await r.set('dbcheck', '2');
    expect(server.cli('-n', '2', 'GET', 'dbcheck')).toBe('2');
    await r.disconnect();
  });

  test('NestJS hooks disconnect', async () => {
    const r = await RedisService.connect({ url: server.url, logger: false });
    await r.onModuleDestroy();
    expect(r.isConnected).toBe(false);
    await r.connect();
    await r.onApplicationShutdown('SIGTERM');
    expect(r.isConnected).toBe(false);
  });
});

describe('outages', () => {
  test('server killed: commands fail fast while down, succeed after it restarts', async () => {
    const server = await startRedis();
    const logger = recorder();
    const r = await RedisService.connect({ url: server.url, logger, commandTimeoutMs: 2000, reconnectMaxDelayMs: 200 });
    await r.set('k', 'before');
    await server.kill('SIGKILL');
    expect(await until(() => !r.isConnected, 3000)).toBe(true);
    const t0 = Date.now();
    const errs = await Promise.all(Array.from({ length: 20 }, () => r.get('k').catch((e) => e)));
    expect(Date.now() - t0).toBeLessThan(200);
    expect(errs.every((e) => e.code === 'ERR_CONNECTION')).toBe(true);
    await server.start();
    expect(await until(() => r.isConnected, 5000)).toBe(true);
    expect(await r.set('k', 'after')).toBe('OK');
    expect(await r.get('k')).toBe('after');
    const warns = logger.lines.filter(([lvl]) => lvl === 'warn');
    expect(warns).toHaveLength(1);
    expect(logger.lines.filter(([lvl, m]) => lvl === 'log' && /restored/.test(m))).toHaveLength(1);
    await r.disconnect();
    await server.stop();
  });

  test('failOpen: reads resolve empty, writes are no-ops, one warning per outage and one line at its end', async () => {
    const server = await startRedis();
    const logger = recorder();
    const r = await RedisService.connect({ url: server.url, logger, failOpen: true, reconnectMaxDelayMs: 200 });
    for (let outage = 0; outage < 2; outage++) {
      await server.kill('SIGKILL');
      expect(await until(() => !r.isConnected, 3000)).toBe(true);
      for (let i = 0; i < 50; i++) {
        expect(await r.get('k')).toBeNull();
        expect(await r.set('k', 'v')).toBeNull();
        expect(await r.mget(['a', 'b'])).toEqual([]);
        expect(await r.hGetAll('h')).toEqual({});
        expect(await r.incr('n')).toBe(0);
        expect(await r.exists('k')).toBe(0);
        expect(await r.sIsMember('s', 'm')).toBe(false);
      }
      const results = await r.multi().incr('x').expire('x', 10).exec();
      expect(results).toEqual([[null, 0], [null, false]]);
      await server.start();
      expect(await until(() => r.isConnected, 5000)).toBe(true);
      expect(await r.set('k', 'real')).toBe('OK');
      expect(await r.get('k')).toBe('real');
    }
    const warns = logger.lines.filter(([lvl]) => lvl === 'warn');
    const ends = logger.lines.filter(([lvl, m]) => lvl === 'log' && /restored/.test(m));
    expect(warns).toHaveLength(2);
    expect(ends).toHaveLength(2);
    expect(logger.lines).toHaveLength(4);
    await r.disconnect();
    await server.stop();
  });

  test('failOpen: connect() to a down server resolves with one warning, and the service connects once it is up', async () => {
    const port = await freePort();
    const logger = recorder();
    const r = new RedisService({ host: '127.0.0.1', port, failOpen: true, logger, reconnectMaxDelayMs: 100 });
    await r.connect();
    expect(r.isConnected).toBe(false);
    expect(await r.get('k')).toBeNull();
    const server = new (require('./helpers/redis-server').RedisServer)();
    server.port = port;
    await server.start();
    expect(await until(() => r.isConnected, 5000)).toBe(true);
    expect(await r.set('k', 'v')).toBe('OK');
    expect(logger.lines.map(([l]) => l)).toEqual(['warn', 'log']);
    await r.disconnect();
    await server.stop();
  });

  test('the default logger is the calling realm\'s console (a jest spy sees the outage warning)', async () => {
    const port = await freePort();
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const r = new RedisService({ host: '127.0.0.1', port, failOpen: true });
      await r.connect();
      expect(await r.get('k')).toBeNull();
      await r.disconnect();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`));
    } finally {
      warn.mockRestore();
    }
  });

  test('a throwing logger does not break anything', async () => {
    const port = await freePort();
    const bad = { warn() { throw new Error('logger exploded'); }, log() { throw new Error('x'); } };
    const r = new RedisService({ host: '127.0.0.1', port, failOpen: true, logger: bad });
    await r.connect();
    expect(await r.get('k')).toBeNull();
    await sleep(50);
    await r.disconnect();
  });

  test('stalled server: commands reject with ERR_TIMEOUT on time, then recover', async () => {
    const server = await startRedis();
    const r = await RedisService.connect({ url: server.url, logger: false, commandTimeoutMs: 300 });
    await server.kill('SIGSTOP');
    const t0 = Date.now();
    const err = await r.get('k').catch((e) => e);
    const elapsed = Date.now() - t0;
    await server.kill('SIGCONT');
    expect(err.code).toBe('ERR_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1500);
    expect(await r.set('k', 'v')).toBe('OK');
    await r.disconnect();
    await server.stop();
  });
});

describe('disabled service', () => {
  test('enabled: false never connects; reads empty, writes no-ops, health says disabled', async () => {
    const r = new RedisService({ enabled: false, logger: false });
    await r.connect();
    expect(r.isConnected).toBe(false);
    expect(r.isAvailable()).toBe(false);
    expect(r.isEnabled).toBe(false);
    expect(await r.get('k')).toBeNull();
    expect(await r.set('k', 'v')).toBeNull();
    expect(await r.hGetAll('k')).toEqual({});
    expect(await r.lRange('k', 0, -1)).toEqual([]);
    expect(await r.del('k')).toBe(0);
    expect((await r.healthCheck()).status).toBe('disabled');
    await expect(r.ping()).rejects.toMatchObject({ code: 'ERR_DISABLED' });
    await r.disconnect();
  });
});

describe('process exit', () => {
  function runChild(code, env = {}, flags = []) {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [...flags, '-e', code], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      child.on('exit', (codeOut, signal) => { clearTimeout(timer); resolve({ code: codeOut, signal, out }); });
    });
  }

  let server;
  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server.stop(); });

  test('connect, work, disconnect: the process exits by itself', async () => {
    const r = await runChild(`
      const { RedisService } = require('.');
      (async () => {
        const r = await RedisService.connect({ url: process.env.URL });
        await r.set('child', 'ok');
        console.log(await r.get('child'));
        await r.disconnect();
      })();`, { URL: server.url });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('ok');
  });

  test('a service that is never connected, or connected and never disconnected, does not keep the process alive', async () => {
    const r = await runChild(`
      const { RedisService } = require('.');
      new RedisService({ url: process.env.URL });
      (async () => {
        const r = await RedisService.connect({ url: process.env.URL });
        await r.set('child2', 'ok');
        console.log('done');
      })();`, { URL: server.url });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('done');
  });

  test('a pipeline and an iterator that outlive their garbage-collected service still settle', async () => {
    const r = await runChild(`
      const { RedisService } = require('.');
      (async () => {
        let svc = await RedisService.connect({ url: process.env.URL });
        await svc.set('orphan', 'still here');
        const p = svc.pipeline().get('orphan');
        const it = svc.scanIterator('orphan');
        svc = null;
        for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setTimeout(r, 10)); }
        const res = await p.exec();
        const first = await it.next();
        console.log(res[0][1], first.value);
      })();`, { URL: server.url }, ['--expose-gc']);
    expect(r.signal).toBeNull();
    expect(r.out.trim()).toBe('still here orphan');
    expect(r.code).toBe(0);
  });

  test('services created and collected one after another: each call reaches the live one', async () => {
    // Calls remember recent receivers; a collected one must never be taken for a new service
    // that the allocator may place at the same address.
    const r = await runChild(`
      const { RedisService } = require('.');
      (async () => {
        const seen = [];
        for (let i = 0; i < 12; i++) {
          let svc = new RedisService({ url: process.env.URL, keyPrefix: 'gen' + i + ':' });
          await svc.connect();
          await svc.set('k', String(i));
          seen.push(await svc.get('k'));
          await svc.disconnect();
          svc = null;
          global.gc();
          await new Promise((r) => setTimeout(r, 5));
        }
        const check = await RedisService.connect({ url: process.env.URL });
        const keys = Array.from({ length: 12 }, (_, i) => 'gen' + i + ':k');
        console.log(seen.join(','), (await check.mget(keys)).join(','));
        await check.disconnect();
      })();`, { URL: server.url }, ['--expose-gc']);
    expect(r.signal).toBeNull();
    const all = Array.from({ length: 12 }, (_, i) => String(i)).join(',');
    expect(r.out.trim()).toBe(`${all} ${all}`);
    expect(r.code).toBe(0);
  });

  test('a failOpen service reconnecting to a dead server does not keep the process alive', async () => {
    const port = await freePort();
    const r = await runChild(`
      const { RedisService } = require('.');
      (async () => {
        const r = new RedisService({ port: ${port}, host: '127.0.0.1', failOpen: true, logger: false });
        await r.connect();
        console.log(String(await r.get('x')));
      })();`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe('null');
  });

  test('ESM import works', async () => {
    // A throwaway project whose node_modules/@app/redis is this package.
    const fs = require('node:fs');
    const os = require('node:os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-esm-'));
    fs.mkdirSync(path.join(dir, 'node_modules', '@app'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', '@app', 'redis'), 'dir');
    const r = await new Promise((resolve) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', `
        import { RedisService, isRedisConfigured } from '@app/redis';
        console.log(typeof RedisService, typeof isRedisConfigured);`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      child.on('exit', (code) => resolve({ code, out }));
    });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.out.trim()).toBe('function function');
    expect(r.code).toBe(0);
  });
});

describe('secrets', () => {
  test('a wrong password gives ERR_AUTH without the password anywhere', async () => {
    const server = await startRedis({ args: ['--requirepass', 'right-horse-battery'] });
    const err = await RedisService.connect({ url: `redis://:wrong-staple-s3cret@127.0.0.1:${server.port}`, logger: false }).catch((e) => e);
    expect(err.code).toBe('ERR_AUTH');
    expect(JSON.stringify({ m: err.message, s: err.stack })).not.toMatch(/wrong-staple-s3cret/);
    const ok = await RedisService.connect({ url: `redis://:right-horse-battery@127.0.0.1:${server.port}`, logger: false });
    expect(await ok.ping()).toBe('PONG');
    const shown = util.inspect(ok, { depth: 5, showHidden: true }) + JSON.stringify(await ok.healthCheck()) + ok.url;
    expect(shown).not.toMatch(/right-horse-battery/);
    expect(ok.url).toBe(`redis://:***@127.0.0.1:${server.port}/0`);
    await ok.disconnect();
    await server.stop();
  });

  test('outage warnings never carry the password', async () => {
    const server = await startRedis({ args: ['--requirepass', 'pw-in-log-zz9'] });
    const logger = recorder();
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, password: 'pw-in-log-zz9', failOpen: true, logger, reconnectMaxDelayMs: 100 });
    await server.kill('SIGKILL');
    expect(await until(() => logger.lines.length >= 1, 3000)).toBe(true);
    await server.start();
    expect(await until(() => r.isConnected, 5000)).toBe(true);
    expect(JSON.stringify(logger.lines)).not.toMatch(/pw-in-log-zz9/);
    await r.disconnect();
    await server.stop();
  });
});
