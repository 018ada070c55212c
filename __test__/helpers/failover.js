'use strict';
// A steady stream of writes for the failover tests: one SET at a time on `keys` keys, recording
// what was acknowledged (with when it was sent and answered) and what failed.
const { sleep } = require('../../scripts/redis-server');

/**
 * Starts writing `<prefix><seq % keys>` = seq, one call after another, on `redis`.
 * `recoveredAfter(t, accept)` waits for the first acknowledged write sent after `t` whose key
 * `accept` takes, and resolves when it was answered (null after `limitMs`); `stop()` ends the
 * stream; `lastAfter(t)` maps each key to the last value acknowledged for a write sent after `t`.
 */
function steadyWriter(redis, { prefix, keys }) {
  const acked = [];
  const failures = [];
  const state = { slowest: 0, stop: false };
  const done = (async () => {
    for (let seq = 0; !state.stop; seq++) {
      const key = `${prefix}${seq % keys}`;
      const t = Date.now();
      try {
        await redis.set(key, String(seq));
        acked.push({ key, seq, sent: t, t: Date.now() });
      } catch (e) {
        failures.push(e.code);
        await sleep(20);
      }
      state.slowest = Math.max(state.slowest, Date.now() - t);
    }
  })();
  return {
    acked,
    failures,
    get slowest() { return state.slowest; },
    async recoveredAfter(t, accept = () => true, limitMs = 20000) {
      while (Date.now() - t < limitMs) {
        const hit = acked.find((a) => a.sent > t && accept(a.key));
        if (hit) return hit.t;
        await sleep(50);
      }
      return null;
    },
    async stop() {
      state.stop = true;
      await done;
    },
    lastAfter(t) {
      const last = new Map();
      for (const a of acked) if (a.sent >= t) last.set(a.key, a.seq);
      return last;
    },
  };
}

module.exports = { steadyWriter };
