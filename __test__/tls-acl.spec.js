'use strict';
// TLS (certificates made at test time with openssl) and ACL users, against real servers.
const fs = require('node:fs');
const { RedisService } = require('..');
const { startRedis } = require('./helpers/redis-server');
const { Certs } = require('./helpers/certs');

const certs = new Certs();
const f = (n) => certs.file(n);
const makeCa = (name) => certs.ca(name);
const makeCert = (name, ca, san) => certs.cert(name, ca, san);

describe('TLS', () => {
  let server;
  let mtls;
  let ca;
  beforeAll(async () => {
    makeCa('ca');
    makeCa('otherca');
    makeCert('server', 'ca', 'DNS:localhost,DNS:redis.test,IP:127.0.0.1');
    makeCert('client', 'ca', 'DNS:client');
    ca = fs.readFileSync(f('ca.crt'));
    server = await startRedis({ tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'), authClients: false } });
    mtls = await startRedis({ tls: { cert: f('server.crt'), key: f('server.key'), ca: f('ca.crt'), authClients: true } });
  });
  afterAll(async () => {
    await server.stop();
    await mtls.stop();
    certs.remove();
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
