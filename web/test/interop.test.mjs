// The browser column of the Go interop matrix: in headless Chromium, the real lnc-web
// (@lightninglabs/lnc-web from npm + its Go half, interop/cmd/go-wasm-client on
// lightning-node-connect's mailbox package) and our own package (web/, the Rust wasm
// core), each against relay {aperture, ours, ours as 2 instances on Redis} × node {Go (mailbox.NewServer, as litd),
// ours (the lnc-node daemon, as `lnc node` runs it)}. Every cell pairs with the phrase
// and calls GetInfo, reads a server stream (SubscribeInvoices), hangs up, reloads the page, logs in with the password alone (Noise
// KK from the stored keys) and calls again. A failure names app, relay, node and step.
//
// No sleeps: every wait is on a page promise or a node event, with a timeout.
// Needs `bash interop/build.sh` (the Go programs and the wasm) and the web_harness example.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { ROOT, GOBIN, TARGET, fields, startGo, startProc, freePort, startHarness, serveStatic, serveFiles, launchChromium } from './support.mjs';

const T = 90_000;
const PASSWORD = 'pw-interop-1';
let browser, ours, lncWeb, tmp;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'lnc-web-interop-'));
  await build({
    entryPoints: [path.join(ROOT, 'web/test/lnc-web-entry.mjs')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    outfile: path.join(tmp, 'app.js'),
    logLevel: 'warning',
  });
  const page = path.join(tmp, 'index.html');
  await (await import('node:fs/promises')).writeFile(
    page,
    // The bundle carries an older wasm_exec.js; Go's own, loaded after it, is the one
    // matching the Go that built the wasm.
    '<!doctype html><meta charset="utf-8"><script src="app.js"></script><script src="wasm_exec.js"></script>',
  );
  lncWeb = await serveFiles({
    '/index.html': page,
    '/app.js': path.join(tmp, 'app.js'),
    '/wasm_exec.js': path.join(GOBIN, 'wasm_exec.js'),
    '/go-wasm-client.wasm': path.join(GOBIN, 'go-wasm-client.wasm'),
  });
  ours = await serveStatic();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await lncWeb?.close();
  await ours?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** aperture (go-relay, TLS with its self-signed certificate). */
async function aperture() {
  const p = startGo('go-relay', ['--listen', '127.0.0.1:0']);
  const ready = await p.waitLine('READY');
  return { addr: fields(ready).addr, stop: () => p.stop() };
}

/** A node: Go (go-lnc-node) or ours (web_harness: the lnc-node daemon + lnd-sim). */
async function startNode(kind, relay) {
  if (kind === 'go') {
    const dir = await mkdtemp(path.join(tmp, 'node-'));
    const p = startGo('go-lnc-node', ['--mailbox', relay.nodeAddr ?? relay.addr, '--mailbox-tls', 'skip-verify', '--state', path.join(dir, 'node.json')]);
    const { phrase } = fields(await p.waitLine('READY'));
    // READY comes before the node's mailboxes exist; `idle` is when it listens.
    await p.waitLine('STATUS status=idle');
    return {
      phrase,
      alias: 'go-lnc-node',
      // go-lnc-node streams `addIndex` invoices, then ends the stream (EOF).
      stream: (page) =>
        page.evaluate(
          () =>
            new Promise((resolve, reject) => {
              const memos = [];
              setTimeout(() => reject(new Error(`stream: ${memos.length} of 3 items in 60 s`)), 60_000);
              window.lnc.lnd.lightning.subscribeInvoices(
                { addIndex: '3' },
                (inv) => memos.push(inv.memo) === 3 && resolve(memos.length),
                (e) => (memos.length >= 3 ? resolve(memos.length) : reject(new Error(`stream ended early: ${e.message}`))),
              );
            }),
        ),
      mark: () => p.lines.length,
      paired: () => p.waitLine('PAIRED'),
      idle: (from) => p.waitLine('STATUS status=idle', { from }),
      stop: () => p.stop(),
    };
  }
  const h = relay.harness ?? (await startHarness({ LNC_HARNESS_RELAY: relay.nodeAddr ?? relay.addr }));
  return {
    phrase: h.info.phrase,
    alias: h.info.alias,
    // lnd-sim's stream is live: invoices made on the node (as `lncli addinvoice` would)
    // arrive on it. One made before the node registered the stream never does, so the
    // next one is made when none arrived within 2 s.
    stream: async (page) => {
      await page.evaluate(() => {
        window.streamed = [];
        window.lnc.lnd.lightning.subscribeInvoices({}, (inv) => window.streamed.push(inv.memo), () => {});
      });
      for (let i = 0; i < 20; i++) {
        h.send(`invoice browser-stream ${21 + i}`);
        try {
          await page.waitForFunction(() => window.streamed.includes('browser-stream'), null, { timeout: 2_000 });
          return 1;
        } catch {
          // not registered yet when that invoice was made
        }
      }
      throw new Error('no invoice arrived on the stream');
    },
    mark: () => h.events.length,
    paired: () => h.waitEvent((e) => e.event === 'paired' && e.session === 'test', T),
    idle: (from) => h.waitEvent((e) => h.events.indexOf(e) >= from && e.event === 'disconnected' && e.session === 'test', T),
    stop: () => relay.harness || h.stop(),
  };
}

/** Our relay: the one inside web_harness, with a self-signed certificate. */
async function ourRelay() {
  const h = await startHarness({ LNC_HARNESS_TLS: '1' });
  return { addr: h.info.mailbox, harness: h, stop: () => h.stop() };
}

/**
 * Our relay scaled out: two `lnc mailbox` instances (TLS, self-signed) sharing a private
 * redis-server. The app uses instance A, the node instance B, so every message crosses
 * Redis.
 */
async function redisRelays() {
  const dir = await mkdtemp(path.join(tmp, 'redis-'));
  const port = await freePort();
  const redis = startProc(process.env.LNC_REDIS_SERVER ?? 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
  ]);
  const lnc = process.env.LNC_BIN ?? path.join(TARGET, 'debug/lnc');
  const started = [];
  const stop = () => {
    for (const p of started) p.stop();
    redis.stop();
  };
  try {
    await redis.waitLine((l) => l.includes('Ready to accept connections'));
    const instance = async (name) => {
      const p = startProc(lnc, [
        'mailbox', '--listen', '127.0.0.1:0', '--metrics-listen', 'off',
        '--redis', `redis://127.0.0.1:${port}`, '--data-dir', path.join(dir, name),
      ]);
      started.push(p);
      const l = await p.waitLine((x) => x.includes('mailbox listening'));
      return /addr=(\S+)/.exec(l)[1];
    };
    const [a, b] = await Promise.all([instance('a'), instance('b')]);
    return { addr: a, nodeAddr: b, stop };
  } catch (e) {
    stop();
    throw e;
  }
}

const RELAYS = {
  go: { label: 'aperture', start: aperture },
  ours: { label: 'ours', start: ourRelay },
  redis: { label: 'ours on Redis (2 instances)', start: redisRelays },
};

const apps = {
  'lnc-web': {
    async open(ctx) {
      const page = await ctx.newPage();
      await page.goto(`${lncWeb.url}/index.html`);
      await page.waitForFunction(() => window.lncEntryLoaded === true, null, { timeout: T });
      return page;
    },
    reopen: async (page) => {
      await page.reload();
      await page.waitForFunction(() => window.lncEntryLoaded === true, null, { timeout: T });
    },
    pair: (page, a) => page.evaluate((a) => window.lncPair(a), a),
    login: (page, a) => page.evaluate((a) => window.lncLogin(a), a),
    host: (addr) => addr,
  },
  ours: {
    async open(ctx) {
      const page = await ctx.newPage();
      await page.goto(`${ours.url}/web/test/page.html`);
      await page.waitForFunction(() => document.title === 'ready', null, { timeout: T });
      return page;
    },
    reopen: async (page) => {
      await page.reload();
      await page.waitForFunction(() => document.title === 'ready', null, { timeout: T });
    },
    pair: (page, a) =>
      page.evaluate(async ({ phrase, serverHost, password }) => {
        const lnc = new LNC({ serverHost, pairingPhrase: phrase, password, namespace: 'interop', connectTimeout: 60_000 });
        window.lnc = lnc;
        const t0 = performance.now();
        await lnc.connect();
        const info = await lnc.lnd.lightning.getInfo();
        return { alias: info.alias, ms: performance.now() - t0 };
      }, a),
    login: (page, a) =>
      page.evaluate(async ({ password }) => {
        const lnc = new LNC({ password, namespace: 'interop', connectTimeout: 60_000 });
        window.lnc = lnc;
        const paired = lnc.credentials.isPaired;
        const t0 = performance.now();
        await lnc.connect();
        const info = await lnc.lnd.lightning.getInfo();
        return { alias: info.alias, ms: performance.now() - t0, paired };
      }, a),
    host: (addr) => `wss://${addr}`,
  },
};

async function cell(appName, relayKind, nodeKind) {
  const name = `app=${appName} relay=${RELAYS[relayKind].label} node=${nodeKind}`;
  let step = 'relay start';
  const relay = await RELAYS[relayKind].start();
  let node, ctx;
  try {
    step = 'node start';
    node = await startNode(nodeKind, relay);
    // The relays' certificates are self-signed.
    ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const app = apps[appName];
    step = 'page load';
    const page = await app.open(ctx);
    page.on('pageerror', (e) => console.log(`[${name}] pageerror: ${e.message}`));
    step = 'pairing + GetInfo';
    const p = await app.pair(page, { phrase: node.phrase, serverHost: app.host(relay.addr), password: PASSWORD });
    assert.equal(p.alias, node.alias);
    await node.paired();
    step = 'server stream';
    assert.ok((await node.stream(page)) >= 1);
    // Hang up, and let the node see it, before the reload: a page that dies mid-connection
    // leaves a Go node waiting for its keepalive (~10 s) before it takes the next one.
    step = 'disconnect';
    const mark = node.mark();
    await page.evaluate(() => window.lnc.disconnect());
    await node.idle(mark);
    step = 'reload + KK login + GetInfo';
    await app.reopen(page);
    const k = await app.login(page, { password: PASSWORD });
    assert.equal(k.alias, node.alias);
    assert.equal(k.paired, true);
    console.log(`BROWSER ${name} pairing_ms=${p.ms.toFixed(0)} kk_ms=${k.ms.toFixed(0)}`);
  } catch (e) {
    throw new Error(`browser interop cell ${name}: step '${step}' failed: ${e.message}`, { cause: e });
  } finally {
    await ctx?.close();
    node?.stop();
    relay.stop();
  }
}

for (const app of ['lnc-web', 'ours']) {
  for (const relay of Object.keys(RELAYS)) {
    for (const node of ['go', 'ours']) {
      test(`${app} app, relay ${RELAYS[relay].label}, ${node === 'go' ? 'Go' : 'our'} node`, { timeout: 4 * T }, () =>
        cell(app, relay, node),
      );
    }
  }
}
