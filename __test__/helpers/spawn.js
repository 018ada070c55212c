'use strict';
// Child processes for tests: `runWorker(job)` runs helpers/worker.js with a JSON job and resolves
// its JSON result; `runChild(code, env)` runs a snippet from the package root and resolves its
// exit code, signal, output and duration.
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');
const WORKER = path.join(__dirname, 'worker.js');

function runWorker(job) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => {
      try {
        const r = JSON.parse(out.trim().split('\n').pop());
        if (r.error) reject(new Error(r.error));
        else resolve(r);
      } catch {
        reject(new Error(`worker exited with ${code}: ${out}`));
      }
    });
  });
}

function runChild(code, env = {}, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', code], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const started = Date.now();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ code: exitCode, signal, out, ms: Date.now() - started });
    });
  });
}

/**
 * Runs a NestJS scenario of helpers/nest-scenarios.js in a plain Node child process (Nest 12 is
 * ES modules only, which Node 20 can require() but jest's module runtime cannot).
 */
function runNestScenario(name, conn) {
  const target = typeof conn === 'string' ? conn : JSON.stringify(conn);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, 'nest-scenarios.js'), name, target], { timeout: 30000 }, (err, stdout, stderr) => {
      try {
        const r = JSON.parse(stdout.trim().split('\n').pop());
        if (r && r.error) reject(new Error(r.error));
        else resolve(r);
      } catch {
        reject(err || new Error(stdout + stderr));
      }
    });
  });
}

module.exports = { runWorker, runChild, runNestScenario, WORKER, ROOT };
