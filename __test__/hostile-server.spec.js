'use strict';
// A server that breaks the protocol, against the JS-thread connection's own RESP reader: a
// reply for a command never sent, a length prefix of 2^62, a map that never completes, a push
// frame in the middle of a pipeline's replies, a connection closed mid-frame. Each must fail the
// affected calls with a clear error and reset the connection (the next call works on a new
// one); none may crash, hang, or hand one caller's reply to another. The server is a small TCP
// server in this file: it answers the handshake like Redis 7, and GETs by a script per key; or,
// as a server older than Redis 6, refuses HELLO or CLIENT TRACKING.
const net = require('node:net');
const { RedisService } = require('..');
const { until } = require('./helpers/assert');

/** Splits the RESP commands a client sent (arrays of bulk strings) out of `buf`. */
function commands(state, chunk) {
  state.buf = Buffer.concat([state.buf, chunk]);
  const out = [];
  for (;;) {
    let at = 0;
    const line = () => {
      const end = state.buf.indexOf('\r\n', at);
      if (end < 0) return null;
      const s = state.buf.toString('latin1', at, end);
      at = end + 2;
      return s;
    };
    const head = line();
    if (head === null || head[0] !== '*') return out;
    const args = [];
    let whole = true;
    for (let i = 0; i < Number(head.slice(1)); i++) {
      const len = line();
      if (len === null || at + Number(len.slice(1)) + 2 > state.buf.length) { whole = false; break; }
      args.push(state.buf.toString('latin1', at, at + Number(len.slice(1))));
      at += Number(len.slice(1)) + 2;
    }
    if (!whole) return out;
    state.buf = state.buf.subarray(at);
    out.push(args);
  }
}

const HELLO = '%3\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:3\r\n';
const bulk = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/**
 * The fake server: `gets[key](socket)` answers `GET key` (default: the key's name); `refuse`
 * lists commands (`HELLO`, `CLIENT TRACKING`) answered with an error, as an older server does.
 */
async function fakeServer(gets, refuse = []) {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const state = { buf: Buffer.alloc(0) };
    s.on('data', (chunk) => {
      for (const [name, ...args] of commands(state, chunk)) {
        if (s.dead) return;
        const cmd = name.toUpperCase();
        const full = args.length ? `${cmd} ${args[0].toUpperCase()}` : cmd;
        if (refuse.includes(cmd) || refuse.includes(full)) s.write(`-ERR unknown ${refuse.includes(cmd) ? 'command' : 'subcommand'} '${refuse.includes(cmd) ? name : args[0]}'\r\n`);
        else if (cmd === 'HELLO') s.write(HELLO);
        else if (cmd === 'INFO') s.write(bulk('# Server\r\nredis_version:7.0.0\r\n'));
        else if (cmd === 'PING') s.write('+PONG\r\n');
        else if (cmd === 'GET' && gets[args[0]]) gets[args[0]](s);
        else if (cmd === 'GET') s.write(bulk(args[0]));
        else s.write('+OK\r\n');
      }
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  server.connections = 0;
  server.on('connection', () => { server.connections++; });
  return {
    port: server.address().port,
    get connections() { return server.connections; },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((ok) => server.close(ok));
    },
  };
}

function recorder() {
  const lines = [];
  const add = (level) => (m) => lines.push([level, String(m)]);
  return { lines, log: add('log'), warn: add('warn'), error: add('error') };
}

/** After a reset: the service reconnects by itself and a plain GET is answered on it. */
async function worksAgain(redis) {
  const ok = await until(async () => (await redis.get('after').catch(() => null)) === 'after');
  expect(ok).toBe(true);
}

describe('a server that breaks the protocol', () => {
  let server;
  let redis;
  let logger;
  const open = async (gets, extra = {}) => {
    server = await fakeServer(gets);
    logger = recorder();
    redis = await RedisService.connect({ host: '127.0.0.1', port: server.port, logger, reconnectMinDelayMs: 10, reconnectMaxDelayMs: 50, ...extra });
  };
  afterEach(async () => {
    await redis.disconnect();
    await server.close();
  });

  test('a reply for a command never sent resets the connection', async () => {
    await open({ extra: (s) => s.write('+one\r\n+two\r\n') });
    const before = server.connections;
    expect(await redis.get('extra')).toBe('one');
    await worksAgain(redis);
    expect(server.connections).toBeGreaterThan(before);
    expect(logger.lines.some(([, m]) => /no command asked for/.test(m))).toBe(true);
  });

  test('a length prefix of 2^62 fails the call at once with ERR_CONNECTION and resets the connection', async () => {
    await open({ huge: (s) => s.write('$4611686018427387904\r\n') }, { commandTimeoutMs: 60000 });
    const t0 = Date.now();
    const err = await redis.get('huge').catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CONNECTION', message: expect.stringMatching(/length prefix too large/) });
    expect(Date.now() - t0).toBeLessThan(2000);
    await worksAgain(redis);
  });

  test('a map that never completes (an odd element count) times out the call, resets the connection, and the next reply goes to the next caller', async () => {
    await open({ odd: (s) => s.write('%2\r\n:1\r\n:2\r\n:3\r\n') }, { commandTimeoutMs: 300 });
    const before = server.connections;
    await expect(redis.get('odd')).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    // Without the reset this reply would complete the stale map, and this caller would wait.
    await worksAgain(redis);
    expect(server.connections).toBeGreaterThan(before);
  });

  test('a push frame in the middle of a pipeline\'s replies is not a reply', async () => {
    await open({ b: (s) => s.write(`>3\r\n${bulk('message')}${bulk('ch')}${bulk('hi')}${bulk('b')}`) });
    const before = server.connections;
    const res = await redis.pipeline().get('a').get('b').get('c').exec();
    expect(res).toEqual([[null, 'a'], [null, 'b'], [null, 'c']]);
    expect(await redis.get('d')).toBe('d');
    expect(server.connections).toBe(before);
  });

  test('a string longer than its length prefix fails the call with ERR_CONNECTION and resets the connection', async () => {
    await open({ long: (s) => s.write('$3\r\nabcd\r\n') });
    const err = await redis.get('long').catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CONNECTION', message: expect.stringMatching(/longer than its length prefix/) });
    await worksAgain(redis);
  });

  test('a connection closed in the middle of a frame fails the calls waiting with ERR_CONNECTION, none with another\'s reply', async () => {
    // The frame is cut and nothing more is answered on that socket.
    await open({ cut: (s) => { s.dead = true; s.write('$10\r\nabc'); setTimeout(() => s.destroy(), 20); } });
    const [cut, next] = await Promise.all([redis.get('cut').catch((e) => e), redis.get('next').catch((e) => e)]);
    expect(cut).toMatchObject({ code: 'ERR_CONNECTION' });
    // `next` was written behind `cut` on the same connection: it fails too, or (sent after the
    // reconnect) gets its own value; never the cut frame's.
    expect(next === 'next' || next.code === 'ERR_CONNECTION').toBe(true);
    await worksAgain(redis);
  });
});

describe('a server older than Redis 6', () => {
  /** What `connect()` rejects with on either path (APP_REDIS_NO_UV=1: in a child process). */
  async function refusal(refuse, options) {
    const server = await fakeServer({}, refuse);
    try {
      const here = await RedisService.connect({ host: '127.0.0.1', port: server.port, logger: false, ...options })
        .then(async (r) => { await r.disconnect(); return 'connected'; }, (e) => `${e.code}: ${e.message}`);
      const child = await new Promise((resolve) => {
        const p = require('node:child_process').execFile(process.execPath, ['-e', `
          require(${JSON.stringify(require.resolve('..'))}).RedisService
            .connect({ host: '127.0.0.1', port: ${server.port}, logger: false, ...${JSON.stringify(options)} })
            .then(async (r) => { await r.disconnect(); console.log('connected'); }, (e) => console.log(e.code + ': ' + e.message));
        `], { env: { ...process.env, APP_REDIS_NO_UV: '1' } }, (err, stdout) => resolve(stdout.trim()));
        p.on('error', () => resolve('spawn failed'));
      });
      return [here, child];
    } finally {
      await server.close();
    }
  }

  test('HELLO refused (RESP2 only): connect() rejects saying Redis 6 is needed', async () => {
    for (const r of await refusal(['HELLO'], {})) {
      expect(r).toMatch(/^ERR_CONNECTION: .*unknown command 'HELLO'.*RESP2 only: @app\/redis needs Redis 6 or later/);
    }
  });

  test('CLIENT TRACKING refused: with clientCache on, connect() rejects with the reason; without, it connects', async () => {
    for (const r of await refusal(['CLIENT TRACKING'], { clientCache: true })) {
      expect(r).toBe("ERR_CONNECTION: clientCache needs client tracking (Redis 6 or later, RESP3), and the server refused CLIENT TRACKING ON: ERR unknown subcommand 'TRACKING'");
    }
    expect(await refusal(['CLIENT TRACKING'], {})).toEqual(['connected', 'connected']);
  });
});
