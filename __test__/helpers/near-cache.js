'use strict';
// The near cache's monotonic-reads check, shared by the standalone and cluster suites.
const { spawn } = require('node:child_process');
const { until } = require('./assert');

/**
 * Another process INCRs `nc:counter` as fast as it can for 1.5 s (then sets `nc:done` to its
 * last value) while `readers` (services with `clientCache` on) read the counter in a loop:
 * asserts that no reader ever saw a value older than one it saw before, that they read more
 * than 100 times, and that the final value reaches each of them. `writerOptions`: how the writer
 * connects (JSON), `final()`: `nc:done` as the server has it.
 */
async function readersNeverGoBackwards(readers, writerOptions, final) {
  const writer = spawn(process.execPath, ['-e', `
    const { RedisService } = require(${JSON.stringify(require.resolve('../..'))});
    (async () => {
      const w = await RedisService.connect({ ...${JSON.stringify(writerOptions)}, logger: false });
      const end = Date.now() + 1500;
      let n = 0;
      while (Date.now() < end) { n = await w.incr('nc:counter'); }
      await w.set('nc:done', String(n));
      await w.disconnect();
    })();
  `], { stdio: 'inherit' });
  const exited = new Promise((resolve) => writer.once('exit', resolve));
  try {
    const seen = readers.map(() => 0);
    let backwards = 0;
    let reads = 0;
    const loop = async (r, i) => {
      // A hit settles without I/O: each turn yields to the event loop as a request would, so
      // the invalidations get read.
      while (!(await r.get('nc:done'))) {
        await new Promise(setImmediate);
        const v = Number((await r.get('nc:counter')) || 0);
        reads++;
        if (v < seen[i]) backwards++;
        seen[i] = Math.max(seen[i], v);
      }
    };
    await Promise.all(readers.map(loop));
    expect(await exited).toBe(0);
    const last = Number(final());
    expect(backwards).toBe(0);
    expect(reads).toBeGreaterThan(100);
    for (const r of readers) {
      expect(await until(async () => Number(await r.get('nc:counter')) === last)).toBe(true);
      expect(r.clientCacheStats().hits).toBeGreaterThan(0);
    }
  } finally {
    writer.kill();
  }
}

module.exports = { readersNeverGoBackwards };
