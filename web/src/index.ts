/**
 * The package for pages, web workers and browser extensions' service workers (Manifest
 * V3): the global WebSocket, the wasm fetched from beside its glue, the sealed
 * credentials in localStorage, or in IndexedDB where there is no localStorage.
 */
import init from '../wasm/lnc_wasm.js';
import { defaultBrowserStore } from './credentials.js';
import { LNC, setPlatform } from './lnc.js';

setPlatform({
  async loadWasm(source) {
    try {
      return await init(source === undefined ? undefined : { module_or_path: source as any });
    } catch (e) {
      const msg = (e as Error)?.message ?? String(e);
      const hint = /Content Security Policy|wasm-eval|wasm-unsafe-eval/i.test(msg)
        ? "allow wasm in the Content Security Policy: 'wasm-unsafe-eval' in script-src (in a Manifest V3 extension: content_security_policy.extension_pages)"
        : 'serve wasm/lnc_wasm_bg.wasm beside wasm/lnc_wasm.js, or pass its URL to loadWasm()';
      throw new Error(`lnc: the wasm module could not be loaded (${msg}): ${hint}`);
    }
  },
  defaultStore: defaultBrowserStore,
});

export default LNC;
export { LNC, loadWasm, DEFAULT_SERVER_HOST, type LncConfig, type Subscription } from './lnc.js';
export {
  LncCredentialStore,
  LocalStorageStore,
  IndexedDbStore,
  MemoryStore,
  defaultBrowserStore,
  type CredentialStore,
  type SealedStore,
} from './credentials.js';
export * from '@lightninglabs/lnc-core';
