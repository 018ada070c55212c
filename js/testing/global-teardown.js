'use strict';
// jest `globalTeardown: '@app/redis/testing/global-teardown'`: stops the redis-server the global
// setup started (nothing when REDIS_URL came from you).
module.exports = require('./global-setup').teardown;
