// The trusted key set: the origin's public signing keys by kid (docs/protocol.md §3).
// Loaded at start, refreshed periodically, and once more (rate-limited) when a token
// names a kid we do not know, so the origin can rotate keys without restarting caches.
// Where the JWK Set comes from (a URL with custom CAs, a file) is the loader's business;
// this module does no HTTP, TLS or file I/O itself.

import type { CryptoKey } from 'jose';
import { type AuthLogger, JwksError, isJwksError, silentLogger } from './errors.js';
import { type ParsedJwkSet, type PublicJwk, type TrustedKey, parseJwkSet } from './jwk.js';

/** Produces the parsed JSON of a JWK Set; see jwks-source.ts. */
export type JwksLoader = () => Promise<unknown>;

export interface KeySetOptions {
  /** Period of background refreshes; 0 disables them. Default 5 minutes. */
  refreshIntervalMs?: number;
  /** At most one unknown-kid refresh per this many ms, so forged kids cannot flood the origin. Default 30 s. */
  unknownKidMinIntervalMs?: number;
  /** Keys older than this are refreshed before they are served to a downstream tier (freshen()). Default 10 s. */
  servedMaxAgeMs?: number;
  /** Clock in ms since the epoch (tests). */
  now?: () => number;
  log?: AuthLogger;
}

export interface JwkSetDocument {
  keys: PublicJwk[];
}

const DEFAULT_REFRESH_MS = 5 * 60_000;
const DEFAULT_UNKNOWN_KID_MS = 30_000;
const DEFAULT_SERVED_MAX_AGE_MS = 10_000;

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number >= 0`);
  return value;
}

/** Identity of a key set's content: same kids with the same public material. */
function fingerprint(keys: ReadonlyMap<string, TrustedKey>): string {
  return JSON.stringify(
    [...keys.values()].map((k) => k.jwk).sort((a, b) => (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0)),
  );
}

/** kids come from untrusted token headers; keep log lines short. */
function logKid(kid: string): string {
  return kid.length > 64 ? `${kid.slice(0, 64)}…` : kid;
}

export class KeySet {
  readonly #loader: JwksLoader;
  readonly #refreshIntervalMs: number;
  readonly #unknownKidMinIntervalMs: number;
  readonly #servedMaxAgeMs: number;
  readonly #now: () => number;
  readonly #log: AuthLogger;

  #keys: ReadonlyMap<string, TrustedKey> = new Map();
  #fingerprint = '';
  #generation = 0;
  #lastLoadedAt: number | null = null;
  #lastUnknownKidRefreshAt = Number.NEGATIVE_INFINITY;
  /** When freshen() last asked the loader, successful or not. */
  #lastFreshenAt = Number.NEGATIVE_INFINITY;
  /** The load under way, shared by every caller that wants fresh keys meanwhile. */
  #inflight: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(loader: JwksLoader, options: KeySetOptions = {}) {
    this.#loader = loader;
    this.#refreshIntervalMs = nonNegative('refreshIntervalMs', options.refreshIntervalMs ?? DEFAULT_REFRESH_MS);
    this.#unknownKidMinIntervalMs = nonNegative(
      'unknownKidMinIntervalMs',
      options.unknownKidMinIntervalMs ?? DEFAULT_UNKNOWN_KID_MS,
    );
    this.#servedMaxAgeMs = nonNegative('servedMaxAgeMs', options.servedMaxAgeMs ?? DEFAULT_SERVED_MAX_AGE_MS);
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? silentLogger;
  }

  /** True once a key set has been loaded; stays true when later refreshes fail. */
  get loaded(): boolean {
    return this.#lastLoadedAt !== null;
  }

  /** When the last successful load finished (ms since the epoch), or null. */
  get lastLoadedAt(): number | null {
    return this.#lastLoadedAt;
  }

  /** Bumped whenever the trusted keys change; holders of derived state (verified tokens) compare it. */
  get generation(): number {
    return this.#generation;
  }

  get size(): number {
    return this.#keys.size;
  }

  /**
   * First load. Rejects with a JwksError (JWKS_LOAD_FAILED or JWKS_INVALID) when the set
   * cannot be fetched or holds no usable key: a cache that trusts no key must not serve.
   */
  async start(): Promise<void> {
    if (this.#closed) throw new Error('KeySet is closed');
    await this.#load();
    this.#schedule();
  }

  /**
   * First keys from a JWK Set document given (the node's, for a process replacing one that
   * died while the upstreams are down), then refreshes from the loader as after start().
   */
  async startFrom(doc: unknown): Promise<void> {
    if (this.#closed) throw new Error('KeySet is closed');
    this.#apply(await parseJwkSet(doc));
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer === null && this.#refreshIntervalMs > 0 && !this.#closed) {
      this.#timer = setInterval(() => void this.#refreshQuietly('periodic'), this.#refreshIntervalMs);
      // A background refresh must never keep the process alive on shutdown.
      this.#timer.unref();
    }
  }

  /** Reloads now (joining a load under way). Rejects on failure; the old keys stay trusted. */
  refresh(): Promise<void> {
    return this.#load();
  }

  /**
   * Refreshes first when the keys are older than `servedMaxAgeMs`; never rejects (the keys
   * held are served). A downstream tier asks for our keys when it meets an unknown kid, so a
   * rotated key reaches the end of a chain in one request instead of one refresh period per
   * tier; a refresh already under way is shared. Anyone may ask for our keys, so a failed
   * refresh is not retried before `servedMaxAgeMs` either: otherwise, while the upstream
   * fails its JWK Set, every request to our key set would become one upstream request.
   */
  async freshen(): Promise<void> {
    const now = this.#now();
    if (now - (this.#lastLoadedAt ?? 0) < this.#servedMaxAgeMs) return;
    if (this.#inflight === null && now - this.#lastFreshenAt < this.#servedMaxAgeMs) return;
    this.#lastFreshenAt = now;
    await this.#load().catch(() => undefined);
  }

  /**
   * The verification key for a token's `kid` and `alg`. An unknown kid triggers at most one
   * refresh per `unknownKidMinIntervalMs`; concurrent callers share the refresh under way.
   * Throws a JwksError: KID_UNKNOWN, ALG_MISMATCH, or JWKS_NOT_LOADED.
   */
  async getKey(kid: string, alg: string): Promise<CryptoKey> {
    let entry = this.#keys.get(kid);
    if (entry === undefined) {
      await this.#refreshForUnknownKid(kid);
      entry = this.#keys.get(kid);
    }
    if (entry === undefined) {
      if (!this.loaded) throw new JwksError('JWKS_NOT_LOADED', 'no trusted key set has been loaded');
      throw new JwksError('KID_UNKNOWN', "no trusted key has the token's kid");
    }
    // The key decides the algorithm, never the token alone (RFC 8725 §3.1): an RSA key must
    // not be used for an ES256 token, nor any key for an algorithm it was not published for.
    if (entry.alg !== alg) throw new JwksError('ALG_MISMATCH', `the key named by kid is for ${entry.alg}, not ${alg}`);
    return entry.key;
  }

  /** The public JWK Set we trust, served at our own /.well-known/jwks.json. No private members. */
  toJSON(): JwkSetDocument {
    return { keys: [...this.#keys.values()].map((k) => ({ ...k.jwk })) };
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  async #refreshForUnknownKid(kid: string): Promise<void> {
    if (this.#closed) return;
    if (this.#inflight !== null) {
      // A load is already under way (periodic or another unknown kid): its result is as fresh
      // as a new one would be, and it costs the origin nothing more.
      await this.#inflight.catch(() => {});
      return;
    }
    const now = this.#now();
    if (now - this.#lastUnknownKidRefreshAt < this.#unknownKidMinIntervalMs) return;
    this.#lastUnknownKidRefreshAt = now;
    this.#log.info({ kid: logKid(kid) }, 'token names an unknown kid; refreshing trusted keys');
    await this.#refreshQuietly('unknown kid');
  }

  async #refreshQuietly(why: string): Promise<void> {
    try {
      await this.#load();
    } catch (err) {
      this.#log.warn(
        { err, reason: why, keys: this.#keys.size },
        'refreshing trusted keys failed; keeping the keys loaded before',
      );
    }
  }

  #load(): Promise<void> {
    if (this.#inflight !== null) return this.#inflight;
    const run = (async () => {
      let doc: unknown;
      try {
        doc = await this.#loader();
      } catch (err) {
        if (isJwksError(err)) throw err;
        throw new JwksError('JWKS_LOAD_FAILED', 'loading the JWK Set failed', { cause: err });
      }
      this.#apply(await parseJwkSet(doc));
    })();
    const shared = run.finally(() => {
      this.#inflight = null;
    });
    this.#inflight = shared;
    return shared;
  }

  #apply(parsed: ParsedJwkSet): void {
    const fp = fingerprint(parsed.keys);
    if (fp !== this.#fingerprint) {
      this.#keys = parsed.keys;
      this.#fingerprint = fp;
      this.#generation += 1;
      this.#log.info({ kids: [...parsed.keys.keys()], generation: this.#generation }, 'trusted keys changed');
      // Logged only on change, so a periodic refresh does not repeat the same warning.
      for (const r of parsed.rejected) {
        this.#log.warn({ kid: r.kid, index: r.index, reason: r.reason }, 'JWK ignored');
      }
    }
    this.#lastLoadedAt = this.#now();
  }
}
