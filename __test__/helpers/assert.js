'use strict';
// Errors made by the native addon belong to Node's main realm, while jest runs each test file in
// its own VM realm, so `instanceof Error` is false there (jest issue #2549). Check the tag.
function isError(e) {
  return Object.prototype.toString.call(e) === '[object Error]' && typeof e.message === 'string';
}
module.exports = { isError };
