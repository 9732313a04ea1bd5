// The DTR mock as the origin of content caches: the content-cache API and account settings,
// the 307 redirect to a user's selected cache with a token verifiable against the JWK Set,
// registry-client following it to another host, and serving blobs to redirect tokens.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { standInCache } from '../helpers/stand-in-cache.js';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { createOciImage } from '../../testkit/image.js';
import { RegistryClient } from '../../testkit/registry-client.js';
import { bytes, ca, mock, tmp } from '../helpers/dtr-mock.js';
import { basic, errorCode, h, http, jwksOf, pullToken, selectCache, type Res } from '../helpers/dtr-mock-http.js';

test('307 redirect to the selected cache with a token verifiable against the JWK Set', async (t) => {
  const m = await mock(t);
  const blob = bytes(4096, 3);
  const { digest } = await m.putBlob('library/app', blob);
  await selectCache(m, 'carol', 'region-asia', 'https://localhost:7443/');
  const tok = await pullToken(m, 'carol');
  const before = Math.floor(Date.now() / 1000);
  const r = await http(`${m.url}/v2/library/app/blobs/${digest}`, { headers: { authorization: `Bearer ${tok}` } });
  assert.equal(r.status, 307);
  assert.equal(r.body.length, 0);
  const loc = new URL(h(r, 'location') ?? '');
  assert.equal(loc.origin, 'https://localhost:7443');
  assert.equal(loc.pathname, `/v2/library/app/blobs/${digest}`);
  const redirectToken = loc.searchParams.get('token') ?? '';

  const jwks = await jwksOf(m);
  assert.equal(jwks.keys.length, 1);
  const key = jwks.keys[0]!;
  assert.equal(key.use, 'sig');
  assert.equal(key.alg, 'ES256');
  assert.equal(key.kty, 'EC');
  assert.equal(key.d, undefined, 'no private part published');
  const header = decodeProtectedHeader(redirectToken);
  assert.deepEqual(header, { alg: 'ES256', kid: key.kid, typ: 'JWT' });
  const { payload } = await jwtVerify(redirectToken, createLocalJWKSet(jwks), {
    issuer: m.issuer,
    algorithms: ['ES256'],
  });
  assert.equal(payload.sub, 'carol');
  assert.equal(payload['digest'], digest);
  assert.deepEqual(payload['access'], [{ type: 'repository', name: 'library/app', actions: ['pull'] }]);
  assert.ok(payload.iat !== undefined && payload.iat >= before - 1);
  assert.equal(payload.nbf, payload.iat);
  assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 300);

  // HEAD is answered directly; bob has no cache and gets the bytes.
  const head = await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    method: 'HEAD',
    headers: { authorization: `Bearer ${tok}` },
  });
  assert.equal(head.status, 200);
  assert.equal(h(head, 'content-length'), '4096');
  const bob = await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    headers: { authorization: `Bearer ${await pullToken(m, 'bob')}` },
  });
  assert.equal(bob.status, 200);
  assert.ok(bob.body.equals(blob));

  const s = m.stats().blobs[digest];
  assert.deepEqual(s?.get, { redirected: 1, served: 1, failed: 0 });
  assert.deepEqual(s?.head, { redirected: 0, served: 1, failed: 0 });

  // Unselecting the cache ends the redirects; deleting a cache unselects it.
  const sel = await http(`${m.url}/api/v0/accounts/carol/settings`, {
    method: 'PUT',
    headers: { authorization: basic('carol', 'carol-pw') },
    body: '{"contentCache":null}',
  });
  assert.deepEqual(JSON.parse(sel.body.toString()), { contentCache: null });
  assert.equal(
    (await http(`${m.url}/v2/library/app/blobs/${digest}`, { headers: { authorization: `Bearer ${tok}` } })).status,
    200,
  );
});

test('registry-client follows the 307 to another host without Authorization', async (t) => {
  const dir = await tmp(t, 'redirect');
  const m = await mock(t);
  const img = await createOciImage(join(dir, 'img'), { layers: [50_000, 70_000], seed: 'redir' });
  await m.putOciLayout(img.dir, 'library/app', 'v1');
  const seen: { authorization: string | undefined; token: string | null; path: string }[] = [];
  const cacheLeaf = await ca.issue('fake-cache');
  // A stand-in cache: records what the client sent, then fetches from the
  // origin with the redirect token as Bearer (docs/protocol.md §4).
  const cacheUrl = await standInCache(t, m, cacheLeaf, {
    onRequest: (req, u) =>
      void seen.push({
        authorization: req.headers.authorization,
        token: u.searchParams.get('token'),
        path: u.pathname,
      }),
  });
  await selectCache(m, 'carol', 'near', cacheUrl);

  const client = new RegistryClient({ baseUrl: m.url, ca: ca.cert, username: 'carol', password: 'carol-pw' });
  t.after(() => client.close());
  const pulled = await client.pullImage('library/app', 'v1', join(dir, 'out'));
  assert.equal(pulled.manifestDigest, img.manifestDigest);
  assert.deepEqual(
    pulled.blobs.map((b) => b.redirectedTo),
    [cacheUrl, cacheUrl, cacheUrl],
  );
  assert.equal(seen.length, 3);
  for (const s of seen) {
    assert.equal(s.authorization, undefined, 'no Authorization crosses hosts');
    assert.ok(s.token !== null && s.token.length > 20);
  }
  const st = m.stats();
  for (const d of [img.configDigest, ...img.layerDigests]) {
    assert.deepEqual(st.blobs[d]?.get, { redirected: 1, served: 1, failed: 0 }, d);
  }
  for (const e of st.log) {
    assert.ok(!e.path.includes('?'), e.path);
    for (const s of seen) assert.ok(!JSON.stringify(e).includes(s.token ?? '-'), 'no token in the log');
  }
});

test('serving redirect tokens: ?token= and Bearer; wrong digest, repository, expiry, key → 401; no pull → 403', async (t) => {
  const m = await mock(t);
  const blob = bytes(10_000, 5);
  const { digest } = await m.putBlob('library/app', blob);
  const other = (await m.putBlob('library/app', bytes(10, 6))).digest;
  await selectCache(m, 'carol', 'c', 'https://localhost:9');
  const url = `${m.url}/v2/library/app/blobs/${digest}`;
  const good = await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest });

  const q = await http(`${url}?token=${good}`);
  assert.equal(q.status, 200, 'a token-carrying request is never redirected');
  assert.ok(q.body.equals(blob));
  const b = await http(url, { headers: { authorization: `Bearer ${good}` } });
  assert.equal(b.status, 200);
  assert.ok(b.body.equals(blob));
  const hd = await http(`${url}?token=${good}`, { method: 'HEAD' });
  assert.equal(hd.status, 200);
  assert.equal(h(hd, 'docker-content-digest'), digest);

  const cases: [string, string, number][] = [
    ['other digest', await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest: other }), 401],
    ['other repository', await m.mintRedirectToken({ sub: 'carol', name: 'library/other', digest }), 401],
    ['expired', await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, ttlSec: -120 }), 401],
    [
      'not yet valid',
      await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, notBeforeOffsetSec: 600 }),
      401,
    ],
    ['garbage', 'a.b.c', 401],
    ['no pull', await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, actions: ['push'] }), 403],
  ];
  for (const [what, tok, status] of cases) {
    const r = await http(`${url}?token=${tok}`);
    assert.equal(r.status, status, what);
    assert.equal(errorCode(r), status === 401 ? 'UNAUTHORIZED' : 'DENIED', what);
    if (status === 401) assert.match(h(r, 'www-authenticate') ?? '', /error="invalid_token"/, what);
    const rb = await http(url, { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(rb.status, status, `${what} (Bearer)`);
  }
  // Within the 60 s leeway an expired token is still good.
  const late = await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, ttlSec: -30 });
  assert.equal((await http(`${url}?token=${late}`)).status, 200);
  // Lifetimes are capped at 20 minutes.
  const long = decodeJwt(await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, ttlSec: 99_999 }));
  assert.equal((long.exp ?? 0) - (long.iat ?? 0), 1200);

  // The admin endpoint mints the same tokens.
  const minted = await http(`${m.url}/_mock/token`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ sub: 'x', name: 'library/app', digest, ttlSec: 60, alg: 'RS256' }),
  });
  assert.equal(minted.status, 200);
  const mt = (JSON.parse(minted.body.toString()) as { token: string }).token;
  assert.equal(decodeProtectedHeader(mt).alg, 'RS256');
  assert.equal((await http(`${url}?token=${mt}`)).status, 200);
  const noAdmin = await http(`${m.url}/_mock/token`, {
    method: 'POST',
    headers: { authorization: basic('carol', 'carol-pw') },
    body: '{}',
  });
  assert.equal(noAdmin.status, 403);
});

test('content-cache API: 201, 409, 400, 401, 403; list, get, delete; account settings', async (t) => {
  const m = await mock(t);
  const admin = { authorization: basic('boss', 'boss-pw'), 'content-type': 'application/json' };
  const post = (body: unknown, headers: Record<string, string> = admin): Promise<Res> =>
    http(`${m.url}/api/v0/content_caches`, { method: 'POST', headers, body: JSON.stringify(body) });

  const c1 = await post({ name: 'region-asia', host: 'https://asia.example:443' });
  assert.equal(c1.status, 201);
  const created = JSON.parse(c1.body.toString()) as { id: string; name: string; host: string };
  assert.equal(created.name, 'region-asia');
  assert.equal(created.host, 'https://asia.example:443');
  assert.ok(created.id.length > 0);
  assert.equal((await post({ name: 'region-asia', host: 'https://other:443' })).status, 409);
  assert.equal((await post({ name: 'x', host: 'asia.example' })).status, 400);
  assert.equal((await post({ name: 'x', host: 'ftp://asia.example' })).status, 400);
  assert.equal((await post({ name: 'x' })).status, 400);
  const garbage = await http(`${m.url}/api/v0/content_caches`, { method: 'POST', headers: admin, body: '{not json' });
  assert.equal(garbage.status, 400);
  assert.equal((await post({ name: 'y', host: 'https://y' }, { 'content-type': 'application/json' })).status, 401);
  assert.equal((await post({ name: 'y', host: 'https://y' }, { authorization: basic('boss', 'nope') })).status, 401);
  assert.equal(
    (await post({ name: 'y', host: 'https://y' }, { authorization: basic('alice', 'alice-pw') })).status,
    403,
  );

  const list = await http(`${m.url}/api/v0/content_caches`, { headers: admin });
  assert.deepEqual(JSON.parse(list.body.toString()), [created]);
  const one = await http(`${m.url}/api/v0/content_caches/${created.id}`, { headers: admin });
  assert.deepEqual(JSON.parse(one.body.toString()), created);
  assert.equal((await http(`${m.url}/api/v0/content_caches/nope`, { headers: admin })).status, 404);

  const settings = `${m.url}/api/v0/accounts/alice/settings`;
  const self = { authorization: basic('alice', 'alice-pw') };
  assert.deepEqual(JSON.parse((await http(settings, { headers: self })).body.toString()), { contentCache: null });
  const set = await http(settings, { method: 'PATCH', headers: self, body: '{"contentCache":"region-asia"}' });
  assert.equal(set.status, 200);
  assert.deepEqual(JSON.parse(set.body.toString()), { contentCache: 'region-asia' });
  assert.equal(
    (await http(settings, { method: 'PATCH', headers: self, body: '{"contentCache":"nowhere"}' })).status,
    400,
  );
  assert.equal((await http(settings, { headers: { authorization: basic('bob', 'bob-pw') } })).status, 403);
  assert.equal((await http(settings)).status, 401);
  const byAdmin = await http(settings, { method: 'PUT', headers: admin, body: '{"contentCache":null}' });
  assert.deepEqual(JSON.parse(byAdmin.body.toString()), { contentCache: null });
  assert.equal((await http(`${m.url}/api/v0/accounts/nobody/settings`, { headers: admin })).status, 404);

  await http(settings, { method: 'PATCH', headers: self, body: '{"contentCache":"region-asia"}' });
  const del = await http(`${m.url}/api/v0/content_caches/${created.id}`, { method: 'DELETE', headers: admin });
  assert.equal(del.status, 204);
  assert.deepEqual(JSON.parse((await http(settings, { headers: self })).body.toString()), { contentCache: null });
  assert.deepEqual(JSON.parse((await http(`${m.url}/api/v0/content_caches`, { headers: admin })).body.toString()), []);
});
