// The README's two-line set-up for @app/redis/testing: the package's global setup and teardown
// (a throwaway redis-server when REDIS_URL is not set). Run with --maxWorkers=4.
module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  globalSetup: '@app/redis/testing/global-setup',
  globalTeardown: '@app/redis/testing/global-teardown',
};
