// Bundled by interop.test.mjs (esbuild, IIFE) into the lnc-web page: the real
// @lightninglabs/lnc-web from npm, with its Go half built by interop/build.sh
// (go-wasm-client.wasm: lightning-node-connect's mailbox package). Two helpers for the
// test: pair with the phrase (Noise XX), and after a reload log in with the password
// alone (the stored keys: Noise KK). Both call GetInfo.
import lncWeb from '@lightninglabs/lnc-web';

// lnc-web's dist is a CommonJS/UMD bundle: from an .mjs entry the class is `.default`.
const LNC = lncWeb.default ?? lncWeb;
const WASM = '/go-wasm-client.wasm';

window.lncPair = async ({ phrase, serverHost, password }) => {
  const lnc = new LNC({ serverHost, wasmClientCode: WASM, namespace: 'default', pairingPhrase: phrase });
  window.lnc = lnc;
  await lnc.preload();
  const t0 = performance.now();
  await lnc.connect();
  const info = await lnc.lnd.lightning.getInfo();
  const ms = performance.now() - t0;
  // Setting the password encrypts the phrase and both keys into localStorage.
  lnc.credentials.password = password;
  return { alias: info.alias, ms, stored: Object.keys(JSON.parse(localStorage.getItem('lnc-web:default'))) };
};

window.lncLogin = async ({ password }) => {
  const lnc = new LNC({ wasmClientCode: WASM, namespace: 'default' });
  window.lnc = lnc;
  const paired = lnc.credentials.isPaired;
  lnc.credentials.password = password;
  await lnc.preload();
  const t0 = performance.now();
  await lnc.connect();
  const info = await lnc.lnd.lightning.getInfo();
  return { alias: info.alias, ms: performance.now() - t0, paired };
};

window.lncEntryLoaded = true;
