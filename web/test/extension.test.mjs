// The package in a browser extension's service worker (Manifest V3: no window, no
// localStorage, no DOM): an unpacked test extension, built here into a temp dir, whose
// background module imports the bundled package and wasm as an extension would ship them.
// Debian's chromium (headless, playwright-core) loads it; the test drives the worker with
// worker.evaluate against the same relay, node and lnd-sim as the page tests. The sealed
// credentials go to IndexedDB (chosen automatically) and, in a second namespace, to
// chrome.storage through the pluggable store (README's example); a browser restart on the
// same profile reconnects both with the password alone. No sleeps: every wait is on an
// event with a timeout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, startHarness } from './support.mjs';

const T = 60_000;
let h, host, tmp, ext, profile, ctx;

// The background service worker: the package as a wallet extension would import it, plus
// a chrome.storage store (the README's example) for the pluggable-store test.
const BACKGROUND = `
import LNC, { IndexedDbStore } from './lnc-web/dist/index.js';
self.LNC = LNC;
self.IndexedDbStore = IndexedDbStore;
self.chromeStore = {
  load: async (ns) => (await chrome.storage.local.get('lnc:' + ns))['lnc:' + ns],
  save: (ns, value) => chrome.storage.local.set({ ['lnc:' + ns]: value }),
  remove: (ns) => chrome.storage.local.remove('lnc:' + ns),
};
// Module code runs at once after its imports load: a test waiting for it checks self.LNC
// and otherwise listens for this.
self.dispatchEvent(new Event('lnc-ready'));
`;

/** Builds the unpacked extension: manifest, background module, the package's dist and wasm. */
async function buildExtension(dir) {
  const manifest = {
    manifest_version: 3,
    name: 'lnc-rs service worker test',
    version: '1.0.0',
    background: { service_worker: 'background.js', type: 'module' },
    permissions: ['storage'],
    // The relay in these tests is a local ws:// one; a wallet would list its wss:// relay.
    host_permissions: ['ws://127.0.0.1/*', 'http://127.0.0.1/*'],
    // Compiling the wasm needs 'wasm-unsafe-eval' in an extension's CSP.
    content_security_policy: { extension_pages: "script-src 'self' 'wasm-unsafe-eval'; object-src 'self'" },
  };
  await mkdir(path.join(dir, 'lnc-web/dist'), { recursive: true });
  await mkdir(path.join(dir, 'lnc-web/wasm'), { recursive: true });
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  await writeFile(path.join(dir, 'background.js'), BACKGROUND);
  await cp(path.join(ROOT, 'web/dist/index.js'), path.join(dir, 'lnc-web/dist/index.js'));
  for (const f of ['lnc_wasm.js', 'lnc_wasm_bg.wasm']) {
    await cp(path.join(ROOT, 'web/wasm', f), path.join(dir, 'lnc-web/wasm', f));
  }
}

/** Starts chromium on `profile` with the extension; resolves with its service worker. */
async function launch() {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // Playwright disables extensions unless told not to.
    ignoreDefaultArgs: ['--disable-extensions'],
    args: [
      `--disable-extensions-except=${ext}`,
      `--load-extension=${ext}`,
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-sync',
    ],
  });
  const worker =
    ctx.serviceWorkers().find((w) => w.url().endsWith('/background.js')) ??
    (await ctx.waitForEvent('serviceworker', { predicate: (w) => w.url().endsWith('/background.js'), timeout: T }));
  // The module may still be evaluating its imports when the worker is announced.
  await worker.evaluate(
    (ms) =>
      new Promise((resolve, reject) => {
        if (self.LNC) return resolve();
        self.addEventListener('lnc-ready', resolve);
        setTimeout(() => reject(new Error(`background.js not evaluated within ${ms} ms`)), ms);
      }),
    T,
  );
  return worker;
}

before(async () => {
  h = await startHarness();
  host = `ws://${h.info.mailbox}`;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'lnc-ext-test-'));
  ext = path.join(tmp, 'extension');
  profile = path.join(tmp, 'profile');
  await buildExtension(ext);
});

after(async () => {
  await ctx?.close();
  h?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('extension service worker: pairs, calls, streams; credentials in IndexedDB and chrome.storage', async () => {
  const worker = await launch();
  const r = await worker.evaluate(
    async ({ host, phrase, phrase2 }) => {
      const env = { window: typeof window, document: typeof document, localStorage: typeof localStorage };
      const lnc = new LNC({ serverHost: host, pairingPhrase: phrase, password: 'ext-pw', namespace: 'wallet', connectTimeout: 60_000 });
      self.lnc = lnc;
      const indexedDb = lnc.credentials.store instanceof IndexedDbStore;
      await lnc.connect();
      const info = await lnc.lnd.lightning.getInfo();
      const stored = await new IndexedDbStore().load('wallet');
      // A second client whose sealed credentials go to chrome.storage.
      const other = new LNC({ serverHost: host, pairingPhrase: phrase2, password: 'ext-pw-2', namespace: 'chrome', store: chromeStore, connectTimeout: 60_000 });
      await other.connect();
      const otherAlias = (await other.lnd.lightning.getInfo()).alias;
      other.disconnect();
      const inChrome = (await chrome.storage.local.get('lnc:chrome'))['lnc:chrome'];
      return { env, indexedDb, alias: info.alias, status: lnc.status, stored, otherAlias, inChrome };
    },
    { host, phrase: h.info.phrase, phrase2: h.info.demo_phrase },
  );
  assert.deepEqual(r.env, { window: 'undefined', document: 'undefined', localStorage: 'undefined' });
  assert.equal(r.indexedDb, true, 'IndexedDB chosen without localStorage');
  assert.equal(r.alias, h.info.alias);
  assert.equal(r.status, 'Connected');
  assert.deepEqual(Object.keys(JSON.parse(r.stored)).sort(), ['sealed', 'serverHost']);
  assert.ok(!r.stored.includes(h.info.phrase) && !r.stored.includes('ext-pw'));
  assert.equal(r.otherAlias, h.info.alias);
  assert.ok(JSON.parse(r.inChrome).sealed.length > 100, 'sealed credentials in chrome.storage');
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'test' && e.pattern === 'Xx');
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'demo' && e.pattern === 'Xx');

  // A stream in the worker: invoices added on the node arrive.
  await worker.evaluate(() => {
    self.firstInvoice = new Promise((resolve) => {
      self.sub = lnc.lnd.lightning.subscribeInvoices({}, (inv) => resolve(inv.memo));
    });
  });
  let got = false;
  for (let i = 0; i < 20 && !got; i++) {
    h.send(`invoice ext-${i} ${21 + i}`);
    await h.waitEvent((e) => e.event === 'invoice' && e.memo === `ext-${i}`);
    // The stream may not be registered on the node yet: then that invoice predates it.
    got = await worker.evaluate(
      (ms) => Promise.race([self.firstInvoice.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]),
      2_000,
    );
  }
  assert.ok(got, 'an invoice arrived on the stream in the service worker');
});

test('extension service worker: after a browser restart, reconnects with the password alone (KK)', async () => {
  await ctx.close();
  ctx = undefined;
  const worker = await launch();
  const r = await worker.evaluate(async () => {
    const lnc = new LNC({ password: 'ext-pw', namespace: 'wallet', connectTimeout: 60_000 });
    const pairedAtOnce = lnc.credentials.isPaired;
    await lnc.credentials.load();
    const paired = lnc.credentials.isPaired;
    const tw = performance.now();
    await lnc.preload();
    const wasmMs = performance.now() - tw;
    const t0 = performance.now();
    await lnc.connect();
    const connectMs = performance.now() - t0;
    const info = await lnc.lnd.lightning.getInfo();
    const other = new LNC({ password: 'ext-pw-2', namespace: 'chrome', store: chromeStore, connectTimeout: 60_000 });
    await other.connect();
    const otherAlias = (await other.lnd.lightning.getInfo()).alias;
    let wrong;
    try {
      await new LNC({ password: 'not-the-password', namespace: 'wallet' }).connect();
    } catch (e) {
      wrong = e.message;
    }
    lnc.disconnect();
    other.disconnect();
    return { pairedAtOnce, paired, alias: info.alias, host: lnc.credentials.serverHost, otherAlias, wasmMs, connectMs, wrong };
  });
  console.log(`extension restart -> KK: wasm load ${r.wasmMs.toFixed(0)} ms, connect() ${r.connectMs.toFixed(0)} ms`);
  assert.equal(r.pairedAtOnce, false, 'IndexedDB is read asynchronously');
  assert.equal(r.paired, true);
  assert.equal(r.alias, h.info.alias);
  assert.equal(r.host, host);
  assert.equal(r.otherAlias, h.info.alias);
  assert.match(r.wrong, /wrong password/);
  assert.ok(!r.wrong.includes('not-the-password'));
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'test' && e.pattern === 'Kk');
  await h.waitEvent((e) => e.event === 'connected' && e.session === 'demo' && e.pattern === 'Kk');
});
