// Unit tests of src/auth's TokenVerifier on redirect tokens: what it accepts (ES256, RS256,
// EdDSA), every refusal with its status, code and challenge (the token never appears in the
// error), and the verified-token cache. Keys and tokens come from test/helpers/auth.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignJWT, base64url } from 'jose';
import { realmFor } from '../../src/auth/challenge.js';
import { JwksError } from '../../src/auth/errors.js';
import { KeySet } from '../../src/auth/keyset.js';
import { TokenVerifier } from '../../src/auth/token.js';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';
import {
  CHALLENGE,
  DIGEST,
  GET,
  INVALID_CHALLENGE,
  NAME,
  ORIGIN,
  OTHER_DIGEST,
  SERVICE,
  T0,
  claims,
  ed,
  es,
  esForger,
  refused,
  rs,
  setup,
  sign,
} from '../helpers/auth.js';

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

  it('refuses a token for another repository with 401 invalid_token, one without pull there with 403', async () => {
    const { verifier } = await setup([es.publicJwk]);
    // Minted for another repository: not this URL's token, like one for another digest.
    const other = await sign(es, { access: [{ type: 'repository', name: 'other/repo', actions: ['pull'] }] });
    const err = await refused(verifier.verify(other, GET), other, 401, 'UNAUTHORIZED', 'repository');
    assert.equal(err.headers['WWW-Authenticate'], INVALID_CHALLENGE);
    // For this repository, but without pull: authenticated, not authorized.
    const pushOnly = await sign(es, { access: [{ type: 'repository', name: NAME, actions: ['push'] }] });
    const denied = await refused(verifier.verify(pushOnly, GET), pushOnly, 403, 'DENIED', 'repository');
    assert.equal(denied.headers['WWW-Authenticate'], `${CHALLENGE},error="insufficient_scope"`);
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

describe('TokenVerifier: the verified-token cache', () => {
  it('verifies a repeated token once, but re-checks the clock and the request every time', async () => {
    const { verifier, keySet, state } = await setup([es.publicJwk]);
    const token = await sign(es, { exp: T0 + 100 });
    for (let i = 0; i < 3; i++) await verifier.verify(token, GET);
    assert.equal(keySet.lookups, 1);
    // The per-request checks still run on a hit.
    await refused(verifier.verify(token, { ...GET, digest: OTHER_DIGEST }), token, 401, 'UNAUTHORIZED', 'digest');
    await refused(verifier.verify(token, { ...GET, name: 'other/repo' }), token, 401, 'UNAUTHORIZED', 'repository');
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
    const c = (exp: number) => ({
      sub: 's',
      iss: 'i',
      exp,
      nbf: undefined,
      digest: DIGEST,
      repositories: new Set([NAME]),
      pulls: new Set([NAME]),
    });
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
