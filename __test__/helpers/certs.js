'use strict';
// The throwaway certificates for TLS tests live with the other server launchers (benchmark too).
module.exports = require('../../scripts/certs');
