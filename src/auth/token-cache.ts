// A bounded memory of tokens whose signature already verified, so a token used again (a
// client resuming with Range, parallel range requests) costs no second signature check.
// Only the signature and the static claims are remembered: the clock checks and the
// per-request checks run on every use (see token.ts).

import { hash } from 'node:crypto';

/** What a verified token asserts, reduced to what the per-request checks need. */
export interface TokenClaims {
  readonly sub: string;
  readonly iss: string;
  /** NumericDate seconds (RFC 7519 §2). */
  readonly exp: number;
  readonly nbf: number | undefined;
  readonly digest: string;
  /** Repository names the `access` claim has an entry for. */
  readonly repositories: ReadonlySet<string>;
  /** Repository names whose `access` entry grants `pull`. */
  readonly pulls: ReadonlySet<string>;
}

/** Expired entries dropped per insertion; keeps the sweep O(1) while the map stays near-sorted by exp. */
const SWEEP_PER_INSERT = 8;

export class VerifiedTokenCache {
  readonly #max: number;
  readonly #entries = new Map<string, TokenClaims>();
  /** The key-set generation the entries were verified under; a change empties the cache. */
  #generation: number | null = null;

  constructor(maxEntries = 10_000) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new RangeError('maxEntries must be an integer >= 0');
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Keyed by a SHA-256 of the token, not the token: the map then holds no bearer credential
   * that a heap dump could leak. One-shot `crypto.hash` (Node ≥ 20.12): half the cost of a
   * Hash object per request (1.3 vs 2.5 µs for a 600-character token, measured here).
   */
  static id(token: string): string {
    return hash('sha256', token, 'base64url');
  }

  /** The remembered claims, if the token verified under this key-set generation. */
  get(id: string, generation: number): TokenClaims | undefined {
    this.#sync(generation);
    return this.#entries.get(id);
  }

  /**
   * Remembers a verified token. Insertion order is eviction order: tokens are short-lived
   * and mostly issued in time order, so the oldest insertions are the first to expire.
   * Entries with `exp <= expCutoff` (now minus leeway) are expired and swept from the front.
   */
  set(id: string, generation: number, claims: TokenClaims, expCutoff: number): void {
    if (this.#max === 0) return;
    this.#sync(generation);
    this.#entries.delete(id);
    let swept = 0;
    for (const [oldId, old] of this.#entries) {
      if (swept >= SWEEP_PER_INSERT || old.exp > expCutoff) break;
      this.#entries.delete(oldId);
      swept += 1;
    }
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(id, claims);
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }

  clear(): void {
    this.#entries.clear();
  }

  /**
   * A rotation may have removed the key an entry was verified with (RFC 7517 §5: the set is
   * the whole truth), so entries from another generation are dropped, all at once.
   */
  #sync(generation: number): void {
    if (generation === this.#generation) return;
    this.#entries.clear();
    this.#generation = generation;
  }
}
