'use strict';
// Property-based bad input: every public method of RedisService called with random argument
// types and values, including getters and Proxy traps that throw, sparse arrays and empty
// collections in every argument and option slot. Reports calls made, calls that never settled, and failures that were not an
// ERR_INVALID_ARGUMENT / TypeError (a Redis reply error to a well-typed call is fine).
// argv[2]: JSON { url }. Prints one JSON line.
const fc = require('fast-check');
const { RedisService } = require('..');

const { url } = JSON.parse(process.argv[2]);
const SKIP = new Set(['constructor', 'connect', 'disconnect', 'onModuleDestroy', 'onApplicationShutdown']);
const RUNS = Number(process.env.BAD_INPUT_RUNS || 60);
// A fixed seed keeps CI reproducible; FAULTS_SEED=random explores new inputs (the seed is printed).
const SEED = process.env.FAULTS_SEED === 'random' ? Date.now() : Number(process.env.FAULTS_SEED || 20261122);

// User code that throws while its argument is read (an option getter, a Proxy trap): the call
// must throw or reject with that very error, and nothing else may happen. fast-check inspects
// what it generates (a Proxy would throw at it), so it generates inert markers, and
// `materialize` turns them into the hostile values just before the call.
const fromGetter = () => Object.assign(new Error('getter'), { fromGetter: true });
const OPTION_NAMES = ['EX', 'PX', 'NX', 'GET', 'ttlMs', 'ttlSeconds', 'waitMs', 'limit', 'windowSeconds', 'windowMs',
  'algorithm', 'cost', 'MATCH', 'COUNT', 'TYPE', 'keys', 'arguments', 'staleSeconds', 'lockMs', 'onError', 'role'];
const HOSTILE = {
  proxy: () => new Proxy({}, {
    get() { throw fromGetter(); }, ownKeys() { throw fromGetter(); }, has() { throw fromGetter(); },
    getOwnPropertyDescriptor() { throw fromGetter(); },
  }),
  // An array whose length is far past its contents, and one with a throwing element.
  sparse: () => { const a = []; a.length = 2 ** 32 - 1; a[0] = 'k'; return a; },
  throwingElement: () => { const a = ['k']; Object.defineProperty(a, 1, { get() { throw fromGetter(); }, enumerable: true }); return a; },
  emptyObject: () => ({}),
  emptyArray: () => [],
};
const hostile = fc.oneof(
  fc.constantFrom(...Object.keys(HOSTILE)).map((kind) => ({ hostile: kind })),
  fc.constantFrom(...OPTION_NAMES).map((name) => ({ hostile: 'getter', name })),
);
function materialize(v) {
  if (Array.isArray(v)) return v.map(materialize);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    if (typeof v.hostile === 'string' && Object.keys(v).length <= 2) {
      if (v.hostile === 'getter') return { get [v.name]() { throw fromGetter(); } };
      return HOSTILE[v.hostile]();
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, materialize(x)]));
  }
  return v;
}
// Options objects with known names, whose values are anything above (hostile ones included).
const leaf = fc.oneof(fc.constant(undefined), fc.integer(), fc.double(), fc.string(), fc.boolean(), hostile);
const options = fc.dictionary(fc.constantFrom(...OPTION_NAMES), leaf, { maxKeys: 3 });

const weird = fc.oneof(
  hostile, options, fc.array(leaf, { maxLength: 3 }),
  fc.constant(undefined), fc.constant(null), fc.constant(Number.NaN), fc.constant(Infinity), fc.constant(-Infinity),
  fc.constant(Symbol('s')), fc.constant('\uD800'), fc.constant('x'.repeat(1 << 20)), fc.constant(() => 1),
  fc.constant(async () => { throw Object.assign(new Error('boom'), { fromCallback: true }); }), fc.boolean(), fc.integer(), fc.double(), fc.bigInt(),
  fc.string(), fc.uint8Array().map((a) => Buffer.from(a)), fc.object(), fc.array(fc.anything(), { maxLength: 4 }),
  fc.anything(),
);

// Methods that send what the caller wrote (a raw command, a script), where Redis's own
// "wrong number of arguments" is the caller's to get.
const RAW = new Set(['call', 'eval', 'evalsha']);

function acceptable(e, name) {
  if (!e || typeof e !== 'object') return false;
  // A malformed command reached Redis: the argument check should have answered (an empty
  // collection) or refused (ERR_INVALID_ARGUMENT) instead.
  if (e.code === 'ERR_REPLY' && /wrong number of arg/i.test(e.message) && !RAW.has(name)) return false;
  // The generated callbacks' own error, passed through by withLock / wrap as documented, and
  // the error a getter or Proxy trap threw while the arguments were read.
  if (e.fromCallback || e.fromGetter) return true;
  return e.code === 'ERR_INVALID_ARGUMENT' || e.name === 'TypeError' || e.code === 'ERR_REPLY'
    || e.code === 'ERR_LOCK_NOT_ACQUIRED' || e.code === 'ERR_LOCK_LOST';
}

async function main() {
  const redis = await RedisService.connect({ url, logger: false, commandTimeoutMs: 2000 });
  const methods = Object.getOwnPropertyNames(RedisService.prototype)
    .filter((n) => !SKIP.has(n) && typeof Object.getOwnPropertyDescriptor(RedisService.prototype, n).value === 'function');
  let calls = 0;
  let hung = 0;
  const wrong = [];
  const subs = [];
  for (const name of methods) {
    await fc.assert(fc.asyncProperty(fc.array(weird, { maxLength: 4 }), async (args) => {
      calls++;
      let p;
      try {
        p = redis[name](...materialize(args));
      } catch (e) {
        if (!acceptable(e, name)) wrong.push(`${name}: sync ${e && e.name} ${e && e.code} ${e && e.message}`);
        return true;
      }
      if (!p || typeof p.then !== 'function') return true;
      const timeout = new Promise((r) => setTimeout(() => r('__hung__'), 3000));
      const r = await Promise.race([p.then((v) => ({ v }), (e) => ({ e })), timeout]);
      if (r === '__hung__') { hung++; wrong.push(`${name}: did not settle in 3 s`); return true; }
      if (r.e !== undefined && !acceptable(r.e, name)) wrong.push(`${name}: ${r.e && r.e.name} ${r.e && r.e.code} ${r.e && r.e.message}`);
      if (r.v && typeof r.v.unsubscribe === 'function') subs.push(r.v);
      return true;
    }), { numRuns: RUNS, seed: SEED });
  }
  for (const s of subs) await s.unsubscribe();
  await redis.disconnect();
  console.log(JSON.stringify({ calls, hung, wrong: [...new Set(wrong)].slice(0, 20), methods: methods.length, seed: SEED }));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e), calls: 0, hung: 0, wrong: [String(e)] }));
  process.exit(1);
});
