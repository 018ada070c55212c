'use strict';
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.spec.js'],
  // The cluster / Sentinel failover suites run under `npm run test:cluster`.
  testPathIgnorePatterns: process.env.REDIS_MODE ? ['/node_modules/'] : ['/node_modules/', '/__test__/cluster/'],
  testTimeout: 30000,
  cacheDirectory: '<rootDir>/.jest-cache',
};
