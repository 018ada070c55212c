#!/usr/bin/env node
// `npm run test:faults`: the reliability suite. Real redis-server processes, killed, frozen and
// fed bad input while @app/redis works against them. Each scenario checks its own promises and
// the run ends with a summary table; the exit code is non-zero when any check failed.
'use strict';
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const fc = require('fast-check');
const { RedisService } = require('..');
const { startRedis, RedisServer, sleep } = require('../scripts/redis-server');

const rows = [];
let failures = 0;

function check(scenario, what, ok, detail = '') {
  rows.push({ scenario, what, ok, detail });
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${scenario}: ${what}${detail ? ` (${detail})` : ''}`);
}

function runJson(script, arg, nodeArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code, signal) => {
      try {
        resolve({ code, signal, ...JSON.parse(out.trim().split('\n').pop()) });
      } catch {
        reject(new Error(`child exited with ${code} ${signal}: ${out.slice(-2000)}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
async function loadAndKill() {
  const S = 'load + kill';
  const server = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  const commandTimeoutMs = 1000;
  const workers = [1, 2].map((id) => runJson(path.join(__dirname, 'worker.js'), { url: server.url, ms: 9000, id, commandTimeoutMs }));
  await sleep(2500);
  const killedAt = Date.now();
  await server.kill('SIGKILL');
  await sleep(3000);
  await server.start();
  const restartedAt = Date.now();
  const results = await Promise.all(workers);
  const verify = await RedisService.connect({ url: server.url, logger: false });
  let lost = 0;
  let acked = 0;
  for (const r of results) {
    acked += r.acked.length;
    const values = [];
    for (let i = 0; i < r.acked.length; i += 1000) values.push(...(await verify.mget(r.acked.slice(i, i + 1000))));
    lost += values.filter((v) => v === null).length;
  }
  await verify.disconnect();
  await server.stop();
  const crashed = results.filter((r) => r.code !== 0 || r.signal).length;
  const unhandled = results.reduce((n, r) => n + r.unhandled + r.uncaught, 0);
  const maxFail = Math.max(...results.map((r) => r.maxFailMs));
  const recovery = Math.max(...results.map((r) => (r.firstOkAfterFail ? r.firstOkAfterFail - restartedAt : Infinity)));
  const ops = results.reduce((n, r) => n + r.ok + r.failed, 0);
  const codes = results.map((r) => r.codes).reduce((a, b) => { for (const [k, v] of Object.entries(b)) a[k] = (a[k] || 0) + v; return a; }, {});
  check(S, '2 processes, no crash', crashed === 0, `${ops} calls, ${Object.entries(codes).map(([k, v]) => `${k}: ${v}`).join(', ')}`);
  check(S, 'no unhandledRejection / uncaughtException', unhandled === 0);
  check(S, `every failed call settled within commandTimeoutMs + 1 s`, maxFail <= commandTimeoutMs + 1000, `slowest ${maxFail} ms`);
  check(S, 'only ERR_CONNECTION / ERR_TIMEOUT failures', Object.keys(codes).every((c) => c === 'ERR_CONNECTION' || c === 'ERR_TIMEOUT'));
  check(S, 'recovery after the restart under 1 s', recovery < 1000, `${recovery} ms after restart (outage began ${restartedAt - killedAt} ms earlier)`);
  check(S, 'zero acknowledged writes lost (AOF always)', lost === 0, `${acked} acknowledged, ${lost} lost`);
  return { load: `${ops} calls / 9 s from 2 processes`, lost, acked };
}

// ---------------------------------------------------------------------------------------------
async function stall() {
  const S = 'stall (SIGSTOP)';
  const server = await startRedis();
  const redis = await RedisService.connect({ url: server.url, logger: false, commandTimeoutMs: 800 });
  let aborted = null;
  const held = redis.withLock('stalled', ({ signal }) => new Promise((resolve) => {
    signal.addEventListener('abort', () => { aborted = signal.reason.code; resolve(); });
  }), { ttlMs: 600 }).catch((e) => e.code);
  await sleep(100);
  await server.kill('SIGSTOP');
  const start = Date.now();
  const err = await redis.get('k').catch((e) => e);
  const took = Date.now() - start;
  check(S, 'a call rejects with ERR_TIMEOUT on time', err && err.code === 'ERR_TIMEOUT' && took >= 700 && took <= 1800, `${err && err.code} after ${took} ms`);
  const lockResult = await held;
  check(S, 'a lock held through it reports the loss via its signal', aborted === 'ERR_LOCK_LOST' && lockResult === 'ERR_LOCK_LOST');
  await sleep(300);
  await server.kill('SIGCONT');
  let recovered = false;
  const until = Date.now() + 5000;
  while (!recovered && Date.now() < until) {
    recovered = (await redis.set('after', '1').catch(() => null)) === 'OK';
    if (!recovered) await sleep(50);
  }
  check(S, 'everything recovers after SIGCONT', recovered && (await redis.get('after')) === '1');
  await redis.disconnect();
  await server.stop();
}

// ---------------------------------------------------------------------------------------------
async function slowAndHuge() {
  const S = 'slow and huge';
  const server = await startRedis({ args: ['--proto-max-bulk-len', '512mb', '--lua-time-limit', '10000'] });
  const redis = await RedisService.connect({ url: server.url, logger: false });
  const big = Buffer.alloc(100 * 1024 * 1024, 'x');
  const setOk = await redis.set('big', big);
  const back = await redis.getBuffer('big');
  check(S, '100 MB value written and read back', setOk === 'OK' && back && back.length === big.length && back.equals(big));
  const slow = 'local t = redis.call("TIME"); local start = t[1] * 1000000 + t[2]; ' +
    'while true do local n = redis.call("TIME"); if n[1] * 1000000 + n[2] - start > 1500000 then break end end; return "done"';
  const t0 = Date.now();
  const r = await redis.eval(slow, 0).catch((e) => e);
  check(S, 'a 1.5 s Lua script (past the crate\'s 500 ms default) completes', r === 'done', `${Date.now() - t0} ms`);
  const p = redis.pipeline();
  for (let i = 0; i < 10000; i++) p.set(`p:${i}`, String(i));
  const replies = await p.exec();
  check(S, '10,000 pipelined commands in one exec()', replies.length === 10000 && replies.every(([e, v]) => e === null && v === 'OK') && (await redis.get('p:9999')) === '9999');
  await redis.disconnect();
  await server.stop();
}

// ---------------------------------------------------------------------------------------------
async function memory() {
  const S = 'memory';
  const server = await startRedis();
  const result = await runJson(path.join(__dirname, 'memory.js'), { url: server.url }, ['--expose-gc']);
  await server.stop();
  const mb = (n) => (n / 1024 / 1024).toFixed(1);
  check(S, `${result.ops.toLocaleString('en-US')} mixed operations: RSS growth under 20 MB`, result.rssGrowth < 20 * 1024 * 1024,
    `RSS ${mb(result.rssBefore)} -> ${mb(result.rssAfter)} MB, heapUsed ${mb(result.heapBefore)} -> ${mb(result.heapAfter)} MB`);
  check(S, 'heapUsed growth under 20 MB', result.heapGrowth < 20 * 1024 * 1024);
  return result;
}

// ---------------------------------------------------------------------------------------------
async function badInput() {
  const S = 'bad input';
  const server = await startRedis();
  const result = await runJson(path.join(__dirname, 'bad-input.js'), { url: server.url });
  const probe = await RedisService.connect({ url: server.url, logger: false });
  const keys = await probe.call('KEYS', '*');
  await probe.disconnect();
  await server.stop();
  const badKeys = keys.filter((k) => /undefined|null|\[object |NaN|Infinity|function|Symbol/.test(k));
  check(S, `${result.calls.toLocaleString('en-US')} calls with random arguments: no crash, no hang`, result.code === 0 && result.hung === 0, `${result.hung} hung, seed ${result.seed}`);
  check(S, 'every failure an ERR_INVALID_ARGUMENT / TypeError (or a Redis reply error)', result.wrong.length === 0, result.wrong.slice(0, 3).join('; '));
  check(S, 'no key like "undefined", "null" or "[object Object]" written', badKeys.length === 0, badKeys.slice(0, 5).join(', '));
  return result;
}

// ---------------------------------------------------------------------------------------------
function certs(dir) {
  const run = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'ignore' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'ext.cnf');
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '1', '-subj', '/CN=other-ca');
}

async function security() {
  const S = 'security';
  const secret = `s3cret-${crypto.randomBytes(6).toString('hex')}`;
  const server = await startRedis({ args: ['--requirepass', secret] });
  const logs = [];
  const logger = { log: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) };
  const wrong = `wrong-${secret}`;
  const err = await RedisService.connect({ url: `redis://:${wrong}@127.0.0.1:${server.port}`, logger }).catch((e) => e);
  const leak = (s) => s.includes(secret) || s.includes(wrong);
  check(S, 'wrong password: ERR_AUTH without the password', err.code === 'ERR_AUTH' && !leak(err.message) && !leak(String(err.stack)), err.message);
  const admin = await RedisService.connect({ url: `redis://:${secret}@127.0.0.1:${server.port}`, logger });
  await admin.call('ACL', 'SETUSER', 'reader', 'on', `>${secret}`, '~*', '+get', '+ping', '+hello', '+client', '+select', '+info', '+exists', '+eval', '+evalsha', '+time');
  const reader = await RedisService.connect({ url: `redis://reader:${secret}@127.0.0.1:${server.port}`, logger });
  const denied = await reader.set('x', '1').catch((e) => e);
  check(S, 'an ACL user denied a command: ERR_REPLY NOPERM', denied.code === 'ERR_REPLY' && /NOPERM/.test(denied.message));
  const inspect = require('node:util').inspect(admin) + admin.url + JSON.stringify(await admin.healthCheck());
  check(S, 'no secret in util.inspect, url, healthCheck()', !leak(inspect));
  await server.kill('SIGKILL');
  await sleep(200);
  await admin.get('x').catch(() => {});
  await server.stop();
  await reader.disconnect();
  await admin.disconnect();
  check(S, 'no secret in any log line', logs.length > 0 && !logs.some(leak), `${logs.length} lines`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faults-tls-'));
  certs(dir);
  const tls = new RedisServer({ tls: { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key'), ca: path.join(dir, 'ca.pem') } });
  await tls.start();
  const wrongCa = await RedisService.connect({ host: '127.0.0.1', port: tls.port, tls: { ca: fs.readFileSync(path.join(dir, 'other.pem')) }, logger: false, connectTimeoutMs: 2000 }).catch((e) => e);
  check(S, 'TLS with a wrong CA: ERR_CONNECTION', wrongCa.code === 'ERR_CONNECTION', wrongCa.message);
  await tls.stop();
  fs.rmSync(dir, { recursive: true, force: true });

  // Randomness sanity: 20,000 session ids and lock tokens, unique, hex digits evenly spread.
  const rnd = await startRedis();
  const r = await RedisService.connect({ url: rnd.url, logger: false });
  const ids = await Promise.all(Array.from({ length: 10000 }, (_, i) => r.createSession(`u${i % 100}`, {})));
  const tokens = await Promise.all(Array.from({ length: 10000 }, (_, i) => r.acquireLock(`t${i}`, 60)));
  await r.disconnect();
  await rnd.stop();
  const uniq = new Set([...ids, ...tokens]).size === 20000;
  const counts = new Array(16).fill(0);
  let n = 0;
  // The 32 hex digits of each UUID v4, minus the version digit (12) and the variant digit (16).
  const tally = (hex) => { for (let i = 0; i < 32; i++) if (i !== 12 && i !== 16) { counts[parseInt(hex[i], 16)]++; n++; } };
  for (const id of ids) tally(id.slice(0, 32));
  for (const t of tokens) tally(t.replace(/-/g, ''));
  const expected = n / 16;
  const chi = counts.reduce((s, c) => s + ((c - expected) ** 2) / expected, 0);
  // 15 degrees of freedom: 37.7 is the 0.1% critical value.
  check(S, 'session ids and lock tokens: unique, random digits evenly spread (chi-square, 15 dof)', uniq && chi < 37.7, `chi-square ${chi.toFixed(1)} over ${n} digits`);
}

async function main() {
  const started = Date.now();
  const only = process.env.FAULTS_ONLY ? new RegExp(process.env.FAULTS_ONLY) : null;
  const summary = {};
  for (const [name, fn] of [['load', loadAndKill], ['stall', stall], ['huge', slowAndHuge], ['memory', memory], ['bad-input', badInput], ['security', security]]) {
    if (only && !only.test(name)) continue;
    try {
      summary[name] = await fn();
    } catch (e) {
      check(name, 'ran to the end', false, String(e && e.stack || e));
    }
  }
  console.log('\n| scenario | check | result | detail |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.scenario} | ${r.what} | ${r.ok ? 'pass' : '**FAIL**'} | ${r.detail.replace(/\|/g, '/')} |`);
  const lost = summary.load ? summary.load.lost : 'n/a';
  console.log(`\nSummary: load held: ${summary.load ? summary.load.load : 'n/a'}; faults survived: SIGKILL + 3 s down, SIGSTOP; ` +
    `bad inputs tried: ${summary['bad-input'] ? summary['bad-input'].calls : 'n/a'}; data lost: ${lost}; ` +
    `${rows.length - failures}/${rows.length} checks passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.exit(failures === 0 ? 0 : 1);
}

main();
