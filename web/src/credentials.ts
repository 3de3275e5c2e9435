/**
 * The credentials of a pairing, sealed by the wasm with the user's password (lnc-client's
 * EncryptedCredentials: scrypt + ChaCha20-Poly1305, the same envelope `lnc` profiles use):
 * the app's key, the node's key, the session macaroon and the relay address. Where the
 * sealed string is kept is a {@link SealedStore}: localStorage in a page, IndexedDB in a
 * browser extension's service worker, a file in Node.js, or the app's own (chrome.storage,
 * a keychain, ...). Without a password nothing is persisted (the pairing lives as long as
 * the `LNC` object).
 */

/** lnc-web's credential store interface. */
export interface CredentialStore {
  password?: string;
  pairingPhrase: string;
  serverHost: string;
  /** Whether this namespace holds credentials from an earlier pairing. */
  readonly isPaired: boolean;
  /** Forgets the stored pairing (and the phrase). */
  clear(memoryOnly?: boolean): void | Promise<void>;
  /** Resolves once the stored pairing has been read (asynchronous stores). */
  load?(): Promise<void>;
}

/**
 * Where the sealed credentials of a namespace are kept: one string per namespace, already
 * encrypted (never the password or the phrase). Methods may return promises; implement it
 * to keep them elsewhere, e.g. in a browser extension:
 *
 * ```js
 * const chromeStore = {
 *   load: async (ns) => (await chrome.storage.local.get(`lnc:${ns}`))[`lnc:${ns}`],
 *   save: (ns, value) => chrome.storage.local.set({ [`lnc:${ns}`]: value }),
 *   remove: (ns) => chrome.storage.local.remove(`lnc:${ns}`),
 * };
 * new LNC({ password, store: chromeStore });
 * ```
 */
export interface SealedStore {
  /** The string saved for `namespace`, or null/undefined if none. */
  load(namespace: string): string | null | undefined | Promise<string | null | undefined>;
  /** Keeps `value` for `namespace`, replacing any earlier one. */
  save(namespace: string, value: string): void | Promise<void>;
  /** Forgets `namespace`'s value (no error if there is none). */
  remove(namespace: string): void | Promise<void>;
}

const PREFIX = 'lnc-rs:';

/** `localStorage["lnc-rs:<namespace>"]` (pages). */
export class LocalStorageStore implements SealedStore {
  constructor(private readonly storage: Storage = globalThis.localStorage) {}
  load(namespace: string): string | null {
    return this.storage.getItem(PREFIX + namespace);
  }
  save(namespace: string, value: string): void {
    this.storage.setItem(PREFIX + namespace, value);
  }
  remove(namespace: string): void {
    this.storage.removeItem(PREFIX + namespace);
  }
}

/** Nothing persisted: the pairing lives as long as the process or page. */
export class MemoryStore implements SealedStore {
  private readonly map = new Map<string, string>();
  load(namespace: string): string | undefined {
    return this.map.get(namespace);
  }
  save(namespace: string, value: string): void {
    this.map.set(namespace, value);
  }
  remove(namespace: string): void {
    this.map.delete(namespace);
  }
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/**
 * IndexedDB database `lnc-rs` (default), object store `credentials`, keyed by namespace:
 * for browser extension service workers (Manifest V3), which have neither localStorage
 * nor a file system.
 */
export class IndexedDbStore implements SealedStore {
  private db?: Promise<IDBDatabase>;
  constructor(private readonly dbName = 'lnc-rs') {}

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open(this.dbName, 1);
      r.onupgradeneeded = () => r.result.createObjectStore('credentials');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new Error(`lnc: IndexedDB database ${this.dbName} is blocked by another connection`));
    }).catch((e) => {
      this.db = undefined;
      throw new Error(`lnc: cannot open IndexedDB database ${this.dbName}: ${(e as Error)?.message ?? e}`);
    });
    return this.db;
  }

  private async run<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const tx = (await this.open()).transaction('credentials', mode);
    const result = request(f(tx.objectStore('credentials')));
    // A failed request also fails the transaction, which is what is reported below.
    result.catch(() => {});
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('lnc: IndexedDB transaction aborted'));
    });
    return result;
  }

  async load(namespace: string): Promise<string | undefined> {
    const v = await this.run('readonly', (s) => s.get(namespace));
    return typeof v === 'string' ? v : undefined;
  }
  async save(namespace: string, value: string): Promise<void> {
    await this.run('readwrite', (s) => s.put(value, namespace));
  }
  async remove(namespace: string): Promise<void> {
    await this.run('readwrite', (s) => s.delete(namespace));
  }
}

/** The store a page or worker gets when none is given: localStorage, else IndexedDB, else memory. */
export function defaultBrowserStore(): SealedStore {
  try {
    const ls = globalThis.localStorage;
    if (ls) return new LocalStorageStore(ls);
  } catch {
    // Access denied (sandboxed iframe, storage disabled): try IndexedDB.
  }
  if (typeof indexedDB !== 'undefined') return new IndexedDbStore();
  return new MemoryStore();
}

interface Persisted {
  serverHost: string;
  sealed: string;
}

function isThenable<T>(v: unknown): v is PromiseLike<T> {
  return typeof (v as PromiseLike<T> | undefined)?.then === 'function';
}

/** The default credential store: the sealed credentials of one namespace in a {@link SealedStore}. */
export class LncCredentialStore implements CredentialStore {
  password?: string;
  pairingPhrase = '';
  /** The sealed credentials (JSON from the wasm), '' before pairing. */
  sealed = '';
  private explicitHost = '';
  private storedHost = '';
  private loaded: Promise<void>;

  constructor(
    readonly namespace = 'default',
    password?: string,
    readonly store: SealedStore = defaultBrowserStore(),
    private readonly defaultHost = '',
  ) {
    this.password = password;
    const raw = store.load(namespace);
    if (isThenable<string | null | undefined>(raw)) {
      // Kept as a rejected promise for load()/connect() to report, never unhandled.
      this.loaded = Promise.resolve(raw).then((r) => this.apply(r));
      this.loaded.catch(() => {});
    } else {
      this.apply(raw);
      this.loaded = Promise.resolve();
    }
  }

  private apply(raw: string | null | undefined): void {
    if (!raw) return;
    try {
      const p = JSON.parse(raw) as Persisted;
      this.storedHost = p.serverHost ?? '';
      // A pairing made while this store was loading wins over the older stored one.
      if (!this.sealed) this.sealed = p.sealed ?? '';
    } catch {
      // Not ours or corrupt: treat as unpaired (clear() removes it).
    }
  }

  /** The relay: as configured, else as stored with the pairing, else the default. */
  get serverHost(): string {
    return this.explicitHost || this.storedHost || this.defaultHost;
  }
  set serverHost(host: string) {
    this.explicitHost = host;
  }

  /** Resolves once the stored pairing has been read (immediately for synchronous stores). */
  load(): Promise<void> {
    return this.loaded;
  }

  get isPaired(): boolean {
    return this.sealed !== '';
  }

  /** Called after a successful connect with freshly sealed credentials. */
  async savePaired(sealed: string): Promise<void> {
    if (!sealed) return;
    this.sealed = sealed;
    this.pairingPhrase = '';
    const p: Persisted = { serverHost: this.serverHost, sealed };
    await this.store.save(this.namespace, JSON.stringify(p));
  }

  clear(memoryOnly = false): void | Promise<void> {
    this.sealed = '';
    this.pairingPhrase = '';
    this.password = undefined;
    this.storedHost = '';
    if (!memoryOnly) return this.store.remove(this.namespace);
  }
}
