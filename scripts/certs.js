'use strict';
// Throwaway certificates for TLS tests and the benchmark, made with openssl in a temporary folder.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

class Certs {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-tls-'));
  }

  /** Path of file `name` in the folder. */
  file(name) {
    return path.join(this.dir, name);
  }

  ssl(...args) {
    execFileSync('openssl', args, { stdio: 'pipe' });
  }

  /** A self-signed CA: `<name>.crt` and `<name>.key`. */
  ca(name) {
    const f = (n) => this.file(n);
    this.ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`));
  }

  /**
   * A certificate for `name` signed by CA `ca`, valid for the subjectAltName list `san`, for
   * `days` days from now (-1: expired yesterday).
   */
  cert(name, ca, san, { days = 2 } = {}) {
    const f = (n) => this.file(n);
    fs.writeFileSync(f(`${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`);
    this.ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    this.ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-days', String(days), '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`));
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { Certs };
