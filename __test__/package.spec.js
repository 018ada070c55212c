'use strict';
// The package's entry points as a user loads them: require and import give the same binding with
// nothing internal in it, and a machine with no addon gets an error that says what to do.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');

test('require exports only the API (no loader internals)', () => {
  const keys = Object.keys(require('..')).sort();
  expect(keys).toEqual(['EventBus', 'Pipeline', 'RedisService', 'ScanIterator', 'Subscription', 'isRedisConfigured', 'registerPromClient']);
});

test('import gives the same classes as require, as named and default exports, for every entry', () => {
  const code = `
    import { createRequire } from 'node:module';
    import * as main from '@app/redis';
    import * as nest from '@app/redis/nestjs';
    import * as express from '@app/redis/express';
    import * as testing from '@app/redis/testing';
    import * as otel from '@app/redis/otel';
    import globalSetup from '@app/redis/testing/global-setup';
    const require = createRequire(import.meta.url);
    const cjs = require('@app/redis');
    const out = {
      same: main.RedisService === cjs.RedisService && main.default === cjs,
      nestSame: nest.RedisService === cjs.RedisService && nest.RedisModule === nest.default.RedisModule,
      expressSame: express.rateLimitMiddleware === require('@app/redis/express').rateLimitMiddleware,
      otelSame: typeof otel.RedisInstrumentation === 'function' && otel.RedisInstrumentation === require('@app/redis/otel').RedisInstrumentation,
      testing: [typeof testing.createTestRedis, typeof testing.RedisTestingModule.forRoot, typeof require('@app/redis/testing').createTestRedis,
        globalSetup === require('@app/redis/testing/global-setup'), typeof require('@app/redis/testing/global-teardown')],
      mainNames: Object.keys(main).sort(),
    };
    console.log(JSON.stringify(out));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual({
    same: true,
    nestSame: true,
    expressSame: true,
    otelSame: true,
    testing: ['function', 'function', 'function', true, 'function'],
    mainNames: ['EventBus', 'Pipeline', 'RedisService', 'ScanIterator', 'Subscription', 'default', 'isRedisConfigured', 'registerPromClient'],
  });
}, 30000);

test('no addon for this machine: ERR_NO_NATIVE_ADDON names the platform, what was looked for and the two ways out', () => {
  // The package as installed, without its addon and without the platform package.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-noaddon-'));
  try {
    for (const f of ['index.js', 'native.js', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
    fs.cpSync(path.join(ROOT, 'js'), path.join(dir, 'js'), { recursive: true });
    const r = spawnSync(process.execPath, ['-e', `
      try { require(${JSON.stringify(dir)}); console.log('loaded'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, cause: !!e.cause })); }`],
    { encoding: 'utf8', env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '' } });
    const e = JSON.parse(r.stdout);
    const { platformName } = require('../js/platform');
    expect(e.code).toBe('ERR_NO_NATIVE_ADDON');
    expect(e.cause).toBe(true);
    expect(e.message).toContain(`for ${platformName()} (Node.js ${process.version})`);
    expect(e.message).toContain(`app-redis.${platformName()}.node`);
    expect(e.message).toContain(`@app/redis-${platformName()}`);
    expect(e.message).toContain('A supported platform');
    expect(e.message).toContain('cd node_modules/@app/redis && npm run build');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the platform list in the error matches the platform packages under npm/', () => {
  const { PLATFORMS } = require('../js/platform');
  const dirs = fs.readdirSync(path.join(ROOT, 'npm')).sort();
  expect(Object.keys(PLATFORMS).sort()).toEqual(dirs);
  for (const d of dirs) {
    const pkg = require(path.join(ROOT, 'npm', d, 'package.json'));
    expect(pkg.name).toBe(`@app/redis-${d}`);
    expect(pkg.version).toBe(require('../package.json').version);
  }
});
