// `import ... from '@app/redis/express'`: the same module as the `require` entry (express.js).
import express from './express.js';

export const { rateLimitMiddleware, RedisSessionStore } = express;
export default express;
