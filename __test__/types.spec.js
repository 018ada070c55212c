'use strict';
// The typings (index.d.ts, js/*.d.ts) compile, and accept the documented usage, under
// `tsc --strict` (library checks on: an undefined name in a .d.ts fails here).
const path = require('node:path');
const { execFileSync } = require('node:child_process');

test('index.d.ts and the integration typings accept the documented usage', () => {
  const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
  const file = path.join(__dirname, 'types', 'usage.ts');
  let out = '';
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', '--types', 'node', file], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    out = `${e.stdout}${e.stderr}`;
  }
  expect(out).toBe('');
}, 60000);
