/**
 * The package for pages, web workers and browser extensions' service workers (Manifest
 * V3): the global WebSocket, the wasm fetched from beside its glue, the sealed
 * credentials in localStorage, or in IndexedDB where there is no localStorage.
 */
import init from '../wasm/lnc_wasm.js';
import { defaultBrowserStore } from './credentials.js';
import { LNC, setPlatform } from './lnc.js';

setPlatform({
  loadWasm: (source) => init(source === undefined ? undefined : { module_or_path: source as any }),
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
