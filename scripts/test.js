#!/usr/bin/env node
// The README's test command: Rust unit tests, then the jest suites against real redis-server
// processes. Builds the addon first if the sources changed since the last build.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const run = (cmd, args) => {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
};

run(process.execPath, [path.join(root, 'scripts', 'build.js'), '--if-needed']);
run('cargo', ['test', '--lib', '--release']);
run(process.execPath, [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand', ...process.argv.slice(2)]);
