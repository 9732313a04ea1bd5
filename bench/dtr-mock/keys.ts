// Redirect-token keys of the mock origin (docs/protocol.md §2): the signing key
// ring, its JWK Set, rotation, and minting and verifying redirect tokens.
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import type { AccessEntry } from './auth.js';

export type SigningAlg = 'ES256' | 'RS256' | 'EdDSA';
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'RS256', 'EdDSA'];

/** docs/protocol.md §2: at most 20 minutes, 5 by default. */
export const DEFAULT_TTL_SEC = 300;
export const MAX_TTL_SEC = 1200;
const LEEWAY_SEC = 60;

interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

export interface MintOptions {
  sub: string;
  name: string;
  digest: string;
  /** Lifetime in seconds; capped at 1200; negative gives an already expired token. */
  ttlSec?: number;
  alg?: SigningAlg;
  /** Defaults to ['pull']. */
  actions?: string[];
  /** Shifts `nbf` (and `iat`) from now, e.g. +600 for a token not yet valid. */
  notBeforeOffsetSec?: number;
  /** Overrides the ring's issuer. */
  issuer?: string;
}

export type VerifyResult = { ok: true; sub: string; kid: string } | { ok: false; status: 401 | 403; reason: string };

export function isSigningAlg(v: unknown): v is SigningAlg {
  return typeof v === 'string' && (SIGNING_ALGS as readonly string[]).includes(v);
}

async function newKey(alg: SigningAlg): Promise<SigningKey> {
  const pair = alg === 'EdDSA' ? await generateKeyPair('EdDSA', { crv: 'Ed25519' }) : await generateKeyPair(alg);
  const pub = await exportJWK(pair.publicKey);
  const kid = await calculateJwkThumbprint(pub);
  return { kid, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk: { ...pub, kid, alg, use: 'sig' } };
}

export class KeyRing {
  private readonly current = new Map<SigningAlg, SigningKey>();
  private previous: { key: SigningKey; until: number }[] = [];

  constructor(private readonly opts: { alg: SigningAlg; issuer: string; keepOldKeysSec: number }) {}

  get issuer(): string {
    return this.opts.issuer;
  }

  get defaultAlg(): SigningAlg {
    return this.opts.alg;
  }

  async init(): Promise<void> {
    await this.keyFor(this.opts.alg);
  }

  private async keyFor(alg: SigningAlg): Promise<SigningKey> {
    let k = this.current.get(alg);
    if (k === undefined) {
      k = await newKey(alg);
      this.current.set(alg, k);
    }
    return k;
  }

  /** The kid that new tokens of the default algorithm are signed with. */
  currentKid(): string | undefined {
    return this.current.get(this.opts.alg)?.kid;
  }

  /**
   * Replaces every current key with a new one. Old public keys stay published
   * (and accepted) for `keepOldKeysSec`, or go at once with `dropOld`.
   */
  async rotate(opts: { dropOld?: boolean } = {}): Promise<string> {
    const algs = new Set<SigningAlg>([this.opts.alg, ...this.current.keys()]);
    const old = [...this.current.values()];
    const fresh = await Promise.all([...algs].map(newKey));
    this.current.clear();
    for (const k of fresh) this.current.set(k.alg, k);
    const now = Date.now();
    if (opts.dropOld === true) {
      this.previous = [];
    } else {
      this.previous = this.previous
        .filter((p) => p.until > now)
        .concat(old.map((key) => ({ key, until: now + this.opts.keepOldKeysSec * 1000 })));
    }
    return this.current.get(this.opts.alg)?.kid ?? '';
  }

  private published(): SigningKey[] {
    const now = Date.now();
    this.previous = this.previous.filter((p) => p.until > now);
    return [...this.current.values(), ...this.previous.map((p) => p.key)];
  }

  /** The JWK Set of `/.well-known/jwks.json` (RFC 7517 §5). */
  jwks(): { keys: JWK[] } {
    return { keys: this.published().map((k) => ({ ...k.jwk })) };
  }

  async mint(o: MintOptions): Promise<string> {
    const key = await this.keyFor(o.alg ?? this.opts.alg);
    const ttl = Math.min(o.ttlSec ?? DEFAULT_TTL_SEC, MAX_TTL_SEC);
    const now = Math.floor(Date.now() / 1000) + (o.notBeforeOffsetSec ?? 0);
    const access: AccessEntry[] = [{ type: 'repository', name: o.name, actions: o.actions ?? ['pull'] }];
    return new SignJWT({ access, digest: o.digest })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(o.issuer ?? this.opts.issuer)
      .setSubject(o.sub)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttl)
      .sign(key.privateKey);
  }

  /** Checks a redirect token for a GET/HEAD of blob `digest` in repository `name`. */
  async verify(token: string, name: string, digest: string): Promise<VerifyResult> {
    let payload: JWTPayload;
    let kid = '';
    try {
      const keys = this.published();
      const r = await jwtVerify(
        token,
        async (header) => {
          const k = keys.find((x) => x.kid === header.kid && x.alg === header.alg);
          if (k === undefined) throw new Error(`unknown kid ${String(header.kid)}`);
          kid = k.kid;
          return k.publicKey;
        },
        { algorithms: [...SIGNING_ALGS], issuer: this.opts.issuer, clockTolerance: LEEWAY_SEC },
      );
      payload = r.payload;
    } catch (err) {
      return { ok: false, status: 401, reason: err instanceof Error ? err.message : 'invalid token' };
    }
    if (payload['digest'] !== digest) return { ok: false, status: 401, reason: 'token is for another digest' };
    const access = Array.isArray(payload['access']) ? (payload['access'] as AccessEntry[]) : [];
    const entry = access.find((a) => a?.type === 'repository' && a.name === name);
    if (entry === undefined) return { ok: false, status: 401, reason: 'token is for another repository' };
    if (!Array.isArray(entry.actions) || !entry.actions.includes('pull')) {
      return { ok: false, status: 403, reason: 'token does not grant pull' };
    }
    return { ok: true, sub: typeof payload.sub === 'string' ? payload.sub : '', kid };
  }
}
