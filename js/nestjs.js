'use strict';
// `require('@app/redis/nestjs')`: Nest 10 and 11 (CommonJS). The ES-module entry is nestjs.mjs;
// both hand the Nest modules to the one implementation in nestjs-define.js.
const { defineNest } = require('./nestjs-define');

function optional(name) {
  try {
    return require(name);
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(name)) return null;
    throw e;
  }
}

module.exports = defineNest(require('@nestjs/common'), require('@nestjs/core'), optional('@nestjs/terminus'),
  require('../index'));
