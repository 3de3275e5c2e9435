/**
 * Credentials in localStorage, sealed by the wasm with the user's password (lnc-client's
 * EncryptedCredentials: scrypt + ChaCha20-Poly1305, the same envelope `lnc` profiles use):
 * the app's key, the node's key, the session macaroon and the relay address. Without a
 * password nothing is persisted (the pairing lives as long as the page).
 */

/** lnc-web's credential store interface. */
export interface CredentialStore {
  password?: string;
  pairingPhrase: string;
  serverHost: string;
  /** Whether this namespace holds credentials from an earlier pairing. */
  readonly isPaired: boolean;
  /** Forgets the stored pairing (and the phrase). */
  clear(memoryOnly?: boolean): void;
}

interface Persisted {
  serverHost: string;
  sealed: string;
}

const PREFIX = 'lnc-rs:';

/** The default store: `localStorage["lnc-rs:<namespace>"]`. */
export class LncCredentialStore implements CredentialStore {
  password?: string;
  pairingPhrase = '';
  serverHost = '';
  /** The sealed credentials (JSON from the wasm), '' before pairing. */
  sealed = '';
  private readonly key: string;

  constructor(namespace = 'default', password?: string) {
    this.key = PREFIX + namespace;
    this.password = password;
    const raw = storage()?.getItem(this.key);
    if (raw) {
      try {
        const p = JSON.parse(raw) as Persisted;
        this.serverHost = p.serverHost ?? '';
        this.sealed = p.sealed ?? '';
      } catch {
        // Not ours or corrupt: treat as unpaired (clear() removes it).
      }
    }
  }

  get isPaired(): boolean {
    return this.sealed !== '';
  }

  /** Called after a successful connect with freshly sealed credentials. */
  savePaired(sealed: string): void {
    if (!sealed) return;
    this.sealed = sealed;
    this.pairingPhrase = '';
    const p: Persisted = { serverHost: this.serverHost, sealed };
    storage()?.setItem(this.key, JSON.stringify(p));
  }

  clear(memoryOnly = false): void {
    if (!memoryOnly) storage()?.removeItem(this.key);
    this.sealed = '';
    this.pairingPhrase = '';
    this.password = undefined;
  }
}

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined;
  }
}
