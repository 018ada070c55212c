'use strict';
// `require('@app/redis/testing')`: createTestRedis() for any test runner; RedisTestingModule for
// NestJS testing modules (defined on first use, so a project without Nest never loads it).
const binding = require('../index');
const { defineTesting, defineNestTesting } = require('./testing-define');

const { createTestRedis } = defineTesting(binding);
let nestTesting = null;

module.exports = {
  createTestRedis,
  get RedisTestingModule() {
    if (!nestTesting) {
      const common = require('@nestjs/common');
      nestTesting = defineNestTesting(common, require('./nestjs'), createTestRedis);
    }
    return nestTesting.RedisTestingModule;
  },
};
