'use strict';
// TLS (certificates made at test time with openssl) and ACL users, against real servers. Run on
// both paths: the JS-thread connection (rustls driven from the Node thread) and, with
// APP_REDIS_NO_UV=1, the runtime's.
const fs = require('node:fs');
const net = require('node:net');
const { RedisService } = require('..');
const { startRedis, RedisServer } = require('./helpers/redis-server');
const { Certs } = require('./helpers/certs');

const certs = new Certs();
const f = (n) => certs.file(n);
const makeCa = (name) => certs.ca(name);
const makeCert = (name, ca, san, opts) => certs.cert(name, ca, san, opts);

beforeAll(() => {
  makeCa('ca');
  makeCa('otherca');
  makeCert('server', 'ca', 'DNS:localhost,DNS:redis.test,IP:127.0.0.1');
  makeCert('client', 'ca', 'DNS:client');
  makeCert('expired', 'ca', 'DNS:localhost,IP:127.0.0.1', { days: -1 });
  makeCert('elsewhere', 'ca', 'DNS:elsewhere.test');
});
afterAll(() => certs.remove());

describe('TLS', () => {
  let server;
  let mtls;
  let ca;
  beforeAll(async () => {
    ca = fs.readFileSync(f('ca.crt'));
    server = await startRedis({ tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'), authClients: false } });
    mtls = await startRedis({ tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'), authClients: true } });
  });
  afterAll(async () => {
    await server.stop();
    await mtls.stop();
  });

  test('tls with a CA (Buffer or PEM string) connects and works', async () => {
    for (const caValue of [ca, ca.toString('utf8')]) {
      const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca: caValue }, logger: false });
      await r.set('tls-key', 'over tls');
      expect(await r.get('tls-key')).toBe('over tls');
      expect(r.url).toMatch(/^rediss:\/\//);
      await r.disconnect();
    }
  });

  test('rediss:// URL with a CA', async () => {
    const r = await RedisService.connect({ url: `rediss://localhost:${server.port}`, tls: { ca }, logger: false });
    expect(await r.ping()).toBe('PONG');
    await r.disconnect();
  });

  test('a wrong CA fails fast with ERR_CONNECTION, no hang', async () => {
    const t0 = Date.now();
    const err = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca: fs.readFileSync(f('otherca.crt')) }, logger: false, connectTimeoutMs: 3000 }).catch((e) => e);
    expect(err.code).toBe('ERR_CONNECTION');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  test('rejectUnauthorized: false accepts the certificate without a CA', async () => {
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { rejectUnauthorized: false }, logger: false });
    expect(await r.ping()).toBe('PONG');
    await r.disconnect();
  });

  test('servername verifies the certificate against another name than host', async () => {
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca, servername: 'redis.test' }, logger: false });
    expect(await r.ping()).toBe('PONG');
    await r.disconnect();
    const err = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca, servername: 'wrong.test' }, logger: false }).catch((e) => e);
    expect(err.code).toBe('ERR_CONNECTION');
  });

  test('mutual TLS with a client certificate and key', async () => {
    const noCert = await RedisService.connect({ host: '127.0.0.1', port: mtls.port, tls: { ca }, logger: false, connectTimeoutMs: 2000 }).catch((e) => e);
    expect(['ERR_CONNECTION', 'ERR_TIMEOUT']).toContain(noCert.code);
    const r = await RedisService.connect({
      host: '127.0.0.1', port: mtls.port, logger: false,
      tls: { ca, cert: fs.readFileSync(f('client.crt')), key: fs.readFileSync(f('client.key')) },
    });
    expect(await r.ping()).toBe('PONG');
    await r.disconnect();
  });
});

describe('TLS connections', () => {
  let ca;
  const tlsFiles = (cert) => ({ cert: f(`${cert}.crt`), key: f(`${cert}.key`), ca: f('ca.crt'), authClients: false });
  beforeAll(() => {
    ca = fs.readFileSync(f('ca.crt'));
  });
  // Connections a service holds: the runtime's, plus the JS thread's unless it is off.
  const PER_SERVICE = process.env.APP_REDIS_NO_UV ? 1 : 2;
  const named = async (admin, name) => (await admin.call('CLIENT', 'LIST')).split('\n').filter((l) => l.includes(` name=${name} `)).length;

  test('a TLS service writes and reads on its own connection (two per service on the JS-thread path): big, binary and many values intact', async () => {
    const server = await startRedis({ tls: tlsFiles('server') });
    try {
      const admin = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca }, logger: false });
      const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca }, clientName: 'tls-js', logger: false });
      await r.set('tls:warm', '1');
      expect(await named(admin, 'tls-js')).toBe(PER_SERVICE);
      // Larger than a TLS record (16 KiB) and than rustls's send buffer (64 KiB): many records
      // each way, written as the socket drains.
      const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0xab);
      big[0] = 0;
      big[big.length - 1] = 0xff;
      await r.set('tls:big', big);
      expect((await r.getBuffer('tls:big')).equals(big)).toBe(true);
      const many = await Promise.all(Array.from({ length: 2000 }, (_, i) => r.set(`tls:${i}`, `v${i}`).then(() => r.get(`tls:${i}`))));
      expect(many).toEqual(Array.from({ length: 2000 }, (_, i) => `v${i}`));
      expect(await r.mget('tls:0', 'tls:1999', 'tls:missing')).toEqual(['v0', 'v1999', null]);
      await r.disconnect();
      await admin.disconnect();
    } finally {
      await server.stop();
    }
  });

  test('a dropped TLS connection: commands fail fast while down, the handshake is redone when the server is back', async () => {
    const server = await new RedisServer({ tls: tlsFiles('server') }).start();
    try {
      const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca }, logger: false, commandTimeoutMs: 2000, reconnectMaxDelayMs: 200 });
      await r.set('k', 'before');
      await server.kill('SIGKILL');
      const deadline = Date.now() + 3000;
      while (r.isConnected && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 10));
      expect(r.isConnected).toBe(false);
      const t0 = Date.now();
      const errs = await Promise.all(Array.from({ length: 20 }, () => r.get('k').catch((e) => e)));
      expect(Date.now() - t0).toBeLessThan(200);
      expect(errs.map((e) => e.code)).toEqual(Array(20).fill('ERR_CONNECTION'));
      await server.start();
      const back = Date.now() + 5000;
      while (!r.isConnected && Date.now() < back) await new Promise((ok) => setTimeout(ok, 10));
      expect(await r.set('k', 'after')).toBe('OK');
      expect(await r.get('k')).toBe('after');
      await r.disconnect();
    } finally {
      await server.stop();
    }
  });

  test('an expired certificate, or one for another name, fails with ERR_CONNECTION; rejectUnauthorized: false still connects', async () => {
    for (const cert of ['expired', 'elsewhere']) {
      const server = await startRedis({ tls: tlsFiles(cert) });
      try {
        const err = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { ca }, logger: false, connectTimeoutMs: 3000 }).catch((e) => e);
        expect(err).toMatchObject({ code: 'ERR_CONNECTION' });
        const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, tls: { rejectUnauthorized: false }, logger: false });
        await r.set('still', 'encrypted');
        expect(await r.get('still')).toBe('encrypted');
        await r.disconnect();
      } finally {
        await server.stop();
      }
    }
  });

  test('a server that closes mid-handshake, or never answers it, fails within connectTimeoutMs', async () => {
    const sockets = new Set();
    const closing = net.createServer((s) => { sockets.add(s); s.once('data', () => s.destroy()); });
    const silent = net.createServer((s) => { sockets.add(s); s.on('data', () => {}); });
    await Promise.all([closing, silent].map((srv) => new Promise((ok) => srv.listen(0, '127.0.0.1', ok))));
    try {
      for (const [srv, codes] of [[closing, ['ERR_CONNECTION']], [silent, ['ERR_TIMEOUT', 'ERR_CONNECTION']]]) {
        const t0 = Date.now();
        const err = await RedisService.connect({ host: '127.0.0.1', port: srv.address().port, tls: { ca }, logger: false, connectTimeoutMs: 500 }).catch((e) => e);
        expect(codes).toContain(err.code);
        expect(Date.now() - t0).toBeLessThan(2000);
      }
    } finally {
      for (const s of sockets) s.destroy();
      await Promise.all([closing, silent].map((srv) => new Promise((ok) => srv.close(ok))));
    }
  });
});

describe('ACL', () => {
  let server;
  beforeAll(async () => {
    server = await startRedis({ args: ['--user', 'default', 'off', '--user', 'alice', 'on', '>alice-pw-77', '~*', '&*', '+@all',
      '--user', 'reader', 'on', '>reader-pw-88', '~*', '+get', '+ping', '+hello', '+client', '+select'] });
  });
  afterAll(async () => { await server.stop(); });

  test('username and password (options and URL)', async () => {
    const a = await RedisService.connect({ host: '127.0.0.1', port: server.port, username: 'alice', password: 'alice-pw-77', logger: false });
    await a.set('acl', 'yes');
    expect(await a.get('acl')).toBe('yes');
    await a.disconnect();
    const b = await RedisService.connect({ url: `redis://alice:alice-pw-77@127.0.0.1:${server.port}`, logger: false });
    expect(await b.get('acl')).toBe('yes');
    await b.disconnect();
  });

  test('wrong password and unknown user give ERR_AUTH without the secret', async () => {
    for (const opts of [{ username: 'alice', password: 'nope-secret-1' }, { username: 'mallory', password: 'nope-secret-1' }]) {
      const err = await RedisService.connect({ host: '127.0.0.1', port: server.port, logger: false, ...opts }).catch((e) => e);
      expect(err.code).toBe('ERR_AUTH');
      expect(err.message).not.toMatch(/nope-secret-1/);
    }
  });

  test('a user denied a command gets ERR_REPLY with NOPERM', async () => {
    const r = await RedisService.connect({ host: '127.0.0.1', port: server.port, username: 'reader', password: 'reader-pw-88', logger: false });
    expect(await r.get('acl')).toBe('yes');
    await expect(r.set('acl', 'no')).rejects.toMatchObject({ code: 'ERR_REPLY', message: expect.stringMatching(/NOPERM/) });
    await r.disconnect();
  });
});
