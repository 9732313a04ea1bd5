// Turns a JWK Set document (RFC 7517 §5) into the verification keys the cache trusts.
// Validation is an allow-list: a key is kept only if it can verify one of the token
// algorithms docs/protocol.md §2 accepts. Each kept key is re-built from its public members
// alone, so a private member published by mistake (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`,
// RFC 7518 §6.2.2/§6.3.2) is never imported, kept, or served again at our JWKS endpoint.

import { importJWK, type CryptoKey } from 'jose';
import { JwksError } from './errors.js';
import { messageOf } from '../errors/inspect.js';

/** The JWS algorithms a redirect token may use (docs/protocol.md §2). */
export const TOKEN_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export type TokenAlg = (typeof TOKEN_ALGS)[number];

export function isTokenAlg(alg: unknown): alg is TokenAlg {
  return typeof alg === 'string' && (TOKEN_ALGS as readonly string[]).includes(alg);
}

/** A public JWK as we re-serve it: only the members needed to verify. */
export type PublicJwk =
  | { kty: 'RSA'; kid: string; use: 'sig'; alg: 'RS256'; n: string; e: string }
  | { kty: 'EC'; kid: string; use: 'sig'; alg: 'ES256'; crv: 'P-256'; x: string; y: string }
  | { kty: 'OKP'; kid: string; use: 'sig'; alg: 'EdDSA'; crv: 'Ed25519'; x: string };

export interface TrustedKey {
  readonly kid: string;
  readonly alg: TokenAlg;
  readonly key: CryptoKey;
  readonly jwk: Readonly<PublicJwk>;
}

export interface RejectedJwk {
  readonly index: number;
  readonly kid: string | null;
  readonly reason: string;
}

export interface ParsedJwkSet {
  readonly keys: ReadonlyMap<string, TrustedKey>;
  readonly rejected: readonly RejectedJwk[];
}

/** A sane bound: origins publish a handful of keys; thousands would only cost us memory. */
const MAX_KEYS = 100;
/** RSASSA-PKCS1-v1_5 keys below 2048 bits are too weak (RFC 7518 §3.3). */
const MIN_RSA_BITS = 2048;

type Candidate = { ok: true; jwk: PublicJwk } | { ok: false; reason: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** The public JWK for one member of `keys`, or why it cannot verify our tokens. */
function toPublicJwk(raw: Record<string, unknown>, kid: string): Candidate {
  // RFC 7517 §4.2: `use` other than "sig" (e.g. "enc") means the key is not for signatures.
  if (raw['use'] !== undefined && raw['use'] !== 'sig') return { ok: false, reason: 'use is not "sig"' };
  // RFC 7517 §4.3: when key_ops is present it must allow "verify".
  const ops = raw['key_ops'];
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) {
    return { ok: false, reason: 'key_ops does not include "verify"' };
  }
  const alg = raw['alg'];
  switch (raw['kty']) {
    case 'RSA':
      if (alg !== undefined && alg !== 'RS256') return { ok: false, reason: 'RSA key alg is not RS256' };
      if (!str(raw['n']) || !str(raw['e'])) return { ok: false, reason: 'RSA key lacks n or e' };
      return { ok: true, jwk: { kty: 'RSA', kid, use: 'sig', alg: 'RS256', n: raw['n'], e: raw['e'] } };
    case 'EC':
      if (raw['crv'] !== 'P-256') return { ok: false, reason: 'EC key curve is not P-256' };
      if (alg !== undefined && alg !== 'ES256') return { ok: false, reason: 'EC key alg is not ES256' };
      if (!str(raw['x']) || !str(raw['y'])) return { ok: false, reason: 'EC key lacks x or y' };
      return { ok: true, jwk: { kty: 'EC', kid, use: 'sig', alg: 'ES256', crv: 'P-256', x: raw['x'], y: raw['y'] } };
    case 'OKP':
      if (raw['crv'] !== 'Ed25519') return { ok: false, reason: 'OKP key curve is not Ed25519' };
      if (alg !== undefined && alg !== 'EdDSA') return { ok: false, reason: 'OKP key alg is not EdDSA' };
      if (!str(raw['x'])) return { ok: false, reason: 'OKP key lacks x' };
      return { ok: true, jwk: { kty: 'OKP', kid, use: 'sig', alg: 'EdDSA', crv: 'Ed25519', x: raw['x'] } };
    default:
      return { ok: false, reason: 'kty is not RSA, EC or OKP' };
  }
}

async function importPublic(jwk: PublicJwk): Promise<CryptoKey> {
  const key = await importJWK(jwk, jwk.alg);
  // importJWK returns raw bytes only for kty "oct", which toPublicJwk never produces.
  if (key instanceof Uint8Array) throw new TypeError('symmetric key');
  if (jwk.kty === 'RSA') {
    const bits = (key.algorithm as { modulusLength?: unknown }).modulusLength;
    if (typeof bits !== 'number' || bits < MIN_RSA_BITS) throw new TypeError(`RSA modulus below ${MIN_RSA_BITS} bits`);
  }
  return key;
}

/**
 * Validates and imports a JWK Set. Unusable members are skipped and reported in `rejected`
 * (an origin may publish encryption keys alongside); a set with no usable key is an error.
 */
export async function parseJwkSet(doc: unknown): Promise<ParsedJwkSet> {
  if (!isObject(doc) || !Array.isArray(doc['keys'])) {
    throw new JwksError('JWKS_INVALID', 'not a JWK Set: expected an object with a "keys" array (RFC 7517 §5)');
  }
  const members: unknown[] = doc['keys'];
  if (members.length > MAX_KEYS) {
    throw new JwksError('JWKS_INVALID', `JWK Set has ${members.length} keys, more than the ${MAX_KEYS} accepted`);
  }

  const rejected: RejectedJwk[] = [];
  const byKid = new Map<string, TrustedKey>();
  const duplicated = new Set<string>();
  for (const [index, raw] of members.entries()) {
    if (!isObject(raw)) {
      rejected.push({ index, kid: null, reason: 'not a JSON object' });
      continue;
    }
    const kid = raw['kid'];
    // Tokens select their key by kid (RFC 7515 §4.1.4), so a key without one is unreachable.
    if (!str(kid)) {
      rejected.push({ index, kid: null, reason: 'missing kid' });
      continue;
    }
    const candidate = toPublicJwk(raw, kid);
    if (!candidate.ok) {
      rejected.push({ index, kid, reason: candidate.reason });
      continue;
    }
    let key: CryptoKey;
    try {
      key = await importPublic(candidate.jwk);
    } catch (err) {
      rejected.push({ index, kid, reason: `import failed: ${messageOf(err)}` });
      continue;
    }
    if (byKid.has(kid) || duplicated.has(kid)) duplicated.add(kid);
    else byKid.set(kid, { kid, alg: candidate.jwk.alg, key, jwk: Object.freeze(candidate.jwk) });
  }
  // RFC 7517 §4.5 asks for distinct kids within a set; with duplicates, which key a token
  // means is ambiguous, so neither is trusted rather than guessing.
  for (const kid of duplicated) {
    byKid.delete(kid);
    rejected.push({ index: -1, kid, reason: 'kid is not unique in the set' });
  }
  if (byKid.size === 0) {
    const why = rejected.map((r) => `${r.kid ?? `#${r.index}`}: ${r.reason}`).join('; ');
    throw new JwksError('JWKS_INVALID', `JWK Set holds no usable signing key${why ? ` (${why})` : ''}`);
  }
  return { keys: byKid, rejected };
}
