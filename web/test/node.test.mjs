// The package in Node.js (20+), end to end against the same relay, node and lnd-sim as
// the browser tests: imported by its name (the "node" export condition: wasm read from
// the package, the `ws` package's WebSocket on Node 20, credentials in a 0600 file).
// No sleeps: every wait is on a harness event, a callback or a process exit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startHarness } from './support.mjs';

let h, host, home, LNC, lnc;
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

before(async () => {
  h = await startHarness();
  host = `ws://${h.info.mailbox}`;
  home = await mkdtemp(path.join(os.tmpdir(), 'lnc-node-test-'));
  // The default FileStore reads LNC_HOME when an LNC is created.
  process.env.LNC_HOME = path.join(home, 'in-process');
  ({ default: LNC } = await import('@lnc-rs/lnc-web'));
});

after(async () => {
  lnc?.disconnect();
  h?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

/** `p`, or a rejection saying `what()` once `ms` have passed. */
function within(p, ms, what) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Invoices seen on a stream, and a wait for one whose memo matches. */
function invoiceWatch() {
  const seen = [];
  const waiters = new Set();
  return {
    seen,
    onMessage(inv) {
      seen.push(inv);
      for (const w of [...waiters]) w(inv);
    },
    /** Resolves with the first invoice (past or future) whose memo `pred` accepts. */
    wait(pred, ms) {
      const past = seen.find((i) => pred(i.memo));
      if (past) return Promise.resolve(past);
      return new Promise((resolve, reject) => {
        const w = (inv) => {
          if (!pred(inv.memo)) return;
          waiters.delete(w);
          clearTimeout(timer);
          resolve(inv);
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching invoice on the stream within ${ms} ms`));
        }, ms);
        waiters.add(w);
      });
    },
  };
}

test('Node.js: pairs by phrase, calls GetInfo, keeps the sealed credentials in a 0600 file', async () => {
  lnc = new LNC({ serverHost: host, pairingPhrase: h.info.phrase, password: 'node-pw', namespace: 'node', connectTimeout: 60_000 });
  assert.equal(lnc.credentials.isPaired, false);
  await lnc.connect();
  const info = await lnc.lnd.lightning.getInfo();
  assert.equal(info.alias, h.info.alias);
  assert.match(info.identityPubkey, /^0[23][0-9a-f]{64}$/);
  assert.equal(lnc.isConnected, true);
  assert.equal(lnc.status, 'Connected');
  assert.equal(lnc.hasPerms('lnrpc.Lightning.AddInvoice'), true);
  if (NODE_MAJOR < 22) assert.equal(typeof globalThis.WebSocket, 'undefined', 'no global WebSocket was installed');

  const file = path.join(process.env.LNC_HOME, 'web', 'node.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600, 'credentials file is 0600');
  assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700, 'its directory is 0700');
  const raw = await readFile(file, 'utf8');
  assert.deepEqual(Object.keys(JSON.parse(raw)).sort(), ['sealed', 'serverHost']);
  assert.equal(JSON.parse(raw).serverHost, host);
  assert.ok(!raw.includes(h.info.phrase) && !raw.includes('node-pw'), 'neither phrase nor password stored');
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'test' && e.pattern === 'Xx');
});

test('Node.js: subscribeInvoices streams invoices; unary calls work beside the stream', async () => {
  const watch = invoiceWatch();
  let subError;
  const sub = lnc.lnd.lightning.subscribeInvoices({}, watch.onMessage, (err) => (subError = err.message));
  // The stream may not be registered on the node yet when the first invoice is added:
  // add invoices (each confirmed by the harness) until one arrives on the stream.
  let inv;
  for (let i = 0; i < 20 && !inv; i++) {
    h.send(`invoice node-stream-${i} ${21 + i}`);
    await h.waitEvent((e) => e.event === 'invoice' && e.memo === `node-stream-${i}`);
    inv = await watch.wait((m) => m.startsWith('node-stream-'), 2_000).catch(() => undefined);
  }
  assert.ok(inv, 'an invoice added on the node arrived on the stream');
  assert.ok(Number(inv.value) >= 21, 'int64 fields arrive as strings, as from lnc-web');
  assert.equal(typeof inv.rHash, 'string', 'camelCase keys, base64 bytes');
  const added = await lnc.lnd.lightning.addInvoice({ memo: 'node-unary', value: '5' });
  assert.ok(added.paymentRequest.length > 0);
  await watch.wait((m) => m === 'node-unary', 60_000);
  sub.cancel();
  assert.equal(subError, undefined);
  // lnc-web's API carries the lnrpc payment calls LND v0.20 deprecates but still serves.
  const paid = await lnc.lnd.lightning.sendPaymentSync({ paymentRequest: added.paymentRequest });
  assert.equal(paid.paymentError, '');
  assert.equal(paid.paymentHash, added.rHash, 'bytes as base64, as from lnc-web');
});

/** Runs node-child.mjs `mode`; resolves with its JSON line and exit code once it exits on its own. */
function child(mode, env, ms = 120_000) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(import.meta.dirname, 'node-child.mjs'), mode], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill();
      reject(new Error(`node-child ${mode} still running after ${ms} ms (output: ${stdout} ${stderr})`));
    }, ms);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      try {
        resolve({ code, out: JSON.parse(line), stderr });
      } catch {
        reject(new Error(`node-child ${mode} exited ${code} without a result: ${stdout} ${stderr}`));
      }
    });
  });
}

test('a second Node.js process reconnects with the password alone (KK)', async () => {
  const env = { LNC_HOME: path.join(home, 'children'), LNC_TEST_PASSWORD: 'child-pw' };
  const t0 = performance.now();
  const a = await child('pair', { ...env, LNC_TEST_HOST: host, LNC_TEST_PHRASE: h.info.cli_phrase });
  const pairMs = performance.now() - t0;
  assert.equal(a.code, 0, `pairing process failed: ${JSON.stringify(a.out)} ${a.stderr}`);
  assert.equal(a.out.alias, h.info.alias);
  assert.equal(a.out.pairedBefore, false);
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'cli' && e.pattern === 'Xx');
  const file = path.join(env.LNC_HOME, 'web', 'child.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  const t1 = performance.now();
  const b = await child('login', env);
  const loginMs = performance.now() - t1;
  assert.equal(b.code, 0, `login process failed: ${JSON.stringify(b.out)} ${b.stderr}`);
  assert.equal(b.out.pairedBefore, true, 'the second process found the pairing on disk');
  assert.equal(b.out.host, host, 'the relay address came from the file');
  assert.equal(b.out.alias, h.info.alias);
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'cli' && e.pattern === 'Kk');
  // Node >= 22 has a global WebSocket (undici's), used instead of ws: Node 20 has the same
  // behind --experimental-websocket.
  if (NODE_MAJOR < 22) {
    const c = await child('login', { ...env, NODE_OPTIONS: '--experimental-websocket' });
    assert.equal(c.code, 0, `login with the global WebSocket failed: ${JSON.stringify(c.out)} ${c.stderr}`);
    assert.equal(c.out.globalWebSocket, 'function');
    assert.equal(c.out.alias, h.info.alias);
  }
  console.log(
    `node processes: pair (XX) ${pairMs.toFixed(0)} ms whole process, connect() ${a.out.connectMs.toFixed(0)} ms; ` +
      `login (KK) ${loginMs.toFixed(0)} ms whole process, wasm load ${b.out.wasmMs.toFixed(0)} ms, ` +
      `connect() ${b.out.connectMs.toFixed(0)} ms, first call ${b.out.callMs.toFixed(1)} ms`,
  );
});

test('Node.js: a wrong password is refused with a clear error that does not echo it', async () => {
  const r = await child('login', { LNC_HOME: path.join(home, 'children'), LNC_TEST_PASSWORD: 'not-the-password' });
  assert.equal(r.code, 1);
  assert.match(r.out.error, /wrong password/);
  assert.ok(!r.out.error.includes('not-the-password') && !r.stderr.includes('not-the-password'));
  // The same in this process, on the namespace paired above.
  const other = new LNC({ password: 'also-wrong', namespace: 'node' });
  assert.equal(other.credentials.isPaired, true);
  await assert.rejects(other.connect(), (e) => /wrong password/.test(e.message) && !e.message.includes('also-wrong'));
});

test('the browser bundle carries no Node.js module; the Node one loads ws lazily', async () => {
  const browser = await readFile(path.join(import.meta.dirname, '../dist/index.js'), 'utf8');
  assert.doesNotMatch(browser, /from\s*["'](ws|node:[a-z/]+)["']|import\(\s*["']ws["']\s*\)|\brequire\(/);
  const node = await readFile(path.join(import.meta.dirname, '../dist/node.js'), 'utf8');
  assert.match(node, /import\(\s*["']ws["']\s*\)/, 'ws is a dynamic import');
  assert.doesNotMatch(node, /from\s*["']ws["']/, 'ws is not a static import');
});

test('Node.js: no pairing and no phrase: connect() says what to pass', async () => {
  const fresh = new LNC({ namespace: 'never-paired', password: 'x' });
  await assert.rejects(fresh.connect(), /has no stored pairing: pass pairingPhrase/);
  assert.throws(() => new LNC({ namespace: '../escape' }), /cannot name a credentials file/);
});

test('Node.js: the relay drops every stream and comes back empty: the client recovers by itself, its status as lnc-web reports it', async () => {
  // The first test's client holds session "test": free it, then reconnect with a status hook.
  lnc.disconnect();
  await h.waitEvent((e) => e.event === 'disconnected' && e.session === 'test', 60_000);
  const statuses = [];
  let onChange = () => {};
  const app = new LNC({
    serverHost: host,
    password: 'node-pw',
    namespace: 'node',
    onStatus: (s) => {
      statuses.push(s);
      onChange();
    },
  });
  await app.connect();
  try {
    const mark = statuses.length;
    // "Not Connected" while the streams are gone (then "Session Not Found" until the node's
    // stream is back on the empty relay), then "Connected" again: what lnc-web's Go client
    // reports on a drop (lightning-node-connect's ClientConn).
    const droppedAndBack = new Promise((resolve) => {
      onChange = () => {
        const after = statuses.slice(mark);
        const i = after.indexOf('Not Connected');
        if (i >= 0 && after.indexOf('Connected', i) > i) resolve();
      };
    });
    const eventsBefore = h.events.length;
    h.send('restart-relay');
    await h.waitEvent((e) => e.event === 'relay-restarted', 60_000);
    const seen = () => statuses.slice(mark).join(' -> ');
    await within(droppedAndBack, 60_000, () => `no "Not Connected" then "Connected" after the relay restart; statuses: ${seen()}`);
    console.log(`relay restart: statuses ${seen()}`);
    // Both sides reopened their mailbox streams; the tunnel above (go-back-N, Noise) carries
    // on. Should the outage outlast go-back-N's keepalive on a loaded machine, the client
    // makes a new KK handshake by itself, and a call made meanwhile fails with "retry the
    // call": an app retries it after the next handshake, and so does this test.
    let info;
    for (let attempt = 1; !info; attempt++) {
      try {
        info = await app.lnd.lightning.getInfo();
      } catch (e) {
        if (attempt >= 3 || !/retry the call/.test(e.message)) throw e;
        console.log(`relay restart: call ${attempt} failed (${e.message}); waiting for the next handshake`);
        const handshakeAfterRestart = (ev) =>
          h.events.indexOf(ev) >= eventsBefore && ev.event === 'connected' && ev.session === 'test' && ev.pattern === 'Kk';
        await h.waitEvent(handshakeAfterRestart, 60_000);
      }
    }
    assert.equal(info.alias, h.info.alias);
    assert.equal(app.status, 'Connected');
  } finally {
    // A client left connected keeps retrying, which would keep this file's process alive.
    app.disconnect();
  }
});
