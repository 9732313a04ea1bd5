// The DTR mock's token service and access control, with undici over real TLS: the Bearer
// challenge and per-user grants, what pull-only, rightless and anonymous users get, signing-key
// rotation and the JWK Set, and the open mode (tokens: false).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { waitFor } from '../helpers/deadline.js';
import { DEADLINE, bytes, mock } from '../helpers/dtr-mock.js';
import { basic, errorCode, h, http, jwksOf, pullToken, selectCache, token } from '../helpers/dtr-mock-http.js';

test('token flow: challenge, per-user grants, anonymous and bad credentials', async (t) => {
  const m = await mock(t);
  const ping = await http(`${m.url}/v2/`);
  assert.equal(ping.status, 401);
  assert.equal(h(ping, 'www-authenticate'), `Bearer realm="${m.url}/auth/token",service="dtr-mock"`);
  assert.equal(errorCode(ping), 'UNAUTHORIZED');

  const r = await http(
    `${m.url}/auth/token?service=dtr-mock&scope=repository:library/app:pull,push&scope=repository:other/x:pull`,
    { headers: { authorization: basic('alice', 'alice-pw') } },
  );
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body.toString()) as {
    token: string;
    access_token: string;
    expires_in: number;
    issued_at: string;
  };
  assert.equal(body.token, body.access_token);
  assert.ok(body.expires_in > 0);
  assert.ok(!Number.isNaN(Date.parse(body.issued_at)));
  const claims = decodeJwt(body.token);
  assert.equal(claims.sub, 'alice');
  assert.deepEqual(claims['access'], [{ type: 'repository', name: 'library/app', actions: ['pull', 'push'] }]);

  const bobClaims = decodeJwt(await token(m, 'bob', 'bob-pw', 'repository:library/app:pull,push'));
  assert.deepEqual(bobClaims['access'], [{ type: 'repository', name: 'library/app', actions: ['pull'] }]);
  const carolClaims = decodeJwt(await token(m, 'carol', 'carol-pw', 'repository:any/thing:pull,push'));
  assert.deepEqual(carolClaims['access'], [{ type: 'repository', name: 'any/thing', actions: ['pull'] }]);
  const aliceGlob = decodeJwt(await token(m, 'alice', 'alice-pw', 'repository:team/web:push'));
  assert.deepEqual(aliceGlob['access'], [{ type: 'repository', name: 'team/web', actions: ['push'] }]);

  const anon = decodeJwt(await token(m, undefined, '', 'repository:library/app:pull'));
  assert.deepEqual(anon['access'], []);

  const bad = await http(`${m.url}/auth/token?service=dtr-mock&scope=repository:library/app:pull`, {
    headers: { authorization: basic('alice', 'wrong') },
  });
  assert.equal(bad.status, 401);
  assert.equal(errorCode(bad), 'UNAUTHORIZED');

  const ok = await http(`${m.url}/v2/`, { headers: { authorization: `Bearer ${body.token}` } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), '{}');
  const forged = await http(`${m.url}/v2/`, { headers: { authorization: `Bearer ${body.token.slice(0, -4)}AAAA` } });
  assert.equal(forged.status, 401);
  assert.match(h(forged, 'www-authenticate') ?? '', /error="invalid_token"/);
});

test('permissions: pull-only users cannot push, users without rights get 403, anonymous gets 401', async (t) => {
  const m = await mock(t);
  const blob = bytes(1000);
  const { digest } = await m.putBlob('library/app', blob);
  const path = `/v2/library/app/blobs/${digest}`;

  const none = await http(`${m.url}${path}`);
  assert.equal(none.status, 401);
  assert.match(h(none, 'www-authenticate') ?? '', /scope="repository:library\/app:pull"/);

  const bob = await token(m, 'bob', 'bob-pw', 'repository:library/app:pull,push');
  assert.equal((await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${bob}` } })).status, 200);
  const up = await http(`${m.url}/v2/library/app/blobs/uploads/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bob}` },
  });
  assert.equal(up.status, 403);
  assert.equal(errorCode(up), 'DENIED');

  // dave has no rights at all: no bytes and no redirect, even with a cache selected.
  await selectCache(m, 'dave', 'c1', 'https://localhost:1');
  const dave = await token(m, 'dave', 'dave-pw', 'repository:library/app:pull');
  const d = await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${dave}` } });
  assert.equal(d.status, 403);
  assert.equal(h(d, 'location'), undefined);

  const anon = await token(m, undefined, '', 'repository:library/app:pull');
  const a = await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${anon}` } });
  assert.equal(a.status, 401);
  assert.match(h(a, 'www-authenticate') ?? '', /error="insufficient_scope"/);

  // A token for another repository: 401 so the client asks for the right scope.
  const other = await token(m, 'carol', 'carol-pw', 'repository:some/where:pull');
  const o = await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${other}` } });
  assert.equal(o.status, 401);
  assert.equal(m.stats().blobs[digest]?.get.redirected, 0);
});

test('key rotation: the old key stays published until dropped; RS256 and EdDSA', async (t) => {
  const m = await mock(t);
  const { digest } = await m.putBlob('library/app', bytes(64));
  const url = `${m.url}/v2/library/app/blobs/${digest}`;
  const kid1 = m.currentKid();
  const t1 = await m.mintRedirectToken({ sub: 'bob', name: 'library/app', digest });
  assert.equal(decodeProtectedHeader(t1).kid, kid1);

  const kid2 = await m.rotateKey();
  assert.notEqual(kid2, kid1);
  const t2 = await m.mintRedirectToken({ sub: 'bob', name: 'library/app', digest });
  assert.equal(decodeProtectedHeader(t2).kid, kid2);
  let jwks = await jwksOf(m);
  assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), [kid1, kid2].sort());
  const set = createLocalJWKSet(jwks);
  await jwtVerify(t1, set, { issuer: m.issuer });
  await jwtVerify(t2, set, { issuer: m.issuer });
  assert.equal((await http(`${url}?token=${t1}`)).status, 200, 'old key still accepted');

  const rot = await http(`${m.url}/_mock/rotate-key`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: '{"dropOld":true}',
  });
  assert.equal(rot.status, 200);
  const kid3 = (JSON.parse(rot.body.toString()) as { kid: string }).kid;
  assert.equal(kid3, m.currentKid());
  jwks = await jwksOf(m);
  assert.deepEqual(
    jwks.keys.map((k) => k.kid),
    [kid3],
  );
  assert.equal((await http(`${url}?token=${t1}`)).status, 401);
  assert.equal((await http(`${url}?token=${t2}`)).status, 401);
  await assert.rejects(jwtVerify(t2, createLocalJWKSet(jwks), { issuer: m.issuer }));
  assert.equal((await http(`${m.url}/_mock/rotate-key`, { method: 'POST' })).status, 401);

  // Old keys expire on their own after keepOldKeysSec.
  const short = await mock(t, { keepOldKeysSec: 0.2 });
  await short.rotateKey();
  assert.equal(short.jwks().keys.length, 2);
  await waitFor(DEADLINE, 'the old key expired', () => short.jwks().keys.length === 1);

  for (const [alg, kty] of [
    ['RS256', 'RSA'],
    ['EdDSA', 'OKP'],
  ] as const) {
    const mm = await mock(t, { alg });
    const d = (await mm.putBlob('library/app', bytes(32))).digest;
    await selectCache(mm, 'carol', 'c', 'https://localhost:9');
    const r = await http(`${mm.url}/v2/library/app/blobs/${d}`, {
      headers: { authorization: `Bearer ${await pullToken(mm, 'carol')}` },
    });
    assert.equal(r.status, 307);
    const tok = new URL(h(r, 'location') ?? '').searchParams.get('token') ?? '';
    const keys = await jwksOf(mm);
    assert.equal(keys.keys[0]?.kty, kty);
    assert.equal(keys.keys[0]?.alg, alg);
    const { protectedHeader } = await jwtVerify(tok, createLocalJWKSet(keys), { issuer: mm.issuer });
    assert.equal(protectedHeader.alg, alg);
  }
});

test('tokens: false serves pulls to anyone and never redirects', async (t) => {
  const m = await mock(t, { tokens: false });
  const blob = bytes(500, 19);
  const { digest } = await m.putBlob('library/app', blob);
  await selectCache(m, 'carol', 'c', 'https://localhost:9');
  assert.equal((await http(`${m.url}/v2/`)).status, 200);
  const r = await http(`${m.url}/v2/library/app/blobs/${digest}`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(blob));
  const carol = await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    headers: { authorization: `Bearer ${await pullToken(m, 'carol')}` },
  });
  assert.equal(carol.status, 200);
  assert.equal((await http(`${m.url}/v2/library/app/blobs/${digest}`, { method: 'HEAD' })).status, 200);
  assert.equal(
    (await http(`${m.url}/v2/library/app/blobs/uploads/`, { method: 'POST' })).status,
    401,
    'pushes still need a token',
  );
  m.setTokens(true);
  assert.equal((await http(`${m.url}/v2/library/app/blobs/${digest}`)).status, 401);
  assert.equal(
    (
      await http(`${m.url}/v2/library/app/blobs/${digest}`, {
        headers: { authorization: `Bearer ${await pullToken(m, 'carol')}` },
      })
    ).status,
    307,
  );
});
