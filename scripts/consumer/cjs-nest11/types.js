// The types test: types/usage.ts (and a copy as usage.mts, an ES module) compile against the installed
// @app/redis under TypeScript 5 (node10, node16, bundler resolution) and TypeScript 7 (nodenext,
// bundler). No `types` option: index.d.ts must bring in Node's types itself.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

// The same file as an ES module (.mts): how an ESM project sees the typings.
fs.copyFileSync(path.join(__dirname, 'types', 'usage.ts'), path.join(__dirname, 'types', 'usage.mts'));

const tsc = (pkg) => path.join(__dirname, 'node_modules', pkg, 'bin', 'tsc');
const common = ['--noEmit', '--strict', '--target', 'es2022', '--skipLibCheck', 'false'];
const settings = [
  ['ts5', ['--module', 'commonjs', '--moduleResolution', 'node10'], ['types/usage.ts']],
  ['ts5', ['--module', 'node16', '--moduleResolution', 'node16'], ['types/usage.ts', 'types/usage.mts']],
  ['ts5', ['--module', 'esnext', '--moduleResolution', 'bundler'], ['types/usage.ts']],
  ['ts7', ['--module', 'nodenext', '--moduleResolution', 'nodenext'], ['types/usage.ts', 'types/usage.mts']],
  ['ts7', ['--module', 'esnext', '--moduleResolution', 'bundler'], ['types/usage.ts']],
];
let failed = 0;
for (const [pkg, flags, files] of settings) {
  const version = require(`${pkg}/package.json`).version;
  const label = `TypeScript ${version} ${flags.filter((f, i) => flags[i - 1] === '--moduleResolution').join('')}`;
  try {
    execFileSync(process.execPath, [tsc(pkg), ...common, ...flags, ...files], { cwd: __dirname, encoding: 'utf8', stdio: 'pipe' });
    console.log(`types: ${label}: ok`);
  } catch (e) {
    failed++;
    console.error(`types: ${label}: FAILED\n${e.stdout}${e.stderr}`);
  }
}
process.exit(failed ? 1 : 0);
