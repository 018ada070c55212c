'use strict';
// Errors made by the native addon belong to Node's main realm, while jest runs each test file in
// its own VM realm, so `instanceof Error` is false there (jest issue #2549). Check the tag.
function isError(e) {
  return Object.prototype.toString.call(e) === '[object Error]' && typeof e.message === 'string';
}

/** Waits until `pred()` (sync or async) is true, checking every `stepMs`; its last answer. */
async function until(pred, ms = 5000, stepMs = 10) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((ok) => setTimeout(ok, stepMs));
  }
  return Boolean(await pred());
}

module.exports = { isError, until };
