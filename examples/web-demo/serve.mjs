// One-command demo: starts the test harness (relay + lnd-sim + node, all on 127.0.0.1),
// serves the page, and prints the URL and the pairing phrase to paste.
//   cargo build -p lnc-wasm --example web_harness && bash scripts/build-wasm.sh \
//     && (cd web && npm run build) && node examples/web-demo/serve.mjs
import { startHarness, serveStatic } from '../../web/test/support.mjs';

const h = await startHarness();
const srv = await serveStatic();
console.log(`open      ${srv.url}/examples/web-demo/index.html`);
console.log(`mailbox   ws://${h.info.mailbox}`);
console.log(`phrase    ${h.info.demo_phrase}`);
console.log('type "invoice <memo> <sats>" + Enter to create an invoice on the node; Ctrl-C quits');
process.stdin.on('data', (d) => h.send(String(d).trim()));
process.on('SIGINT', () => {
  h.stop();
  srv.close();
  process.exit(0);
});
