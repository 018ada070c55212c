'use strict';
// Shared by the crash scenarios: each runs in its own process (see faults/crash.js), connects to
// REDIS_URL, and must end by itself with exit code 0; `check` failures exit 1.
const assert = require('node:assert');
const { RedisService } = require('../..');

let failures = 0;

function check(what, cond, detail) {
  if (!cond) {
    failures++;
    console.error(`FAIL ${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

/** Runs `f()`; resolves what it threw synchronously, its rejection, or its value. */
async function outcome(f) {
  let p;
  try {
    p = f();
  } catch (e) {
    return { threw: e };
  }
  try {
    return { value: await p };
  } catch (e) {
    return { rejected: e };
  }
}

/** Over TLS, `{ tls: { ca } }` from CRASH_TLS_CA (the file of the CA that signed the server's certificate). */
function tlsOptions() {
  return process.env.CRASH_TLS_CA ? { tls: { ca: require('node:fs').readFileSync(process.env.CRASH_TLS_CA) } } : {};
}

/** A connected service from the environment: REDIS_URL (and CRASH_TLS_CA), or REDIS_CLUSTER_NODES in cluster mode. */
async function connect(extra = {}) {
  const redis = RedisService.fromEnv(process.env, { commandTimeoutMs: 60000, ...tlsOptions(), ...extra });
  await redis.connect();
  return redis;
}

function done(name) {
  if (failures > 0) {
    console.error(`${name}: ${failures} check(s) failed`);
    process.exitCode = 1;
  } else {
    console.log(`ok ${name}`);
  }
}

module.exports = { assert, check, outcome, connect, done, tlsOptions, RedisService };
