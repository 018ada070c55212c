'use strict';
// `npm run bench`, cross-process lock hand-over: 4 processes x 4 workers take turns on one key
// for a fixed time. Two shapes: each turn an empty critical section and straight back in line
// (`workMs` 0), or a request-like turn (`workMs` of awaited work under the lock, then `pauseMs`
// before that worker asks again, as a route handler behind a load balancer would). Per client:
// cycles/s, how many turns
// went to another process than the one before, the hand-over latency of those (the previous
// holder's critical section ends to the next one's starts, on the machine's monotonic clock,
// which all processes share) at p50 and p99, and exclusion violations (a start before the
// previous end). Run by benchmark/run.js; each process is this file run as a child.
const { spawn } = require('node:child_process');

const PROCESSES = 4;
const WORKERS = 4;
const RUN_MS = Number(process.env.BENCH_HANDOVER_MS || 2000);
const TTL_MS = 10000;
const RETRY_MS = 10;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The child: `node handover.js <client> <url> <key> <workMs> <pauseMs>` prints its turns as JSON.
async function child(client, url, key, workMs, pauseMs) {
  const lock = await open(client, url);
  const turns = [];
  const end = Date.now() + RUN_MS;
  await Promise.all(Array.from({ length: WORKERS }, async () => {
    while (Date.now() < end) {
      // An empty turn is a plain function; a turn with work an async one.
      await lock(key, workMs ? async () => {
        const start = process.hrtime.bigint();
        await sleep(workMs);
        turns.push([start, process.hrtime.bigint()]);
      } : () => {
        const start = process.hrtime.bigint();
        turns.push([start, process.hrtime.bigint()]);
      });
      if (pauseMs) await sleep(pauseMs);
    }
  }));
  // A turn ends when its critical section does: the release starts there.
  const out = JSON.stringify(turns.map(([a, b]) => [a.toString(), b.toString()]));
  process.stdout.write(out, () => process.exit(0));
}

async function open(client, url) {
  if (client === '@app/redis') {
    const { RedisService } = require('..');
    const r = await RedisService.connect({ url, logger: false });
    return (k, fn) => r.withLock(k, fn, { ttlMs: TTL_MS, waitMs: 60000, retryDelayMs: RETRY_MS });
  }
  const { connectIoredis } = require('./connect');
  const io = await connectIoredis({ url, tls: null });
  const { default: Redlock } = require('redlock');
  const rl = new Redlock([io], { retryCount: -1, retryDelay: RETRY_MS, retryJitter: RETRY_MS });
  rl.on('error', () => {});
  return async (k, fn) => {
    const l = await rl.acquire([k], TTL_MS);
    try { await fn(); } finally { await l.release(); }
  };
}

function run(client, url, key, workMs, pauseMs) {
  return new Promise((resolve, reject) => {
    const args = [__filename, client, url, key, String(workMs), String(pauseMs)];
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${client} child exited ${code}`))));
  });
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

/** One client's row: 4 processes x 4 workers on one key, turns of `workMs`, `pauseMs` apart. */
async function handover(client, url, { workMs = 0, pauseMs = 0 } = {}) {
  const key = `bench:handover:${client.replace(/\W+/g, '-')}:${workMs}`;
  const runs = await Promise.all(Array.from({ length: PROCESSES }, () => run(client, url, key, workMs, pauseMs)));
  const all = runs
    .flatMap((turns, proc) => turns.map(([a, b]) => [BigInt(a), BigInt(b), proc]))
    .sort((x, y) => (x[0] < y[0] ? -1 : 1));
  const gaps = [];
  let violations = 0;
  for (let i = 1; i < all.length; i++) {
    const gap = Number(all[i][0] - all[i - 1][1]) / 1e6;
    if (gap < 0) violations++;
    // A hand-over to another process (a turn kept in one process is no hand-over).
    if (all[i][2] !== all[i - 1][2]) gaps.push(gap);
  }
  gaps.sort((a, b) => a - b);
  const cycles = all.length / (RUN_MS / 1000);
  // The mean critical section: with the hand-over it bounds the cycles any client can reach.
  const turnMs = all.reduce((sum, [a, b]) => sum + Number(b - a), 0) / 1e6 / Math.max(1, all.length);
  // Fairness: each process's share of the turns, and the longest any process went without one
  // (from the first turn of the run to the last, in ms).
  const shares = runs.map((t) => t.length / Math.max(1, all.length));
  let starved = 0;
  if (all.length) {
    const first = all[0][0];
    const last = all[all.length - 1][1];
    for (let proc = 0; proc < runs.length; proc++) {
      let prev = first;
      for (const [a, b, p] of all) {
        if (p !== proc) continue;
        starved = Math.max(starved, Number(a - prev) / 1e6);
        prev = b;
      }
      starved = Math.max(starved, Number(last - prev) / 1e6);
    }
  }
  return { client, cycles, handovers: gaps.length, p50: pct(gaps, 50) || 0, p99: pct(gaps, 99) || 0, violations, turnMs, shares, starved };
}

module.exports = { handover, PROCESSES, WORKERS };

if (require.main === module && process.argv.length === 7) {
  const [client, url, key, workMs, pauseMs] = process.argv.slice(2);
  child(client, url, key, Number(workMs), Number(pauseMs));
}
