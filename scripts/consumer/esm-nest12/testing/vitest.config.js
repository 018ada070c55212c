// vitest with the package's global setup (a throwaway redis-server when REDIS_URL is not set).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.test.js'],
    globalSetup: ['@app/redis/testing/global-setup'],
  },
});
