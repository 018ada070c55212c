'use strict';
module.exports = {
  testEnvironment: 'node',
  testMatch: ['<rootDir>/__test__/**/*.spec.js'],
  testTimeout: 30000,
  cacheDirectory: '<rootDir>/.jest-cache',
};
