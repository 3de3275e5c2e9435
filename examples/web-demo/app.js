// The demo: pair by phrase, show the node, list invoices as they arrive; after a reload,
// reconnect with the password alone.
import LNC from '../../web/dist/index.js';

const $ = (id) => document.getElementById(id);
const NAMESPACE = 'demo';
let lnc = new LNC({ namespace: NAMESPACE });

function showPairedForm() {
  const paired = lnc.credentials.isPaired;
  $('phrase-row').hidden = paired;
  $('server-row').hidden = paired;
  $('forget').hidden = !paired;
  $('connect').textContent = paired ? 'Reconnect' : 'Connect';
}
showPairedForm();

$('forget').onclick = () => {
  lnc.disconnect();
  lnc.credentials.clear();
  lnc = new LNC({ namespace: NAMESPACE });
  showPairedForm();
};

$('form').onsubmit = async (ev) => {
  ev.preventDefault();
  $('error').textContent = '';
  const paired = lnc.credentials.isPaired;
  lnc = new LNC({
    namespace: NAMESPACE,
    password: $('password').value,
    ...(paired ? {} : { serverHost: $('server').value.trim(), pairingPhrase: $('phrase').value.trim() }),
    onStatus: (s) => ($('status').textContent = s),
  });
  try {
    await lnc.connect();
    showPairedForm();
    const info = await lnc.lnd.lightning.getInfo();
    $('alias').textContent = info.alias;
    $('pubkey').textContent = info.identityPubkey;
    $('expiry').textContent = lnc.expiry.toLocaleString();
    $('readonly').textContent = lnc.isReadOnly ? ' (read-only)' : '';
    $('node').hidden = false;
    lnc.lnd.lightning.subscribeInvoices(
      {},
      (inv) => {
        const li = document.createElement('li');
        li.textContent = `${inv.memo || '(no memo)'} — ${inv.value} sat — ${inv.state}`;
        $('invoices').prepend(li);
      },
      (err) => ($('error').textContent = err.message),
    );
  } catch (e) {
    $('error').textContent = e.message;
  }
};
