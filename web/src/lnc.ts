/**
 * Lightning Node Connect for web apps, Node.js and browser extensions, on lnc-rs's Rust
 * wasm core: the LNC class both entry points share (src/index.ts for pages and workers,
 * src/node.ts for Node.js), which differ only in where the wasm comes from, which
 * WebSocket is used and where the sealed credentials are kept ({@link Platform}).
 *
 * The API is lnc-web's (`new LNC({...})`, `connect()`, `lnc.lnd.lightning.getInfo()`,
 * ...) so an app ports by changing its import. The typed service surface is
 * @lightninglabs/lnc-core's (LndApi and its generated request/response types); calls go
 * through our wasm client instead of the Go one, and the wasm ships inside this package.
 */
import { LndApi, camelKeysToSnake, snakeKeysToCamel, subscriptionMethods } from '@lightninglabs/lnc-core';
import { WasmClient } from '../wasm/lnc_wasm.js';
import { LncCredentialStore, type CredentialStore, type SealedStore } from './credentials.js';

/** The public mailbox relay lnc-web uses by default. */
export const DEFAULT_SERVER_HOST = 'mailbox.terminal.lightning.today:443';

/** Options, as lnc-web's `LncConfig` (plus `connectTimeout`, `onStatus` and `store`). */
export interface LncConfig {
  /** Separates the stored credentials of several clients (default "default"). */
  namespace?: string;
  /** Mailbox relay `host:port` (wss); `ws://127.0.0.1:port` is allowed for a local relay. */
  serverHost?: string;
  /** The 10-word pairing phrase (first connection only). */
  pairingPhrase?: string;
  /** Encrypts the stored credentials; after pairing, a reload reconnects with it alone. */
  password?: string;
  /**
   * Where the sealed credentials are kept. Default: localStorage in a page, IndexedDB
   * where there is no localStorage (extension service workers), a 0600 file under
   * `$LNC_HOME/web` or `~/.lnc/web` in Node.js.
   */
  store?: SealedStore;
  /** Replaces the whole credential store (lnc-web's option; `store` is usually enough). */
  credentialStore?: CredentialStore;
  /** How long `connect()` waits for the node before it gives up, ms (default 30000). */
  connectTimeout?: number;
  /** Called with every status change ("Not Connected", "Session Not Found", ...). */
  onStatus?: (status: string) => void;
}

/** What differs between the entry points. */
export interface Platform {
  /** Instantiates the wasm (from `source` if given) and readies the WebSocket. */
  loadWasm(source?: unknown): Promise<unknown>;
  /** The store used when the config names none. */
  defaultStore(): SealedStore;
}

let platform: Platform | undefined;
let wasmReady: Promise<unknown> | undefined;
let wasmLoaded = false;

/** Called once by the entry point (index.ts or node.ts). */
export function setPlatform(p: Platform): void {
  platform = p;
}

function thePlatform(): Platform {
  if (!platform) throw new Error('lnc: import the package (its entry point), not src/lnc.ts');
  return platform;
}

/**
 * Loads and instantiates the wasm module once per page or process. In a page or worker
 * the default is `lnc_wasm_bg.wasm` beside the glue (fetched); `moduleOrPath` may be a
 * URL, a Response, bytes or a `WebAssembly.Module`. In Node.js the package's file is read.
 */
export function loadWasm(moduleOrPath?: unknown): Promise<unknown> {
  wasmReady ??= thePlatform()
    .loadWasm(moduleOrPath)
    .then(
      (m: unknown) => {
        wasmLoaded = true;
        return m;
      },
      (e: unknown) => {
        wasmReady = undefined;
        throw e;
      },
    );
  return wasmReady;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** lnc-web's `createRpc`: a proxy turning `service.method(req)` into request/subscribe. */
function createRpc(packageName: string, lnc: LNC): unknown {
  return new Proxy(
    {},
    {
      get(_target, key) {
        const method = `${packageName}.${capitalize(String(key))}`;
        if (subscriptionMethods.includes(method)) {
          return (request: object, onMessage?: (msg: any) => void, onError?: (err: Error) => void) =>
            lnc.subscribe(method, request, onMessage, onError);
        }
        return (request?: object) => lnc.request(method, request);
      },
    },
  );
}

/** A running server-streaming call. */
export interface Subscription {
  /** Ends the stream. */
  cancel(): void;
}

/** One LNC connection (lnc-web's `LNC` class). */
export default class LNC {
  /** The stored credentials (`clear()` forgets the pairing). */
  credentials: CredentialStore;
  /** LND's services, typed by @lightninglabs/lnc-core. */
  lnd: LndApi;
  private client?: WasmClient;
  private _status = 'Not Connected';
  private readonly connectTimeout: number;
  private readonly onStatus?: (status: string) => void;

  constructor(config: LncConfig = {}) {
    const namespace = config.namespace ?? 'default';
    this.credentials =
      config.credentialStore ??
      new LncCredentialStore(namespace, config.password, config.store ?? thePlatform().defaultStore(), DEFAULT_SERVER_HOST);
    if (config.serverHost) this.credentials.serverHost = config.serverHost;
    if (!this.credentials.serverHost) this.credentials.serverHost = DEFAULT_SERVER_HOST;
    if (config.pairingPhrase) this.credentials.pairingPhrase = config.pairingPhrase;
    this.connectTimeout = config.connectTimeout ?? 30_000;
    this.onStatus = config.onStatus;
    this.lnd = new LndApi(createRpc, this);
  }

  /** Downloads and compiles the wasm ahead of `connect()`. */
  async preload(): Promise<void> {
    await loadWasm();
  }

  /** lnc-web compatibility: the wasm runs as soon as it is loaded. */
  async run(): Promise<void> {
    await loadWasm();
  }

  /** Whether the wasm module is loaded. */
  get isReady(): boolean {
    return wasmLoaded;
  }

  /** Whether a tunnel to the node is up. */
  get isConnected(): boolean {
    return this.client?.isConnected() ?? false;
  }

  /** Upstream's status string ("Not Connected", "Session Not Found", "Session In Use", "Connected"). */
  get status(): string {
    return this._status;
  }

  /** When the session's macaroon expires (the epoch if unknown). */
  get expiry(): Date {
    return new Date((this.client?.expiry() ?? 0) * 1000);
  }

  /** Whether the session may only read. */
  get isReadOnly(): boolean {
    return this.client?.isReadOnly() ?? false;
  }

  /** Whether the session's macaroon allows `permission` (`lnrpc.Lightning.GetInfo`). */
  hasPerms(permission: string): boolean {
    return this.client?.hasPerms(permission) ?? false;
  }

  /**
   * Connects: with stored credentials and the password if this namespace was paired
   * (KK, no phrase), else with the pairing phrase. Rejects on a wrong password, an
   * expired session, a failed handshake, or after `connectTimeout` ms without the node.
   */
  async connect(): Promise<void> {
    if (this.isConnected) return;
    const creds = this.credentials;
    await Promise.all([loadWasm(), creds.load?.()]);
    const sealed = creds instanceof LncCredentialStore ? creds.sealed : '';
    if (!sealed && !creds.pairingPhrase) {
      throw new Error(
        `lnc: namespace "${(creds as LncCredentialStore).namespace ?? ''}" has no stored pairing: ` +
          'pass pairingPhrase (and a password to keep the pairing) for the first connection',
      );
    }
    this.client?.disconnect();
    const client = new WasmClient(creds.serverHost);
    this.client = client;
    client.onStatus((s: string) => {
      if (this.client !== client) return;
      this._status = s;
      this.onStatus?.(s);
    });
    // The wasm bounds the wait for the node itself and then says why it gave up
    // (node offline or wrong phrase, session in use, relay unreachable).
    const newSealed: string = await client.connect(
      sealed ? '' : creds.pairingPhrase,
      sealed,
      creds.password ?? '',
      this.connectTimeout,
    );
    if (creds instanceof LncCredentialStore) {
      try {
        await creds.savePaired(newSealed);
      } catch (e) {
        throw new Error(
          `lnc: connected, but the sealed credentials could not be stored (${(e as Error)?.message ?? e}); ` +
            'the connection is up, but a later connect() will need a new pairing phrase',
        );
      }
    }
  }

  /** Closes the connection and stops every retry at once. */
  disconnect(): void {
    this.client?.disconnect();
    this._status = 'Not Connected';
  }

  /** A unary call by full method name (`lnrpc.Lightning.GetInfo`), camelCase JSON in and out. */
  async request<T = any>(method: string, request?: object): Promise<T> {
    if (!this.client) throw new Error('lnc: not connected; call connect() first');
    const json = JSON.stringify(camelKeysToSnake(request ?? {}));
    const res: string = await this.client.invoke(method, json);
    return snakeKeysToCamel(JSON.parse(res)) as T;
  }

  /** A server-streaming call: `onMessage` per message, `onError` if it fails. */
  subscribe<T = any>(
    method: string,
    request?: object,
    onMessage?: (msg: T) => void,
    onError?: (err: Error) => void,
  ): Subscription {
    if (!this.client) throw new Error('lnc: not connected; call connect() first');
    const json = JSON.stringify(camelKeysToSnake(request ?? {}));
    return this.client.subscribe(
      method,
      json,
      (msg: string) => onMessage?.(snakeKeysToCamel(JSON.parse(msg)) as T),
      (err: string | null) => {
        if (err !== null && err !== undefined) onError?.(new Error(err));
      },
    );
  }
}

export { LNC };
