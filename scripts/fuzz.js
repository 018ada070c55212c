#!/usr/bin/env node
// `node scripts/fuzz.js [seconds]` (default 60): runs the fuzz target over the fast path's RESP
// decoder and reply matcher (fuzz/fuzz_targets/resp.rs) with cargo fuzz (libFuzzer, address
// sanitizer) on the nightly toolchain, for that many seconds, from the seeds in fuzz/seeds (new
// inputs go to a temporary folder, not into the repository). Installs cargo-fuzz from crates.io
// when it is missing. Prints the executions and exits non-zero on a finding (libFuzzer leaves
// the input in fuzz/artifacts/resp/). CI runs it for 60 s; run it longer by hand.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const seconds = Number(process.argv[2] || 60);
if (!Number.isInteger(seconds) || seconds <= 0) {
  console.error('usage: node scripts/fuzz.js [seconds]');
  process.exit(2);
}

const has = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
if (!has('rustup', ['run', 'nightly', 'rustc', '--version'])) {
  console.error('scripts/fuzz.js: the nightly Rust toolchain is missing (cargo fuzz needs it for the sanitizers).');
  process.exit(1);
}
if (!has('cargo', ['fuzz', '--version'])) {
  console.log('$ cargo install cargo-fuzz --locked');
  if (spawnSync('cargo', ['install', 'cargo-fuzz', '--locked'], { stdio: 'inherit' }).status !== 0) process.exit(1);
}

const corpus = fs.mkdtempSync(path.join(os.tmpdir(), 'app-redis-fuzz-'));
const args = ['+nightly', 'fuzz', 'run', 'resp', corpus, path.join('fuzz', 'seeds'), '--',
  `-max_total_time=${seconds}`, '-rss_limit_mb=2048', '-timeout=10', '-print_final_stats=1'];
console.log(`$ cargo ${args.join(' ')}`);
const r = spawnSync('cargo', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'], maxBuffer: 256 << 20 });
fs.rmSync(corpus, { recursive: true, force: true });
const err = r.stderr || '';
const runs = /Done (\d+) runs in (\d+) second/.exec(err);
const lines = err.split('\n').filter((l) => /^(stat::|Done |==\d+==|SUMMARY|panicked|thread '|Failing input|artifact_prefix|Test unit written)/.test(l));
console.log(lines.join('\n'));
if (r.status !== 0 || !runs) {
  console.error(err.split('\n').slice(-60).join('\n'));
  console.error('\nfuzz: FAILED (a finding, or the target did not run)');
  process.exit(1);
}
console.log(`\nfuzz: ${Number(runs[1]).toLocaleString('en-US')} executions in ${runs[2]} s, no finding`);
