// The browser client end to end: Debian chromium (headless, playwright-core) runs web/'s
// package against our relay, node and lnd-sim on 127.0.0.1. No sleeps: every wait is on
// a page condition or a harness event, with a timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT, startHarness, serveStatic, launchChromium, countSockets, runLnc } from './support.mjs';

let h, srv, browser, page, host, lncHome;
const T = 60_000;

before(async () => {
  h = await startHarness();
  host = `ws://${h.info.mailbox}`;
  srv = await serveStatic();
  browser = await launchChromium();
  const ctx = await browser.newContext();
  await ctx.addInitScript(countSockets);
  page = await ctx.newPage();
  page.on('pageerror', (e) => console.log('[pageerror]', e.message));
  await page.goto(`${srv.url}/web/test/page.html`);
  await page.waitForFunction(() => document.title === 'ready', null, { timeout: T });
});

after(async () => {
  if (lncHome) await rm(lncHome, { recursive: true, force: true });
  await browser?.close();
  await srv?.close();
  h?.stop();
});

/** Creates invoices with `make(i)` until `seen()` holds. */
async function invoiceUntilSeen(memo, seen, make = (i) => h.send(`invoice ${memo} ${21 + i}`)) {
  for (let i = 0; i < 20; i++) {
    await make(i);
    try {
      await seen(2_000);
      return;
    } catch {
      // The stream was not registered on the node yet: that invoice predates it.
    }
  }
  throw new Error(`invoice ${memo} never arrived on the stream`);
}

test('pairs by phrase and calls GetInfo', async () => {
  const r = await page.evaluate(
    async ({ host, phrase }) => {
      const lnc = new LNC({ serverHost: host, pairingPhrase: phrase, password: 'pw-1', namespace: 'main', connectTimeout: 60_000 });
      window.lnc = lnc;
      await lnc.connect();
      const info = await lnc.lnd.lightning.getInfo();
      return {
        alias: info.alias,
        pubkey: info.identityPubkey,
        connected: lnc.isConnected,
        status: lnc.status,
        readOnly: lnc.isReadOnly,
        canInvoice: lnc.hasPerms('lnrpc.Lightning.AddInvoice'),
        canUnknown: lnc.hasPerms('lnrpc.Lightning.NoSuchMethod'),
        expiry: lnc.expiry.getTime(),
        paired: lnc.credentials.isPaired,
        stored: localStorage.getItem('lnc-rs:main'),
      };
    },
    { host, phrase: h.info.phrase },
  );
  assert.equal(r.alias, h.info.alias);
  assert.match(r.pubkey, /^0[23][0-9a-f]{64}$/);
  assert.equal(r.connected, true);
  assert.equal(r.status, 'Connected');
  assert.equal(r.readOnly, false);
  assert.equal(r.canInvoice, true);
  assert.equal(r.canUnknown, false);
  assert.ok(r.expiry > Date.now(), 'session expiry from the macaroon');
  assert.equal(r.paired, true);
  const stored = JSON.parse(r.stored);
  assert.ok(stored.sealed.length > 100, 'sealed credentials stored');
  assert.ok(!r.stored.includes(h.info.phrase), 'the phrase is not stored');
  assert.deepEqual(Object.keys(stored).sort(), ['sealed', 'serverHost']);
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'test' && e.pattern === 'Xx');
});

test('subscribeInvoices receives an invoice created with `lnc call` from the CLI', async () => {
  // The CLI pairs with its own session (profile in a private LNC_HOME).
  lncHome = await mkdtemp(path.join(os.tmpdir(), 'lnc-web-test-'));
  const env = { LNC_HOME: lncHome, LNC_PASSWORD: 'cli-pw' };
  const paired = await runLnc(['connect', '--mailbox', h.info.mailbox, '--insecure', '--profile', 'web'], {
    input: h.info.cli_phrase + '\n',
    env,
  });
  assert.equal(paired.code, 0, `lnc connect failed: ${paired.stderr}`);
  await page.evaluate(() => {
    window.invoices = [];
    window.sub = lnc.lnd.lightning.subscribeInvoices(
      {},
      (inv) => window.invoices.push(inv),
      (err) => (window.subError = err.message),
    );
  });
  await invoiceUntilSeen(
    'from-cli',
    (ms) => page.waitForFunction(() => window.invoices.some((i) => i.memo === 'from-cli'), null, { timeout: ms }),
    async (i) => {
      const r = await runLnc(
        ['call', 'lnrpc.Lightning.AddInvoice', JSON.stringify({ memo: 'from-cli', value: String(21 + i) }), '--profile', 'web'],
        { env },
      );
      assert.equal(r.code, 0, `lnc call failed: ${r.stderr}`);
    },
  );
  const inv = await page.evaluate(() => window.invoices.find((i) => i.memo === 'from-cli'));
  assert.ok(Number(inv.value) >= 21, 'int64 fields arrive as strings, as from lnc-web');
  assert.equal(typeof inv.rHash, 'string', 'camelCase keys, base64 bytes');
  assert.equal(await page.evaluate(() => window.subError), undefined);
  // A unary call in the other direction works while the stream is open.
  const added = await page.evaluate(() => lnc.lnd.lightning.addInvoice({ memo: 'from-page', value: '5' }));
  assert.ok(added.paymentRequest.length > 0);
  await page.waitForFunction(() => window.invoices.some((i) => i.memo === 'from-page'), null, { timeout: T });
});

test('reload reconnects with the password alone (KK)', async () => {
  await page.reload();
  await page.waitForFunction(() => document.title === 'ready', null, { timeout: T });
  const r = await page.evaluate(async () => {
    const lnc = new LNC({ password: 'pw-1', namespace: 'main', connectTimeout: 60_000 });
    window.lnc = lnc;
    const paired = lnc.credentials.isPaired;
    const t0 = performance.now();
    await lnc.connect();
    const t1 = performance.now();
    const info = await lnc.lnd.lightning.getInfo();
    const t2 = performance.now();
    return { paired, alias: info.alias, host: lnc.credentials.serverHost, connectMs: t1 - t0, callMs: t2 - t1 };
  });
  console.log(`reload -> KK: connect() ${r.connectMs.toFixed(1)} ms, first call ${r.callMs.toFixed(1)} ms`);
  assert.equal(r.paired, true);
  assert.equal(r.alias, h.info.alias);
  assert.equal(r.host, host);
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'test' && e.pattern === 'Kk');
});

test('a wrong password is refused without touching the network', async () => {
  const r = await page.evaluate(async () => {
    const before = window.__ws.length;
    const lnc = new LNC({ password: 'not-the-password', namespace: 'main' });
    try {
      await lnc.connect();
      return { msg: 'connected', opened: window.__ws.length - before };
    } catch (e) {
      return { msg: e.message, opened: window.__ws.length - before };
    }
  });
  assert.match(r.msg, /wrong password/);
  assert.equal(r.opened, 0);
});

test('several clients per page; disconnect during retries stops every attempt', async () => {
  // A valid phrase no node listens for: the relay keeps answering "stream not found".
  const words = h.info.phrase.split(' ');
  words[0] = words[0] === 'abandon' ? 'ability' : 'abandon';
  await page.evaluate(
    ({ host, phrase }) => {
      window.ws0 = window.__ws.length;
      window.other = new LNC({ serverHost: host, pairingPhrase: phrase, namespace: 'other', connectTimeout: 120_000 });
      window.otherResult = window.other.connect().then(
        () => 'connected',
        (e) => e.message,
      );
    },
    { host, phrase: words.join(' ') },
  );
  await page.waitForFunction(
    () => window.other.status === 'Session Not Found' && window.__ws.length - window.ws0 >= 4,
    null,
    { timeout: T },
  );
  const n = await page.evaluate(() => {
    window.other.disconnect();
    return window.__ws.length;
  });
  assert.match(await page.evaluate(() => window.otherResult), /disconnected/);
  // Every socket of the stopped client closes, and no new one opens.
  await page.waitForFunction(
    () => window.__ws.slice(window.ws0).every((s) => s.readyState === WebSocket.CLOSED),
    null,
    { timeout: 10_000 },
  );
  const opened = await page
    .waitForFunction((n) => window.__ws.length > n, n, { timeout: 5_000 })
    .then(
      () => page.evaluate((n) => window.__ws.slice(n).map((s) => `${s.url} ${s.readyState} main=${lnc.status}`), n),
      () => [],
    );
  assert.deepEqual(opened, [], 'a WebSocket was opened after disconnect()');
  // The first client is unaffected.
  const alias = await page.evaluate(async () => (await lnc.lnd.lightning.getInfo()).alias);
  assert.equal(alias, h.info.alias);
  assert.equal(await page.evaluate(() => window.other.status), 'Not Connected');
});

test('demo page: pairs, shows the alias and invoices, reconnects after a reload', async () => {
  const demo = await browser.newPage();
  await demo.goto(`${srv.url}/examples/web-demo/index.html`);
  await demo.fill('#server', host);
  await demo.fill('#phrase', h.info.demo_phrase);
  await demo.fill('#password', 'demo-pw');
  await demo.click('#connect');
  await demo.waitForFunction((a) => document.querySelector('#alias')?.textContent === a, h.info.alias, { timeout: T });
  await invoiceUntilSeen('demo-invoice', (ms) =>
    demo.waitForSelector('#invoices li:has-text("demo-invoice")', { timeout: ms }),
  );
  const dir = path.join(ROOT, 'web/test-results');
  await mkdir(dir, { recursive: true });
  const shot = path.join(dir, 'demo.png');
  await demo.screenshot({ path: shot, fullPage: true });
  assert.ok((await stat(shot)).size > 1000, 'screenshot written');
  assert.match(await demo.textContent('body'), new RegExp(h.info.alias));
  // Reload: the page offers to reconnect with the password only.
  await demo.reload();
  await demo.waitForSelector('#phrase-row', { state: 'hidden', timeout: T });
  await demo.fill('#password', 'demo-pw');
  await demo.click('#connect');
  await demo.waitForFunction((a) => document.querySelector('#alias')?.textContent === a, h.info.alias, { timeout: T });
  await demo.screenshot({ path: path.join(dir, 'demo-reconnected.png'), fullPage: true });
  await demo.close();
});
