// Verification of the origin's redirect tokens (docs/protocol.md §2), done locally: no round
// trip to the origin. Every failure is a RegistryError whose message names the check that
// failed (it is logged) and never contains the token: it is a bearer credential.

import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { RegistryError } from '../errors/registry.js';
import { bearerChallenge, type BearerError } from './challenge.js';
import { isJwksError } from './errors.js';
import { isTokenAlg } from './jwk.js';
import type { KeySet } from './keyset.js';
import { type TokenClaims, VerifiedTokenCache } from './token-cache.js';

/** The parts of a blob request the token must match. */
export interface BlobRequest {
  readonly name: string;
  readonly digest: string;
  readonly method: string;
}

export interface VerifiedToken {
  readonly sub: string;
  readonly iss: string;
  /** NumericDate seconds. */
  readonly exp: number;
  /** Forwarded upstream as `Authorization: Bearer` (docs/protocol.md §4). */
  readonly token: string;
}

export interface TokenVerifierOptions {
  keySet: Pick<KeySet, 'getKey' | 'generation'>;
  /** The origin's token endpoint, `<originhost>/auth/token` (challenge.ts realmFor). */
  realm: string;
  service: string;
  /** downstream.options.issuer: when set, `iss` must equal it. */
  issuer?: string | null | undefined;
  /** Clock skew tolerated on nbf/exp, in seconds. Default 60 (docs/protocol.md §2). */
  leewaySec?: number;
  /** Bound on remembered verified tokens. Default 10 000; 0 disables the cache. */
  cacheMaxEntries?: number;
  /** Clock in ms since the epoch (tests). */
  now?: () => number;
}

/** Which check refused a token; also the `detail.check` of the error, for logs and tests. */
export type AuthCheck =
  | 'token'
  | 'header'
  | 'alg'
  | 'kid'
  | 'keys'
  | 'signature'
  | 'exp'
  | 'nbf'
  | 'iss'
  | 'claims'
  | 'digest'
  | 'repository'
  | 'method';

/** Real tokens are under 2 KB; refusing huge ones early bounds the work an attacker can cause. */
const MAX_TOKEN_LENGTH = 8192;
const PULL_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);
/**
 * RFC 7515 §7.1 and §2: three base64url segments, unpadded, with no whitespace or other
 * characters (the signature is empty for alg "none", refused by its own check below). jose's decoder skips whitespace and accepts padding, so without this a
 * genuine token with a space, tab or newline inside its signature verified, and was then
 * forwarded upstream as a header value that undici refuses.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Untrusted header values quoted in messages: short, and JSON-escaped. */
function show(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The repositories an `access` claim names, and those it grants `pull` (distribution token spec, "access"). */
function repositoriesOf(access: unknown[]): Pick<TokenClaims, 'repositories' | 'pulls'> {
  const repositories = new Set<string>();
  const pulls = new Set<string>();
  for (const entry of access) {
    if (!isObject(entry) || entry['type'] !== 'repository' || typeof entry['name'] !== 'string') continue;
    repositories.add(entry['name']);
    const actions = entry['actions'];
    if (Array.isArray(actions) && actions.includes('pull')) pulls.add(entry['name']);
  }
  return { repositories, pulls };
}

export class TokenVerifier {
  readonly #keySet: Pick<KeySet, 'getKey' | 'generation'>;
  readonly #realm: string;
  readonly #service: string;
  readonly #issuer: string | null;
  readonly #leeway: number;
  readonly #now: () => number;
  readonly #cache: VerifiedTokenCache;

  constructor(options: TokenVerifierOptions) {
    this.#keySet = options.keySet;
    this.#realm = options.realm;
    this.#service = options.service;
    this.#issuer = options.issuer ?? null;
    this.#leeway = options.leewaySec ?? 60;
    if (!Number.isFinite(this.#leeway) || this.#leeway < 0) throw new RangeError('leewaySec must be >= 0');
    this.#now = options.now ?? Date.now;
    this.#cache = new VerifiedTokenCache(options.cacheMaxEntries ?? 10_000);
  }

  /** The Bearer challenge a 401 carries: it points the client at the origin's token service. */
  challenge(error?: BearerError): string {
    return bearerChallenge({ realm: this.#realm, service: this.#service, ...(error === undefined ? {} : { error }) });
  }

  /** Verified tokens currently remembered (metrics, tests). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * Accepts the request only if every rule of docs/protocol.md §2 holds; otherwise throws a
   * RegistryError: 401 UNAUTHORIZED with a Bearer challenge, 403 DENIED for a valid token
   * that does not allow this request, 503 UNAVAILABLE when no keys are loaded.
   */
  async verify(token: string | null, req: BlobRequest): Promise<VerifiedToken> {
    if (token === null || token === '') throw this.#unauthorized('token', 'no token in the request', false);
    if (token.length > MAX_TOKEN_LENGTH) throw this.#unauthorized('token', 'malformed token: too long');
    if (!COMPACT_JWS.test(token)) throw this.#unauthorized('header', 'malformed token: not a compact JWS');

    const id = VerifiedTokenCache.id(token);
    const generation = this.#keySet.generation;
    let claims = this.#cache.get(id, generation);
    if (claims === undefined) {
      claims = await this.#verifySignature(token);
      // Remember only if no rotation happened meanwhile: the key used may just have been removed.
      if (this.#keySet.generation === generation) {
        this.#cache.set(id, generation, claims, this.#nowSec() - this.#leeway);
      }
    }

    // On a cache hit these are the only time checks, so they run on every use (RFC 7519 §4.1.4, §4.1.5).
    const nowSec = this.#nowSec();
    if (claims.exp <= nowSec - this.#leeway) {
      this.#cache.delete(id);
      throw this.#unauthorized('exp', 'invalid token: expired (exp)');
    }
    if (claims.nbf !== undefined && claims.nbf > nowSec + this.#leeway) {
      throw this.#unauthorized('nbf', 'invalid token: not yet valid (nbf)');
    }

    // A token is for one blob: another digest means the token was not minted for this URL.
    if (claims.digest !== req.digest) {
      throw this.#unauthorized('digest', 'invalid token: digest claim does not match the requested digest');
    }
    // Likewise a token for another repository: the URL was not the one it was minted for.
    if (!claims.repositories.has(req.name)) {
      throw this.#unauthorized('repository', 'invalid token: it is for another repository');
    }
    // A genuine token for this repository, but without pull: authenticated, not authorized (RFC 6750 §3.1).
    if (!claims.pulls.has(req.name)) {
      throw this.#denied('repository', 'token does not grant pull on the requested repository');
    }
    if (!PULL_METHODS.has(req.method)) {
      throw this.#denied('method', `a pull token allows only GET and HEAD, not ${show(req.method)}`);
    }

    return { sub: claims.sub, iss: claims.iss, exp: claims.exp, token };
  }

  /** Signature and static claims: the part worth remembering. */
  async #verifySignature(token: string): Promise<TokenClaims> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw this.#unauthorized('header', 'malformed token: the JOSE header does not decode');
    }
    // Checked before any key lookup, so `none` and HS* never reach a key (RFC 8725 §2.1, §3.1).
    const alg = header.alg;
    if (!isTokenAlg(alg)) throw this.#unauthorized('alg', `invalid token: alg ${show(alg)} is not accepted`);
    // Explicit typing (RFC 8725 §3.11): a JWS of another kind signed by the same key is no redirect token.
    const typ: unknown = header.typ;
    if (typ !== undefined && (typeof typ !== 'string' || !['jwt', 'application/jwt'].includes(typ.toLowerCase()))) {
      throw this.#unauthorized('header', `invalid token: typ ${show(typ)} is not JWT`);
    }
    const kid = header.kid;
    if (typeof kid !== 'string' || kid === '') throw this.#unauthorized('kid', 'invalid token: header has no kid');

    let key: Awaited<ReturnType<KeySet['getKey']>>;
    try {
      key = await this.#keySet.getKey(kid, alg);
    } catch (err) {
      if (!isJwksError(err)) throw err;
      if (err.code === 'JWKS_NOT_LOADED') {
        throw new RegistryError('UNAVAILABLE', { message: 'no trusted keys are loaded', detail: { check: 'keys' } });
      }
      if (err.code === 'KID_UNKNOWN') throw this.#unauthorized('kid', `invalid token: unknown kid ${show(kid)}`);
      throw this.#unauthorized('alg', `invalid token: ${err.message}`);
    }

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [alg],
        clockTolerance: this.#leeway,
        currentDate: new Date(this.#now()),
        requiredClaims: ['exp'],
        ...(this.#issuer === null ? {} : { issuer: this.#issuer }),
      }));
    } catch (err) {
      throw this.#fromJose(err);
    }

    const { sub, iss, exp, nbf } = payload;
    const digest = payload['digest'];
    const access = payload['access'];
    if (typeof sub !== 'string') throw this.#unauthorized('claims', 'invalid token: sub claim missing or not a string');
    if (typeof iss !== 'string') throw this.#unauthorized('claims', 'invalid token: iss claim missing or not a string');
    if (typeof digest !== 'string')
      throw this.#unauthorized('claims', 'invalid token: digest claim missing or not a string');
    if (!Array.isArray(access))
      throw this.#unauthorized('claims', 'invalid token: access claim missing or not an array');
    // jose has checked that exp is present and both are numbers (RFC 7519 §4.1.4, §4.1.5).
    return { sub, iss, exp: exp as number, nbf, digest, ...repositoriesOf(access) };
  }

  /** jose's error classes to checks. jose messages and payloads are not passed on. */
  #fromJose(err: unknown): RegistryError {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
      return this.#unauthorized('signature', 'invalid token: signature verification failed');
    }
    if (err instanceof joseErrors.JWTExpired) return this.#unauthorized('exp', 'invalid token: expired (exp)');
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      const claim = err.claim;
      if (claim === 'nbf' && err.reason === 'check_failed')
        return this.#unauthorized('nbf', 'invalid token: not yet valid (nbf)');
      if (claim === 'iss') return this.#unauthorized('iss', 'invalid token: iss does not match the configured issuer');
      const why = err.reason === 'missing' ? 'missing' : 'invalid';
      return this.#unauthorized('claims', `invalid token: ${show(claim)} claim ${why}`);
    }
    if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) {
      return this.#unauthorized('header', 'malformed token: not a valid compact JWS/JWT');
    }
    // A key/alg mismatch surfacing from WebCrypto (TypeError), crit extensions we do not
    // understand (RFC 7515 §4.1.11), and anything else: refuse, without echoing the cause.
    return this.#unauthorized('signature', 'invalid token: verification failed');
  }

  #nowSec(): number {
    // NumericDate comparisons in whole seconds, as jose does, so hit and miss paths agree.
    return Math.floor(this.#now() / 1000);
  }

  /** 401 with the Bearer challenge; `invalid` adds error="invalid_token" (RFC 6750 §3.1). */
  #unauthorized(check: AuthCheck, message: string, invalid = true): RegistryError {
    return new RegistryError('UNAUTHORIZED', {
      message,
      detail: { check },
      headers: { 'WWW-Authenticate': this.challenge(invalid ? 'invalid_token' : undefined) },
    });
  }

  /** 403 for a valid token without the right; RFC 6750 §3.1 names it insufficient_scope. */
  #denied(check: AuthCheck, message: string): RegistryError {
    const challenge = this.challenge('insufficient_scope');
    return new RegistryError('DENIED', { message, detail: { check }, headers: { 'WWW-Authenticate': challenge } });
  }
}
