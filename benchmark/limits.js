'use strict';
// What no client can beat on this machine, measured in the same run as the clients: the round
// trip of `redis-benchmark -c 1` (C, one connection, one command at a time), and the server's own
// CPU time, read from /proc while each client runs (when the server is busy all the time, its CPU
// per operation bounds every client's throughput: at most 1,000,000 / µs per operation).
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

/** CPU time (user + system) `pid` has used, in microseconds; null where /proc cannot say. */
function processCpuUs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name: state is field 3, utime field 14, stime field 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / TICKS;
  } catch {
    return null;
  }
}

const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** GETs per second of `redis-benchmark -c 1` against `port` (median of three runs), or null. */
function roundTripsPerSec(port) {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    try {
      const out = execFileSync('redis-benchmark', ['-p', String(port), '-c', '1', '-n', '20000', '-t', 'get', '-q'], { encoding: 'utf8' });
      const m = /GET: ([\d.]+) requests per second/.exec(out);
      if (m) runs.push(Number(m[1]));
    } catch {
      return null;
    }
  }
  return runs.length ? runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)] : null;
}

module.exports = { processCpuUs, roundTripsPerSec };
