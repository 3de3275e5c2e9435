// A Node.js program using the package as an app would (`import LNC from
// '@lnc-rs/lnc-web'`: the "node" export condition), for node.test.mjs's process-restart
// test. `node node-child.mjs pair|login`; the relay address, the phrase and the password
// come from the environment (LNC_TEST_HOST, LNC_TEST_PHRASE, LNC_TEST_PASSWORD), the
// credentials file from LNC_HOME. Prints one JSON line and exits on its own: after
// disconnect() nothing may keep the process alive.
import LNC from '@lnc-rs/lnc-web';

const [mode] = process.argv.slice(2);
const env = process.env;
const config = { namespace: 'child', password: env.LNC_TEST_PASSWORD, connectTimeout: 60_000 };
if (mode === 'pair') Object.assign(config, { serverHost: env.LNC_TEST_HOST, pairingPhrase: env.LNC_TEST_PHRASE });

const lnc = new LNC(config);
const out = { mode, pairedBefore: lnc.credentials.isPaired, host: lnc.credentials.serverHost };
try {
  const tw = performance.now();
  await lnc.preload();
  out.wasmMs = performance.now() - tw;
  const t0 = performance.now();
  await lnc.connect();
  out.connectMs = performance.now() - t0;
  const info = await lnc.lnd.lightning.getInfo();
  out.callMs = performance.now() - t0 - out.connectMs;
  out.alias = info.alias;
  out.globalWebSocket = typeof globalThis.WebSocket;
} catch (e) {
  out.error = e.message;
  process.exitCode = 1;
}
lnc.disconnect();
console.log(JSON.stringify(out));
