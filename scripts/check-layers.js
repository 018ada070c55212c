#!/usr/bin/env node
'use strict';
// Checks the layering rules of ARCHITECTURE.md that a script can check. Exit 1 when one is
// broken. Run by .ci/run and `npm run lint`.
//
// Rules (code only: comments are ignored):
//   1. src/core never names napi, libc, crate::engine or crate::binding.
//   2. src/engine never names crate::binding.
//   3. Raw Node-API calls (`sys::napi_*(`, `sys::node_api_*(`) only in src/engine/, and in
//      binding's JS-value helper (js/) and argument reader (args.rs).
//   4. `unsafe impl Send` / `unsafe impl Sync` only in engine/js_thread.rs (JsThread) and
//      engine/completer.rs (the threadsafe function).
//   5. No import cycle between modules (a folder module counts as one; a name a layer's root
//      re-exports counts as the module it comes from).
//   6. No source file past 600 lines.
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const SRC = path.join(ROOT, 'src');

function files(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return files(p);
    return d.name.endsWith('.rs') ? [p] : [];
  });
}

/** The file's lines with comments blanked (line numbers kept). */
function code(text) {
  return text.split('\n').map((l) => {
    const i = l.indexOf('//');
    return i === -1 ? l : l.slice(0, i);
  });
}

const rel = (p) => path.relative(ROOT, p);
const problems = [];
const all = files(SRC);

function forbid(where, pattern, why) {
  for (const f of all.filter(where)) {
    code(fs.readFileSync(f, 'utf8')).forEach((l, i) => {
      if (pattern.test(l)) problems.push(`${rel(f)}:${i + 1}: ${why}: ${l.trim()}`);
    });
  }
}

const under = (dir) => (f) => f.startsWith(path.join(SRC, dir) + path.sep);
forbid(under('core'), /\bnapi\b|\blibc\b|crate::engine|crate::binding/, 'src/core names an upper layer or napi');
forbid(under('engine'), /crate::binding/, 'src/engine names the binding');
const rawAllowed = (f) => under('engine')(f) || under('binding/js')(f) || f === path.join(SRC, 'binding/args.rs');
forbid((f) => !rawAllowed(f), /\bsys::(napi|node_api)_[a-z_]+\s*\(/, 'raw Node-API call outside engine/, binding/js/, binding/args.rs');
const sendAllowed = new Set(['engine/js_thread.rs', 'engine/completer.rs'].map((p) => path.join(SRC, p)));
forbid((f) => !sendAllowed.has(f), /unsafe\s+impl(<[^>]*>)?\s+(Send|Sync)\b/, 'unsafe impl Send/Sync outside JsThread and the threadsafe function');

// Import cycles between modules (a folder module with its files counts as one: `core::connection`
// includes `connection/open.rs`).
const modOf = (f) => rel(f).replace(/^src\//, '').replace(/(\/mod)?\.rs$/, '').split('/').slice(0, 2).join('::');
const mods = new Map();
for (const f of all) mods.set(modOf(f), [...(mods.get(modOf(f)) || []), f]);
// A name a layer's root re-exports (`pub use connection::{Client, ...}` in core/mod.rs) is a
// dependency on the module it comes from: `crate::core::Client` names core::connection.
const reexported = new Map();
for (const layer of ['core', 'engine', 'binding']) {
  const root = path.join(SRC, layer, 'mod.rs');
  if (!fs.existsSync(root)) continue;
  for (const l of code(fs.readFileSync(root, 'utf8'))) {
    const m = l.match(/^\s*pub use ([a-z_]+)::(\{[^}]*\}|[A-Za-z_]+);/);
    if (!m) continue;
    for (const name of m[2].replace(/[{}]/g, '').split(',').map((x) => x.trim()).filter(Boolean)) {
      reexported.set(`${layer}::${name}`, `${layer}::${m[1]}`);
    }
  }
}
/** Every module path a line names: `crate::a::b`, and `crate::core::{Client, lock::X}`. */
function named(l) {
  const out = [];
  for (const hit of l.matchAll(/crate::([a-z_]+)::\{([^}]*)\}/g)) {
    for (const item of hit[2].split(',').map((x) => x.trim()).filter(Boolean)) {
      const first = item.split('::')[0];
      out.push(reexported.get(`${hit[1]}::${first}`) || `${hit[1]}::${first}`);
    }
  }
  for (const hit of l.matchAll(/crate::((?:[a-z_]+::)*[a-z_]+)(::([A-Z][A-Za-z_]*))?/g)) {
    out.push(hit[1].includes('::') ? hit[1] : reexported.get(`${hit[1]}::${hit[3]}`) || hit[1]);
  }
  return out;
}
const graph = new Map();
for (const [m, fs_] of mods) {
  const deps = new Set();
  for (const l of fs_.flatMap((f) => code(fs.readFileSync(f, 'utf8')))) {
    for (let target of named(l)) {
      while (target && !mods.has(target)) target = target.includes('::') ? target.slice(0, target.lastIndexOf('::')) : '';
      if (target && target !== m && target.includes('::')) deps.add(target);
    }
  }
  graph.set(m, deps);
}
// Strongly connected components (Tarjan).
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const on = new Set();
const cycles = [];
function visit(v) {
  idx.set(v, index); low.set(v, index); index++;
  stack.push(v); on.add(v);
  for (const w of graph.get(v) || []) {
    if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
    else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do { w = stack.pop(); on.delete(w); comp.push(w); } while (w !== v);
    if (comp.length > 1) cycles.push(comp.sort());
  }
}
for (const m of graph.keys()) if (!idx.has(m)) visit(m);
const layerOf = (m) => m.split('::')[0];
for (const c of cycles) {
  const layers = new Set(c.map(layerOf));
  problems.push(`import cycle${layers.size > 1 ? ' across layers' : ''}: ${c.join(' <-> ')}`);
}

const long = all.map((f) => [rel(f), fs.readFileSync(f, 'utf8').split('\n').length]).filter(([, n]) => n > 600);
for (const [f, n] of long) problems.push(`${f}: ${n} lines (split it along its seams: 600 at most)`);
console.log(`layers: ${all.length} files checked`);
console.log(`import cycles: ${cycles.length}`);
console.log(`files past 600 lines (${long.length}): ${long.map(([f, n]) => `${f} ${n}`).join(', ') || 'none'}`);
if (problems.length) {
  console.error(`\n${problems.length} layering rule(s) broken:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('layering rules: ok');
