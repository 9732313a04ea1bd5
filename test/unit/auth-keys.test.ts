// Unit tests of src/auth's trusted key set: refreshing for unknown kids and on a period,
// rotation, failed refreshes, which JWKs are kept and served, and the JWK Set sources (a URL
// through an injected request, and a file). The JWK Set is mostly served through a loader
// closing over a mutable variable (test/helpers/auth.ts), and once through a real file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { realmFor } from '../../src/auth/challenge.js';
import { type AuthLogger, JwksError } from '../../src/auth/errors.js';
import { defaultJwksUrl, fileJwksLoader, urlJwksLoader } from '../../src/auth/jwks-source.js';
import { KeySet } from '../../src/auth/keyset.js';
import { TokenVerifier } from '../../src/auth/token.js';
import { GET, INVALID_CHALLENGE, ORIGIN, SERVICE, T0, ed, es, es2, refused, rs, setup, sign } from '../helpers/auth.js';

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

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
