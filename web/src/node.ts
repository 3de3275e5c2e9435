/**
 * The package for Node.js (>= 20), chosen by the `node` export condition: the wasm read
 * from the package's file, the `ws` package's WebSocket where Node has no global one
 * (Node 20; loaded only then), and the sealed credentials in a file readable by the user
 * alone: `$LNC_HOME/web/<namespace>.json`, else `~/.lnc/web/<namespace>.json` (the `lnc`
 * CLI keeps its profiles beside, in `profiles/`).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import init, { setWebSocketImpl } from '../wasm/lnc_wasm.js';
import type { SealedStore } from './credentials.js';
import { LNC, setPlatform } from './lnc.js';

const NAMESPACE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** The directory FileStore uses by default: `$LNC_HOME/web`, else `~/.lnc/web`. */
export function defaultCredentialsDir(): string {
  const home = process.env.LNC_HOME;
  if (home) return path.join(home, 'web');
  const user = homedir();
  if (!user) throw new Error('lnc: no home directory to keep credentials in: set LNC_HOME, or pass a store');
  return path.join(user, '.lnc', 'web');
}

/**
 * One JSON file per namespace, `<dir>/<namespace>.json`, mode 0600 in a 0700 directory,
 * replaced atomically (written beside, then renamed). It holds what localStorage holds in
 * a page: the relay address and the credentials sealed under the password.
 */
export class FileStore implements SealedStore {
  readonly dir: string;
  constructor(dir?: string) {
    this.dir = dir ?? defaultCredentialsDir();
  }

  /** The file of `namespace`. */
  file(namespace: string): string {
    if (!NAMESPACE.test(namespace) || namespace.includes('..')) {
      throw new Error(
        `lnc: namespace ${JSON.stringify(namespace)} cannot name a credentials file: use letters, digits, '.', '_' and '-'`,
      );
    }
    return path.join(this.dir, `${namespace}.json`);
  }

  load(namespace: string): string | undefined {
    const file = this.file(namespace);
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`lnc: cannot read the stored credentials ${file}: ${(e as Error).message}`);
    }
  }

  save(namespace: string, value: string): void {
    const file = this.file(namespace);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileSync(tmp, value, { mode: 0o600 });
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new Error(
        `lnc: cannot write ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): ` +
          'set LNC_HOME to a writable directory, or pass a store',
      );
    }
  }

  remove(namespace: string): void {
    rmSync(this.file(namespace), { force: true });
  }
}

/** The ws package's WebSocket, which never throws an unhandled 'error' event. */
async function nodeWebSocket(): Promise<unknown> {
  let WS: typeof import('ws').WebSocket;
  try {
    WS = (await import('ws')).WebSocket;
  } catch {
    throw new Error("lnc: this Node.js has no WebSocket and the 'ws' package is missing: npm install ws");
  }
  // The wasm detaches its handlers before closing a socket; ws emits 'error' when a socket
  // still connecting is closed, which would crash the process without a listener.
  return class NodeWebSocket extends WS {
    constructor(url: string) {
      super(url);
      this.on('error', () => {});
    }
  };
}

setPlatform({
  async loadWasm(source) {
    const ws = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? undefined : nodeWebSocket();
    // fetch() cannot read files: read the module beside the glue, or the one named by a
    // path or file: URL; bytes, a Response or a WebAssembly.Module go to the glue as given.
    source ??= new URL('../wasm/lnc_wasm_bg.wasm', import.meta.url);
    if (source instanceof URL && source.protocol === 'file:') source = fileURLToPath(source);
    else if (typeof source === 'string' && source.startsWith('file:')) source = fileURLToPath(source);
    if (typeof source === 'string' && !/^https?:/.test(source)) {
      const file = source;
      source = await readFile(file).catch((e: NodeJS.ErrnoException) => {
        throw new Error(`lnc: cannot read the wasm module ${file} (${e.code ?? e.message}): pass its path or bytes to loadWasm()`);
      });
    }
    const m = await init({ module_or_path: source as any });
    if (ws) setWebSocketImpl((await ws) as Function);
    return m;
  },
  defaultStore: () => new FileStore(),
});

export default LNC;
export { LNC, loadWasm, DEFAULT_SERVER_HOST, type LncConfig, type Subscription } from './lnc.js';
export {
  LncCredentialStore,
  IndexedDbStore,
  MemoryStore,
  type CredentialStore,
  type SealedStore,
} from './credentials.js';
export * from '@lightninglabs/lnc-core';
