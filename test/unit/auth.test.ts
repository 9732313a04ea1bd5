// Unit tests of src/auth: the trusted key set, JWK Set sources, redirect-token verification,
// the Bearer challenge and token extraction. Keys are generated per run with jose; the
// JWK Set is served through a loader closing over a mutable variable, and once through a
// real file.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CryptoKey, type JWK, SignJWT, base64url, exportJWK, generateKeyPair } from 'jose';
import { RegistryError } from '../../src/errors/registry.js';
import { bearerChallenge, realmFor } from '../../src/auth/challenge.js';
import { type AuthLogger, JwksError } from '../../src/auth/errors.js';
import { tokenFromRequest } from '../../src/auth/extract.js';
import { defaultJwksUrl, fileJwksLoader, urlJwksLoader } from '../../src/auth/jwks-source.js';
import { KeySet, type KeySetOptions } from '../../src/auth/keyset.js';
import { TokenVerifier, type TokenVerifierOptions } from '../../src/auth/token.js';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';

const ORIGIN = 'https://dtr.example.org';
const SERVICE = 'dtr.example.org';
const CHALLENGE = `Bearer realm="${ORIGIN}/auth/token",service="${SERVICE}"`;
const INVALID_CHALLENGE = `${CHALLENGE},error="invalid_token"`;
const NAME = 'library/alpine';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`;
const GET = { name: NAME, digest: DIGEST, method: 'GET' };
const T0 = Date.UTC(2030, 0, 1) / 1000; // a fixed NumericDate "now"

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

const [es, rs, ed, es2, esForger] = await Promise.all([
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

function claims(over: Claims = {}): Claims {
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

async function sign(key: TestKey, over: Claims = {}, header: Record<string, unknown> = {}): Promise<string> {
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
async function setup(keys: JWK[], opts: { keySet?: KeySetOptions; verifier?: Partial<TokenVerifierOptions> } = {}) {
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
async function refused(
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

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('TokenVerifier: accepted tokens', () => {
  for (const key of [es, rs, ed]) {
    it(`accepts a valid ${key.alg} token for GET and HEAD`, async () => {
      const { verifier } = await setup([es.publicJwk, rs.publicJwk, ed.publicJwk]);
      const token = await sign(key);
      const v = await verifier.verify(token, GET);
      assert.deepEqual(v, { sub: 'alice', iss: ORIGIN, exp: T0 + 300, token });
      await verifier.verify(token, { ...GET, method: 'HEAD' });
    });
  }

  it('finds pull among several access entries', async () => {
    const { verifier } = await setup([es.publicJwk]);
    const access = [
      { type: 'repository', name: 'other/repo', actions: ['pull'] },
      'garbage',
      { type: 'repository', name: NAME, actions: ['push', 'pull'] },
    ];
    await verifier.verify(await sign(es, { access }), GET);
  });
});

describe('TokenVerifier: refusals', () => {
  it('answers a request without a token with 401 and the plain challenge', async () => {
    const { verifier } = await setup([es.publicJwk]);
    for (const t of [null, '']) {
      const err = await refused(verifier.verify(t, GET), t, 401, 'UNAUTHORIZED', 'token');
      assert.equal(err.headers['WWW-Authenticate'], CHALLENGE);
    }
  });

  it('refuses a forged signature (another key under the same kid)', async () => {
    const { verifier } = await setup([es.publicJwk]);
    const token = await sign(esForger);
    const err = await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'signature');
    assert.equal(err.headers['WWW-Authenticate'], INVALID_CHALLENGE);
  });

  it('refuses a tampered payload', async () => {
    const { verifier } = await setup([es.publicJwk]);
    const [h, , s] = (await sign(es)).split('.');
    const payload = base64url.encode(
      JSON.stringify(claims({ access: [{ type: 'repository', name: '*', actions: ['pull'] }] })),
    );
    const token = `${h}.${payload}.${s}`;
    await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'signature');
  });

  it('applies 60 s of leeway to exp', async () => {
    const { verifier, state } = await setup([es.publicJwk]);
    const token = await sign(es, { exp: T0 - 30 });
    await verifier.verify(token, GET);
    const late = await sign(es, { exp: T0 - 61 });
    const err = await refused(verifier.verify(late, GET), late, 401, 'UNAUTHORIZED', 'exp');
    assert.equal(err.headers['WWW-Authenticate'], INVALID_CHALLENGE);
    state.nowMs += 31_000; // now 61 s past the first token's exp
    await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'exp');
  });

  it('applies 60 s of leeway to nbf', async () => {
    const { verifier } = await setup([es.publicJwk]);
    await verifier.verify(await sign(es, { nbf: T0 + 30 }), GET);
    const early = await sign(es, { nbf: T0 + 120 });
    await refused(verifier.verify(early, GET), early, 401, 'UNAUTHORIZED', 'nbf');
  });

  it('requires exp', async () => {
    const { verifier } = await setup([es.publicJwk]);
    const { exp: _exp, ...noExp } = claims();
    const token = await new SignJWT({ ...noExp }).setProtectedHeader({ alg: 'ES256', kid: 'es-1' }).sign(es.privateKey);
    await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'claims');
  });

  it('refuses a token for another digest with 401 invalid_token', async () => {
    const { verifier } = await setup([es.publicJwk]);
    const token = await sign(es, { digest: OTHER_DIGEST });
    const err = await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'digest');
    assert.equal(err.headers['WWW-Authenticate'], INVALID_CHALLENGE);
  });

  it('refuses a valid token without pull on the repository with 403 DENIED', async () => {
    const { verifier } = await setup([es.publicJwk]);
    const other = await sign(es, { access: [{ type: 'repository', name: 'other/repo', actions: ['pull'] }] });
    const err = await refused(verifier.verify(other, GET), other, 403, 'DENIED', 'repository');
    assert.equal(err.headers['WWW-Authenticate'], `${CHALLENGE},error="insufficient_scope"`);
    const pushOnly = await sign(es, { access: [{ type: 'repository', name: NAME, actions: ['push'] }] });
    await refused(verifier.verify(pushOnly, GET), pushOnly, 403, 'DENIED', 'repository');
    // Another repository AND another digest: the digest check answers first (401).
    const both = await sign(es, {
      digest: OTHER_DIGEST,
      access: [{ type: 'repository', name: 'other/repo', actions: ['pull'] }],
    });
    await refused(verifier.verify(both, GET), both, 401, 'UNAUTHORIZED', 'digest');
  });

  it('refuses methods other than GET and HEAD with 403', async () => {
    const { verifier } = await setup([es.publicJwk]);
    const token = await sign(es);
    for (const method of ['PUT', 'DELETE', 'POST', 'get']) {
      await refused(verifier.verify(token, { ...GET, method }), token, 403, 'DENIED', 'method');
    }
  });

  it('refuses alg "none" before any key lookup', async () => {
    const { verifier, keySet, state } = await setup([es.publicJwk]);
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT', kid: 'es-1' }));
    const payload = base64url.encode(JSON.stringify(claims()));
    const token = `${header}.${payload}.`;
    const err = await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'alg');
    assert.match(err.message, /alg "none" is not accepted/);
    assert.equal(keySet.lookups, 0);
    assert.equal(state.loads, 1);
  });

  it('refuses HS256 (a secret cannot stand in for a public key) before any key lookup', async () => {
    const { verifier, keySet } = await setup([es.publicJwk]);
    const secret = new TextEncoder().encode('x'.repeat(32));
    const token = await new SignJWT({ ...claims() }).setProtectedHeader({ alg: 'HS256', kid: 'es-1' }).sign(secret);
    await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'alg');
    assert.equal(keySet.lookups, 0);
  });

  it('refuses a token whose alg differs from the key named by kid', async () => {
    const { verifier } = await setup([es.publicJwk, rs.publicJwk]);
    const token = await sign({ ...rs, kid: 'es-1' });
    await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'alg');
  });

  it('refuses malformed tokens, a missing kid, a foreign typ, and oversized tokens', async () => {
    const { verifier } = await setup([es.publicJwk]);
    for (const token of ['abc', 'a.b.c', '..', `${base64url.encode('{"alg":"ES256"')}.x.y`]) {
      await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'header');
    }
    const noKid = await new SignJWT({ ...claims() }).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey);
    await refused(verifier.verify(noKid, GET), noKid, 401, 'UNAUTHORIZED', 'kid');
    const typ = await sign(es, {}, { typ: 'at+jwt' });
    await refused(verifier.verify(typ, GET), typ, 401, 'UNAUTHORIZED', 'header');
    const huge = 'a'.repeat(10_000);
    await refused(verifier.verify(huge, GET), huge, 401, 'UNAUTHORIZED', 'token');
  });

  it('checks the issuer when one is configured', async () => {
    const { verifier } = await setup([es.publicJwk], { verifier: { issuer: ORIGIN } });
    await verifier.verify(await sign(es), GET);
    const token = await sign(es, { iss: 'https://evil.example' });
    await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'iss');
  });

  it('answers 503 when no key set could be loaded', async () => {
    const keySet = new KeySet(async () => Promise.reject(new Error('down')), { refreshIntervalMs: 0 });
    await assert.rejects(keySet.start(), (e: unknown) => e instanceof JwksError && e.code === 'JWKS_LOAD_FAILED');
    const verifier = new TokenVerifier({ keySet, realm: realmFor(ORIGIN), service: SERVICE, now: () => T0 * 1000 });
    const token = await sign(es);
    await refused(verifier.verify(token, GET), token, 503, 'UNAVAILABLE', 'keys');
  });
});

describe('TokenVerifier: unknown kids and rotation', () => {
  it('refreshes once for an unknown kid, and rate-limits further refreshes', async () => {
    const { verifier, state } = await setup([es.publicJwk]);
    assert.equal(state.loads, 1);
    const t1 = await sign(es2);
    const err = await refused(verifier.verify(t1, GET), t1, 401, 'UNAUTHORIZED', 'kid');
    assert.equal(err.headers['WWW-Authenticate'], INVALID_CHALLENGE);
    assert.equal(state.loads, 2);
    const t2 = await sign({ ...es2, kid: 'es-3' });
    await refused(verifier.verify(t2, GET), t2, 401, 'UNAUTHORIZED', 'kid');
    assert.equal(state.loads, 2, 'a second unknown kid within the interval must not refetch');
    state.nowMs += 30_000;
    await refused(verifier.verify(t2, GET), t2, 401, 'UNAUTHORIZED', 'kid');
    assert.equal(state.loads, 3);
  });

  it('shares one refresh among concurrent callers', async () => {
    const { verifier, state, keySet } = await setup([es.publicJwk]);
    state.jwks = { keys: [es.publicJwk, es2.publicJwk] };
    const token = await sign(es2);
    const results = await Promise.all(Array.from({ length: 5 }, () => verifier.verify(token, GET)));
    assert.equal(results.length, 5);
    assert.equal(state.loads, 2);
    assert.equal(keySet.size, 2);
  });

  it('picks up a rotated key, and drops tokens signed by a removed key even when cached', async () => {
    const { verifier, state, keySet } = await setup([es.publicJwk]);
    const old = await sign(es);
    await verifier.verify(old, GET);
    assert.equal(verifier.cacheSize, 1);
    const generation = keySet.generation;

    state.jwks = { keys: [es2.publicJwk] }; // rotation: es-1 retired, es-2 introduced
    await verifier.verify(await sign(es2), GET); // unknown kid → refresh → accepted
    assert.equal(state.loads, 2);
    assert.equal(keySet.generation, generation + 1);
    await refused(verifier.verify(old, GET), old, 401, 'UNAUTHORIZED', 'kid');
  });

  it('keeps the old keys when a refresh fails, and logs it', async () => {
    const warnings: string[] = [];
    const log: AuthLogger = { info() {}, warn: (_o, msg) => void warnings.push(msg) };
    const { verifier, state, keySet } = await setup([es.publicJwk], { keySet: { log } });
    state.fail = true;
    await assert.rejects(keySet.refresh(), (e: unknown) => e instanceof JwksError && e.code === 'JWKS_LOAD_FAILED');
    assert.equal(keySet.loaded, true);
    await verifier.verify(await sign(es), GET);
    const t = await sign(es2);
    await refused(verifier.verify(t, GET), t, 401, 'UNAUTHORIZED', 'kid');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /keeping the keys/);
  });

  it('refreshes periodically, and not after close()', async (t) => {
    // The interval's clock is mocked: each tick is one period, so nothing waits on real time.
    t.mock.timers.enable({ apis: ['setInterval'] });
    let jwks = { keys: [es.publicJwk] };
    let loads = 0;
    const keySet = new KeySet(
      async () => {
        loads += 1;
        return jwks;
      },
      { refreshIntervalMs: 60_000 },
    );
    t.after(() => keySet.close());
    await keySet.start();
    assert.equal(loads, 1);
    jwks = { keys: [es.publicJwk, es2.publicJwk] };
    t.mock.timers.tick(59_999);
    assert.equal(loads, 1, 'not before the period');
    t.mock.timers.tick(1);
    await until(() => keySet.size === 2);
    assert.equal(loads, 2);
    keySet.close();
    t.mock.timers.tick(10 * 60_000);
    assert.equal(loads, 2, 'no refresh after close()');
  });

  it('freshen(): refreshes keys older than servedMaxAgeMs before they are served, never rejects', async () => {
    let nowMs = T0 * 1000;
    let loads = 0;
    let fail = false;
    const keySet = new KeySet(
      async () => {
        loads += 1;
        if (fail) throw new Error('origin down');
        return { keys: [es.publicJwk] };
      },
      { refreshIntervalMs: 0, servedMaxAgeMs: 10_000, now: () => nowMs },
    );
    await keySet.start();
    nowMs += 9_999;
    await keySet.freshen();
    assert.equal(loads, 1, 'fresh enough: served as they are');
    nowMs += 1;
    await keySet.freshen();
    assert.equal(loads, 2, 'stale: refreshed first');
    nowMs += 10_000;
    fail = true;
    await keySet.freshen();
    assert.equal(loads, 3);
    assert.equal(keySet.size, 1, 'a failed refresh keeps the keys');
  });
});

describe('TokenVerifier: the verified-token cache', () => {
  it('verifies a repeated token once, but re-checks the clock and the request every time', async () => {
    const { verifier, keySet, state } = await setup([es.publicJwk]);
    const token = await sign(es, { exp: T0 + 100 });
    for (let i = 0; i < 3; i++) await verifier.verify(token, GET);
    assert.equal(keySet.lookups, 1);
    // The per-request checks still run on a hit.
    await refused(verifier.verify(token, { ...GET, digest: OTHER_DIGEST }), token, 401, 'UNAUTHORIZED', 'digest');
    await refused(verifier.verify(token, { ...GET, name: 'other/repo' }), token, 403, 'DENIED', 'repository');
    await refused(verifier.verify(token, { ...GET, method: 'PUT' }), token, 403, 'DENIED', 'method');
    assert.equal(keySet.lookups, 1);
    // Past exp + leeway, the cached token is refused without a new signature check.
    state.nowMs = (T0 + 160) * 1000;
    await refused(verifier.verify(token, GET), token, 401, 'UNAUTHORIZED', 'exp');
    assert.equal(keySet.lookups, 1);
    assert.equal(verifier.cacheSize, 0);
  });

  it('does not remember refused tokens, and is bounded', async () => {
    const { verifier, keySet } = await setup([es.publicJwk], { verifier: { cacheMaxEntries: 2 } });
    const forged = await sign(esForger);
    await refused(verifier.verify(forged, GET), forged, 401, 'UNAUTHORIZED', 'signature');
    assert.equal(verifier.cacheSize, 0);
    const tokens = await Promise.all([1, 2, 3].map((i) => sign(es, { sub: `user${i}` })));
    for (const token of tokens) await verifier.verify(token, GET);
    assert.equal(verifier.cacheSize, 2);
    const before = keySet.lookups;
    await verifier.verify(tokens[2] ?? '', GET); // newest: still cached
    assert.equal(keySet.lookups, before);
    await verifier.verify(tokens[0] ?? '', GET); // oldest: evicted
    assert.equal(keySet.lookups, before + 1);
  });

  it('sweeps expired entries on insertion and empties on a new key-set generation', () => {
    const cache = new VerifiedTokenCache(10);
    const c = (exp: number) => ({ sub: 's', iss: 'i', exp, nbf: undefined, digest: DIGEST, pulls: new Set([NAME]) });
    cache.set('a', 1, c(100), 0);
    cache.set('b', 1, c(200), 0);
    cache.set('c', 1, c(300), 150); // 'a' expired at 100 <= 150: swept
    assert.equal(cache.get('a', 1), undefined);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b', 2), undefined);
    assert.equal(cache.size, 0);
    assert.notEqual(VerifiedTokenCache.id('t'), 't');
  });
});

describe('KeySet', () => {
  it('fails to start on an empty, invalid or unusable set', async () => {
    const unusable = [
      { keys: [] },
      { nokeys: true },
      [],
      'text',
      { keys: [{ kty: 'oct', kid: 'h', k: 'c2VjcmV0' }] },
      { keys: [{ ...es.publicJwk, use: 'enc' }] },
      { keys: [{ ...es.publicJwk, kid: undefined }] },
    ];
    for (const doc of unusable) {
      const ks = new KeySet(async () => doc, { refreshIntervalMs: 0 });
      await assert.rejects(
        ks.start(),
        (e: unknown) => e instanceof JwksError && e.code === 'JWKS_INVALID',
        JSON.stringify(doc),
      );
      assert.equal(ks.loaded, false);
      assert.equal(ks.lastLoadedAt, null);
    }
  });

  it('keeps only usable keys and drops duplicated kids', async () => {
    const p384 = await generateKeyPair('ES384');
    const doc = {
      keys: [
        es.publicJwk,
        { ...rs.publicJwk, alg: 'PS256' },
        { ...(await exportJWK(p384.publicKey)), kid: 'p384' },
        { ...ed.publicJwk, key_ops: ['encrypt'] },
        es2.publicJwk,
        { ...es2.publicJwk },
        { ...ed.publicJwk, kid: 'ed-noalg', alg: undefined, use: undefined },
      ],
    };
    const ks = new KeySet(async () => structuredClone(doc), { refreshIntervalMs: 0, now: () => 1234 });
    await ks.start();
    assert.deepEqual(
      ks
        .toJSON()
        .keys.map((k) => k.kid)
        .sort(),
      ['ed-noalg', 'es-1'],
    );
    assert.equal(ks.lastLoadedAt, 1234);
    const edNoAlg = ks.toJSON().keys.find((k) => k.kid === 'ed-noalg');
    assert.equal(edNoAlg?.alg, 'EdDSA');
    assert.equal(edNoAlg?.use, 'sig');
  });

  it('serves public members only, and verifies with a JWK published with its private part', async () => {
    const privateJwk = { ...(await exportJWK(rs.privateKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' };
    assert.ok(typeof privateJwk.d === 'string');
    const { keySet, verifier } = await setup([privateJwk]);
    const [served] = keySet.toJSON().keys;
    assert.ok(served);
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth']) assert.ok(!(member in served), member);
    assert.deepEqual(served, { kty: 'RSA', kid: 'rs-1', use: 'sig', alg: 'RS256', n: privateJwk.n, e: privateJwk.e });
    await verifier.verify(await sign(rs), GET);
  });

  it('loads from a real file, and picks up a replaced file on refresh', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'dtr-auth-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [ed.publicJwk] }));
    const keySet = new KeySet(fileJwksLoader(file), { refreshIntervalMs: 0 });
    await keySet.start();
    t.after(() => keySet.close());
    const verifier = new TokenVerifier({ keySet, realm: realmFor(ORIGIN), service: SERVICE, now: () => T0 * 1000 });
    await verifier.verify(await sign(ed), GET);
    await writeFile(file, JSON.stringify({ keys: [ed.publicJwk, rs.publicJwk] }));
    await verifier.verify(await sign(rs), GET); // unknown kid → the file is read again
  });
});

describe('JWK Set sources', () => {
  it('builds the default URL', () => {
    assert.equal(defaultJwksUrl('https://dtr.example.org'), 'https://dtr.example.org/.well-known/jwks.json');
    assert.equal(defaultJwksUrl('https://dtr.example.org:8443/'), 'https://dtr.example.org:8443/.well-known/jwks.json');
    assert.throws(() => defaultJwksUrl('ftp://x'), TypeError);
  });

  it('loads through the injected request, and fails on a bad status, bad JSON, or a network error', async () => {
    const seen: string[] = [];
    const ok = urlJwksLoader('https://dtr.example.org/.well-known/jwks.json', async (url) => {
      seen.push(url);
      return { statusCode: 200, body: JSON.stringify({ keys: [es.publicJwk] }) };
    });
    assert.deepEqual(await ok(), { keys: [es.publicJwk] });
    assert.deepEqual(seen, ['https://dtr.example.org/.well-known/jwks.json']);
    const failing = [
      urlJwksLoader('https://x/', async () => ({ statusCode: 404, body: '{}' })),
      urlJwksLoader('https://x/', async () => ({ statusCode: 200, body: '<html>' })),
      urlJwksLoader('https://x/', async () => Promise.reject(new Error('ECONNREFUSED'))),
    ];
    for (const loader of failing) {
      await assert.rejects(loader(), (e: unknown) => e instanceof JwksError && e.code === 'JWKS_LOAD_FAILED');
    }
  });

  it('requires an absolute file path and reports a missing file', async () => {
    assert.throws(() => fileJwksLoader('relative/jwks.json'), TypeError);
    const loader = fileJwksLoader(join(tmpdir(), 'dtr-auth-does-not-exist', 'jwks.json'));
    await assert.rejects(loader(), (e: unknown) => e instanceof JwksError && e.code === 'JWKS_LOAD_FAILED');
  });
});

describe('challenge and extraction', () => {
  it('builds the Bearer challenge with quoting', () => {
    assert.equal(realmFor('https://dtr.example.org/'), 'https://dtr.example.org/auth/token');
    assert.equal(bearerChallenge({ realm: 'r', service: 's' }), 'Bearer realm="r",service="s"');
    assert.equal(
      bearerChallenge({ realm: 'a"b\\c', service: 'x\r\ny', error: 'invalid_token' }),
      'Bearer realm="a\\"b\\\\c",service="xy",error="invalid_token"',
    );
  });

  it('takes the token from ?token= or Authorization: Bearer', () => {
    const q = (s: string) => new URLSearchParams(s);
    assert.equal(tokenFromRequest(q('token=abc.def.ghi'), undefined), 'abc.def.ghi');
    assert.equal(tokenFromRequest(q(''), 'Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(tokenFromRequest(q(''), 'bearer   abc.def-_~+/='), 'abc.def-_~+/=');
    assert.equal(tokenFromRequest(q('token=from.query.x'), 'Bearer from.header.x'), 'from.query.x');
    assert.equal(tokenFromRequest(q('token='), undefined), null);
    assert.equal(tokenFromRequest(q(''), undefined), null);
    assert.equal(tokenFromRequest(q(''), 'Basic dXNlcjpwYXNz'), null);
    assert.equal(tokenFromRequest(q(''), 'Bearer'), null);
    assert.equal(tokenFromRequest(q(''), 'Bearer a b'), null);
    assert.equal(tokenFromRequest(q(''), 'Bearer a"b'), null);
  });
});
