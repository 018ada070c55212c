'use strict';
// What to say when no native addon fits this machine. index.js calls `missingAddon(error)` with
// what the generated loader (native.js) threw; the message names the platform, what was looked
// for and the two ways out.

/** The prebuilt platforms: one `@app/redis-<name>` package each (npm/<name>/ in the repository). */
const PLATFORMS = {
  'linux-x64-gnu': 'Linux x64 with glibc 2.17 or later',
  'linux-x64-musl': 'Linux x64 with musl (Alpine)',
  'linux-arm64-gnu': 'Linux arm64 with glibc',
  'darwin-x64': 'macOS x64',
  'darwin-arm64': 'macOS arm64 (Apple silicon)',
  'win32-x64-msvc': 'Windows x64',
};

function isMusl() {
  try {
    const report = process.report && process.report.getReport();
    return !(report && report.header && report.header.glibcVersionRuntime);
  } catch {
    return false;
  }
}

/** The napi-rs name of this machine's platform, e.g. `linux-x64-gnu`. */
function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function firstCause(error) {
  let e = error;
  while (e && e.cause) e = e.cause;
  return e && e.message ? e.message.split('\n')[0] : String(e);
}

function missingAddon(cause) {
  const name = platformName();
  const supported = Object.prototype.hasOwnProperty.call(PLATFORMS, name);
  const lines = [
    `@app/redis: no native addon could be loaded for ${name} (Node.js ${process.version}).`,
    `Looked for: app-redis.${name}.node in the @app/redis package folder, and the package @app/redis-${name}.`,
  ];
  if (supported) {
    lines.push(`${name} is supported: @app/redis-${name} is an optional dependency that npm did not install ` +
      '(installs with --omit=optional or --no-optional, or a lock file written on another platform skip it), ' +
      'or it is there but did not load (see the cause below).');
  } else {
    lines.push(`${name} has no prebuilt addon.`);
  }
  lines.push('Two ways out:',
    `  1. A supported platform: ${Object.entries(PLATFORMS).map(([k, v]) => `${k} (${v})`).join(', ')}; ` +
      'then `npm install` with optional dependencies included.',
    '  2. Build the addon from source (needs Rust, https://rustup.rs, and a C compiler): ' +
      '`cd node_modules/@app/redis && npm run build`.',
    `Cause: ${firstCause(cause)}`);
  const error = new Error(lines.join('\n'));
  error.code = 'ERR_NO_NATIVE_ADDON';
  error.cause = cause;
  return error;
}

module.exports = { PLATFORMS, platformName, missingAddon };
