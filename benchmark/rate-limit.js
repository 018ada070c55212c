'use strict';
// Rate-limit clients and scenarios for `npm run bench`: @app/redis against rate-limiter-flexible's
// RateLimiterRedis and the seeds' MULTI INCR + EXPIRE pattern (both on ioredis). Every client
// checks a fixed window of 60 s over 1,000 keys, with a limit high enough that every check is
// allowed (the common path).
const { connectIoredis, ourOptions } = require('./connect');
const { RateLimiterRedis } = require('rate-limiter-flexible');
const { RedisService } = require('..');

const KEYS = 1000;
const LIMIT = 1_000_000_000;
const IN_FLIGHT = 256;

function rateClients(server) {
  return [
    {
      name: '@app/redis',
      async open() { this.c = await RedisService.connect(ourOptions(server)); },
      close() { return this.c.disconnect(); },
      ops() {
        const c = this.c;
        return { check: async (k) => (await c.rateLimit(k, { limit: LIMIT, windowMs: 60000 })).allowed };
      },
    },
    {
      name: 'rate-limiter-flexible',
      async open() {
        this.io = await connectIoredis(server);
        this.rl = new RateLimiterRedis({ storeClient: this.io, points: LIMIT, duration: 60, keyPrefix: 'rlflx' });
      },
      close() { this.io.disconnect(); },
      ops() {
        const rl = this.rl;
        return { check: (k) => rl.consume(k).then(() => true, () => false) };
      },
    },
    {
      name: 'MULTI INCR+EXPIRE (ioredis)',
      async open() { this.io = await connectIoredis(server); },
      close() { this.io.disconnect(); },
      ops() {
        const io = this.io;
        return {
          check: async (k) => {
            const key = `seed:${k}`;
            const [[, count]] = await io.multi().incr(key).expire(key, 60).exec();
            return count <= LIMIT;
          },
        };
      },
    },
  ];
}

let next = 0;
const key = () => `user:${(next++) % KEYS}`;

const rateScenarios = [
  {
    name: 'rate-limit check, sequential, 1,000 keys',
    trips: 1,
    unit: async (o) => { await o.check(key()); return 1; },
  },
  {
    name: `rate-limit check, ${IN_FLIGHT} in flight, 1,000 keys`,
    serverBound: true,
    unit: async (o) => {
      const ps = new Array(IN_FLIGHT);
      for (let i = 0; i < IN_FLIGHT; i++) ps[i] = o.check(key());
      await Promise.all(ps);
      return IN_FLIGHT;
    },
  },
];

module.exports = { rateClients, rateScenarios };
