'use strict';
// The near cache's hits, answered in JavaScript (`clientCache`, README "Near cache"). The cache
// itself lives in the addon: it decides what is kept, applies Redis's invalidations, flushes on a
// lost connection. Calling into the addon for a hit costs about five times what the hit is worth
// (a native call, a promise made and resolved through Node-API), so each service keeps a copy of
// the hits the addon served, here, and answers the next ones without calling in.
//
// Coherence: the addon shares a few counters with this file (`Signals` in
// src/core/near_cache.rs, read through a Uint32Array over the addon's own memory). Word 0, the
// epoch, changes whenever any entry leaves the cache (invalidated, evicted, replaced, expired,
// flushed); the copy is emptied as soon as it sees a new epoch, and a hit is copied only if the
// epoch did not change between the addon serving it and the copy being made. So the copy never
// holds what the addon no longer holds, and a value the addon would not serve is not served
// here. Entries also carry the key's remaining TTL (word 2 of the hit that made them).
// Values that callers could change (objects, arrays) are kept as JSON text and parsed per hit.

const MIRROR = Symbol('@app/redis.nearMirror');
const INSTALLED = Symbol.for('@app/redis.nearMirror.installed');
const NO_EXPIRY = 0xffffffff;

/** The reads the copy answers: how their values are kept. */
const METHODS = [
  ['get', false], ['hGet', false], ['exists', false], ['strlen', false],
  ['getJson', true], ['getSession', true], ['hGetAll', true], ['hmGet', true],
];

function install(RedisService) {
  const proto = RedisService.prototype;
  if (Object.prototype.hasOwnProperty.call(proto, INSTALLED)) return;
  Object.defineProperty(proto, INSTALLED, { value: true });
  const signalsOf = proto.__nearCacheSignals;
  const { parse, stringify } = JSON;
  const clock = performance;
  const ignore = () => {};

  /** `service`'s copy: `null` when its cache is off (or the memory cannot be shared). */
  function mirrorOf(service) {
    let buf = null;
    try {
      buf = signalsOf.call(service);
    } catch {
      return null; // not a RedisService: the native method reports it
    }
    const m = buf ? { sig: new Uint32Array(buf), epoch: -1, maps: METHODS.map(() => new Map()), hits: 0 } : null;
    Object.defineProperty(service, MIRROR, { value: m });
    return m;
  }

  METHODS.forEach(([name, json], i) => {
    const native = proto[name];
    if (typeof native !== 'function') return;
    const wrapped = {
      [name](a, b) {
        if (this === null || typeof this !== 'object') return native.apply(this, arguments);
        let m = this[MIRROR];
        if (m === undefined) m = mirrorOf(this);
        const n = arguments.length;
        if (m === null || typeof a !== 'string' || n > 2 || (n === 2 && typeof b !== 'string')) {
          return native.apply(this, arguments);
        }
        const sig = m.sig;
        if (sig[0] !== m.epoch) {
          for (const map of m.maps) map.clear();
          m.epoch = sig[0];
        }
        const map = m.maps[i];
        const k = n === 2 ? `${a}\u0000${b}` : a;
        const e = map.get(k);
        if (e !== undefined) {
          if (e.exp === Infinity || clock.now() < e.exp) {
            m.hits++;
            return Promise.resolve(json && e.v !== null ? parse(e.v) : e.v);
          }
          map.delete(k);
        }
        const served = sig[1];
        const p = native.apply(this, arguments);
        if (sig[1] !== served) {
          // The addon answered from its cache just now: copy that answer, unless an entry left
          // the cache before the copy is made.
          const epoch = sig[0];
          const ttl = sig[2];
          const exp = ttl === NO_EXPIRY ? Infinity : clock.now() + ttl - 1;
          p.then((v) => {
            if (sig[0] !== epoch) return;
            if (m.epoch !== epoch) {
              for (const other of m.maps) other.clear();
              m.epoch = epoch;
            }
            map.set(k, { v: json && v !== null ? stringify(v) : v, exp });
          }, ignore);
        }
        return p;
      },
    }[name];
    Object.defineProperty(proto, name, { ...Object.getOwnPropertyDescriptor(proto, name), value: wrapped });
  });

  // The hits answered here count with the addon's.
  const hitsHere = (service) => {
    const m = service !== null && typeof service === 'object' ? service[MIRROR] : undefined;
    return m ? m.hits : 0;
  };
  const cacheStats = proto.clientCacheStats;
  Object.defineProperty(proto, 'clientCacheStats', {
    ...Object.getOwnPropertyDescriptor(proto, 'clientCacheStats'),
    value: function clientCacheStats() {
      const s = cacheStats.apply(this, arguments);
      s.hits += hitsHere(this);
      return s;
    },
  });
  const nativeStats = proto.stats;
  Object.defineProperty(proto, 'stats', {
    ...Object.getOwnPropertyDescriptor(proto, 'stats'),
    value: function stats() {
      const s = nativeStats.apply(this, arguments);
      if (s.clientCache) s.clientCache.hits += hitsHere(this);
      return s;
    },
  });
}

module.exports = { install };
