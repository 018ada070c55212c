// jobs.service.js
const { Injectable, Inject } = require('@nestjs/common');
const { RedisService } = require('@app/redis');

class JobsService {
  constructor(redis) { this.redis = redis; }
  async run(id) {
    const { allowed } = await this.redis.rateLimit(`jobs:${id}`, { limit: 2, windowMs: 60000 });
    if (!allowed) return 'throttled';
    return this.redis.withLock(`job:${id}`, async () => `run ${await this.redis.incr(`runs:${id}`)}`);
  }
}
Injectable()(JobsService);
Inject(RedisService)(JobsService, undefined, 0);
module.exports = { JobsService };
