// Shared by the test/unit/auth-*.test.ts files: keys generated per run with jose (ES256,
// RS256, EdDSA, a second ES256, and a forger reusing a kid), redirect-token claims and
// signing, a TokenVerifier over a JWK Set served by a loader closing over a mutable variable
// with a controllable clock, and the check that a refusal is the right RegistryError and
// leaks no token.
import assert from 'node:assert/strict';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { RegistryError } from '../../src/errors/registry.js';
import { realmFor } from '../../src/auth/challenge.js';
import { KeySet, type KeySetOptions } from '../../src/auth/keyset.js';
import { TokenVerifier, type TokenVerifierOptions } from '../../src/auth/token.js';

export const ORIGIN = 'https://dtr.example.org';
export const SERVICE = 'dtr.example.org';
export const CHALLENGE = `Bearer realm="${ORIGIN}/auth/token",service="${SERVICE}"`;
export const INVALID_CHALLENGE = `${CHALLENGE},error="invalid_token"`;
export const NAME = 'library/alpine';
export const DIGEST = `sha256:${'a'.repeat(64)}`;
export const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`;
export const GET = { name: NAME, digest: DIGEST, method: 'GET' };
export const T0 = Date.UTC(2030, 0, 1) / 1000; // a fixed NumericDate "now"

type Alg = 'ES256' | 'RS256' | 'EdDSA';
interface TestKey {
  kid: string;
  alg: Alg;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function makeKey(alg: Alg, kid: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg === 'EdDSA' ? 'Ed25519' : alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export const [es, rs, ed, es2, esForger] = await Promise.all([
  makeKey('ES256', 'es-1'),
  makeKey('RS256', 'rs-1'),
  makeKey('EdDSA', 'ed-1'),
  makeKey('ES256', 'es-2'),
  makeKey('ES256', 'es-1'), // same kid as `es`, different key material: a forger
]);

interface Claims {
  sub?: string;
  iss?: string;
  iat?: number;
  nbf?: number;
  exp?: number;
  digest?: string;
  access?: unknown;
}

export function claims(over: Claims = {}): Claims {
  return {
    sub: 'alice',
    iss: ORIGIN,
    iat: T0,
    nbf: T0,
    exp: T0 + 300,
    digest: DIGEST,
    access: [{ type: 'repository', name: NAME, actions: ['pull'] }],
    ...over,
  };
}

export async function sign(key: TestKey, over: Claims = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ ...claims(over) })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

/** A KeySet that counts key lookups: one lookup per signature verification. */
class CountingKeySet extends KeySet {
  lookups = 0;
  override getKey(kid: string, alg: string): Promise<CryptoKey> {
    this.lookups += 1;
    return super.getKey(kid, alg);
  }
}

/** A JWK Set served by a loader over a mutable variable, with a controllable clock. */
export async function setup(
  keys: JWK[],
  opts: { keySet?: KeySetOptions; verifier?: Partial<TokenVerifierOptions> } = {},
) {
  const state = { jwks: { keys } as { keys: unknown[] }, loads: 0, nowMs: T0 * 1000, fail: false };
  const now = () => state.nowMs;
  const loader = async () => {
    state.loads += 1;
    if (state.fail) throw new Error('origin unreachable');
    return structuredClone(state.jwks);
  };
  const keySet = new CountingKeySet(loader, { refreshIntervalMs: 0, now, ...opts.keySet });
  await keySet.start();
  const verifier = new TokenVerifier({ keySet, realm: realmFor(ORIGIN), service: SERVICE, now, ...opts.verifier });
  return { state, keySet, verifier };
}

/** Asserts a RegistryError with this status, code and check, and that the token leaked nowhere. */
export async function refused(
  p: Promise<unknown>,
  token: string | null,
  status: number,
  code: string,
  check: string,
): Promise<RegistryError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof RegistryError, `expected a RegistryError, got ${String(caught)}`);
  assert.equal(caught.status, status);
  assert.equal(caught.code, code);
  assert.deepEqual(caught.detail, { check });
  if (token !== null && token !== '') {
    const signature = token.split('.')[2] ?? '';
    const everything = [
      caught.message,
      caught.body(),
      JSON.stringify(caught.headers),
      String(caught.stack),
      String(caught.cause),
    ];
    for (const text of everything) {
      assert.ok(!text.includes(token), 'the token appears in the error');
      if (signature.length >= 16) assert.ok(!text.includes(signature), 'the token signature appears in the error');
    }
  }
  return caught;
}
