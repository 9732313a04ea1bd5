// Hits with every docs/protocol.md §5 header, ranges, 304, HEAD over HTTP/1.1 and
// HTTP/2; routes; malformed input answered 400 without touching disk or upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { waitFor } from '../helpers/deadline.js';
import { startStack } from '../helpers/stack.js';
import { byteranges, fetchBlob, http1Raw, sha256 } from '../helpers/http.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

test('hits: headers, ranges, 304 and HEAD over HTTP/1.1 and HTTP/2', async (t) => {
  const s = await startStack(t);
  const bytes = randomBytes(300_000);
  const blob = s.origin.add(bytes);
  const token = await s.origin.mint('team/app', blob.digest);
  const url = s.blobUrl('team/app', blob.digest, token);
  const first = await fetchBlob(s.h1, url);
  assert.equal(first.status, 200);
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);

  for (const [proto, agent] of [
    ['h1', s.h1],
    ['h2', s.h2],
  ] as const) {
    await t.test(`${proto}: full GET from disk`, async () => {
      const r = await fetchBlob(agent, url);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(bytes.length));
      assert.equal(r.headers['content-type'], 'application/octet-stream');
      assert.equal(r.headers['docker-content-digest'], blob.digest);
      assert.equal(r.headers['etag'], `"${blob.digest}"`);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.equal(r.headers['cache-control'], 'max-age=31536000');
      assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
      assert.equal(`sha256:${r.sha256}`, blob.digest);
    });
    await t.test(`${proto}: single, open and suffix ranges`, async () => {
      const a = await fetchBlob(agent, url, { headers: { range: 'bytes=100-199' } });
      assert.equal(a.status, 206);
      assert.equal(a.headers['content-range'], `bytes 100-199/${bytes.length}`);
      assert.deepEqual(a.body, bytes.subarray(100, 200));
      const b = await fetchBlob(agent, url, { headers: { range: 'bytes=299000-' } });
      assert.equal(b.status, 206);
      assert.deepEqual(b.body, bytes.subarray(299_000));
      const c = await fetchBlob(agent, url, { headers: { range: 'bytes=-500' } });
      assert.equal(c.status, 206);
      assert.equal(c.headers['content-range'], `bytes ${bytes.length - 500}-${bytes.length - 1}/${bytes.length}`);
      assert.deepEqual(c.body, bytes.subarray(bytes.length - 500));
    });
    await t.test(`${proto}: multiple ranges are multipart/byteranges`, async () => {
      const r = await fetchBlob(agent, url, { headers: { range: 'bytes=0-9,1000-1009,-5' } });
      assert.equal(r.status, 206);
      assert.equal(Number(r.headers['content-length']), r.body.length);
      const parts = byteranges(String(r.headers['content-type']), r.body);
      const expect = [
        [0, 9],
        [1000, 1009],
        [bytes.length - 5, bytes.length - 1],
      ] as const;
      assert.equal(parts.length, expect.length);
      parts.forEach((part, i) => {
        const [start, end] = expect[i]!;
        assert.equal(part.contentRange, `bytes ${start}-${end}/${bytes.length}`);
        assert.deepEqual(part.bytes, bytes.subarray(start, end + 1));
      });
    });
    await t.test(`${proto}: unsatisfiable range is 416 RANGE_INVALID with Content-Range */size`, async () => {
      const r = await fetchBlob(agent, url, { headers: { range: `bytes=${bytes.length}-` } });
      assert.equal(r.status, 416);
      assert.equal(r.headers['content-range'], `bytes */${bytes.length}`);
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(JSON.parse(r.body.toString()).errors[0].code, 'RANGE_INVALID');
      assert.equal(r.headers['etag'], `"${blob.digest}"`);
      assert.equal(r.headers['cache-control'], undefined, 'an error is not cached as the blob');
    });
    await t.test(`${proto}: If-Range: the range for the blob's own strong tag, else the whole blob`, async () => {
      const range = { range: 'bytes=0-9' };
      const same = await fetchBlob(agent, url, { headers: { ...range, 'if-range': `"${blob.digest}"` } });
      assert.equal(same.status, 206);
      assert.deepEqual(same.body, bytes.subarray(0, 10));
      // RFC 9110 §13.1.5: another tag, a weak one, or a date (blobs carry no Last-Modified): 200, all of it.
      for (const ifRange of ['"sha256:0000"', `W/"${blob.digest}"`, 'Tue, 01 Dec 2026 00:00:00 GMT']) {
        const whole = await fetchBlob(agent, url, { headers: { ...range, 'if-range': ifRange } });
        assert.equal(whole.status, 200, ifRange);
        assert.equal(`sha256:${whole.sha256}`, blob.digest, ifRange);
      }
    });
    await t.test(`${proto}: If-None-Match is 304, HEAD has headers and no body`, async () => {
      const r = await fetchBlob(agent, url, { headers: { 'if-none-match': `"${blob.digest}"` } });
      assert.equal(r.status, 304);
      assert.equal(r.body.length, 0);
      // A list, weak tags (RFC 9110 §13.1.2: If-None-Match compares weakly); another tag is no match.
      const listed = await fetchBlob(agent, url, { headers: { 'if-none-match': `"other", W/"${blob.digest}"` } });
      assert.equal(listed.status, 304);
      assert.equal((await fetchBlob(agent, url, { headers: { 'if-none-match': '"other"' } })).status, 200);
      // `*`: any current representation, and the blob is stored here (as distribution and nginx answer).
      const any = await fetchBlob(agent, url, { headers: { 'if-none-match': '*' } });
      assert.equal(any.status, 304);
      assert.equal(any.headers['etag'], `"${blob.digest}"`);
      assert.equal(any.body.length, 0);
      const h = await fetchBlob(agent, url, { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.equal(h.headers['content-length'], String(bytes.length));
      assert.equal(h.headers['docker-content-digest'], blob.digest);
      assert.equal(h.body.length, 0);
    });
  }
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1, 'every request after the first was a hit');
  assert.equal(s.origin.count(s.origin.heads, blob.digest), 0);
  const lines = await s.cache.logLines();
  const hits = lines.filter((l) => l.msg === 'request' && l.outcome === 'hit');
  assert.ok(hits.length >= 10);
  assert.ok(
    hits.every((l) => l.repo === 'team/app' && l.digest === blob.digest && typeof l.ms === 'number' && l.method),
  );
  assert.ok(!JSON.stringify(lines).includes(token), 'the token never reaches the log');
});

test('HEAD on a miss is answered by an upstream HEAD and starts no fill', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(50_000));
  const token = await s.origin.mint('team/app', blob.digest);
  const r = await fetchBlob(s.h2, s.blobUrl('team/app', blob.digest, token), { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '50000');
  assert.equal(s.origin.count(s.origin.heads, blob.digest), 1);
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 0);
  const unknown = `sha256:${'0'.repeat(64)}`;
  const r404 = await fetchBlob(s.h1, s.blobUrl('team/app', unknown, await s.origin.mint('team/app', unknown)), {
    method: 'HEAD',
  });
  assert.equal(r404.status, 404);
});

test('If-None-Match: * on a miss is 304 once the upstream has the blob; the fill goes on and publishes', async (t) => {
  const s = await startStack(t);
  for (const size of [4 << 10, 3 << 20]) {
    const blob = s.origin.add(randomBytes(size));
    const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
    const head = await fetchBlob(s.h1, url, { method: 'HEAD', headers: { 'if-none-match': '*' } });
    assert.equal(head.status, 304, `${size}: HEAD miss`);
    assert.equal(s.origin.count(s.origin.gets, blob.digest), 0, 'a HEAD miss starts no fill');
    const get = await fetchBlob(s.h2, url, { headers: { 'if-none-match': '*' } });
    assert.equal(get.status, 304, `${size}: GET miss`);
    assert.equal(get.body.length, 0);
    // The client left with its 304; the fill it started is kept and serves the next pull.
    await waitFor(30_000, 'the blob published', () =>
      exists(new Layout(s.cache.root).blobData(parseDigest(blob.digest))),
    );
    const after = await fetchBlob(s.h1, url);
    assert.equal(after.status, 200);
    assert.equal(`sha256:${after.sha256}`, blob.digest);
    assert.equal(s.origin.count(s.origin.gets, blob.digest), 1, `${size}: one upstream GET`);
  }
  const lines = await s.cache.logLines();
  assert.equal(lines.filter((l) => l.msg === 'request' && l.outcome === 'not-modified').length, 4);
  const unknown = `sha256:${'0'.repeat(64)}`;
  const missing = await fetchBlob(s.h1, s.blobUrl('team/app', unknown, await s.origin.mint('team/app', unknown)), {
    headers: { 'if-none-match': '*' },
  });
  assert.equal(missing.status, 404, 'no representation: the condition holds, and the upstream says 404');
});

test('a Via near the header limit is forwarded with its oldest entries dropped, not refused upstream', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(100_000));
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  const hops = Array.from({ length: 1_100 }, (_, i) => `1.1 hop${i}`);
  const r = await fetchBlob(s.h1, url, { headers: { via: hops.join(', ') } });
  assert.equal(r.status, 200);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  const sent = String(s.origin.seen.find((x) => x.path.includes(blob.digest))?.headers.via);
  const entries = sent.split(', ');
  assert.ok(sent.length < 4_200, `forwarded Via of ${sent.length} characters`);
  assert.match(entries.at(-1) ?? '', /^1\.1 \S+~[0-9a-f]{8}$/, 'our own hop last');
  assert.deepEqual(entries.slice(0, -1), hops.slice(hops.length - entries.length + 1), 'the newest hops, whole');
});

test('routes: /v2/, jwks, 404 and 405 with registry error JSON', async (t) => {
  const s = await startStack(t);
  const base = await fetchBlob(s.h1, `${s.cache.url}/v2/`);
  assert.equal(base.status, 200);
  assert.deepEqual(JSON.parse(base.body.toString()), {});
  const jwks = await fetchBlob(s.h2, `${s.cache.url}/.well-known/jwks.json`);
  assert.equal(jwks.status, 200);
  assert.deepEqual(
    JSON.parse(jwks.body.toString()).keys.map((k: { kid: string }) => k.kid),
    s.origin.keys.map((k) => k.kid),
  );
  const nf = await fetchBlob(s.h1, `${s.cache.url}/v2/team/app/manifests/latest`);
  assert.equal(nf.status, 404);
  assert.equal(JSON.parse(nf.body.toString()).errors[0].code, 'NOT_FOUND');
  const digest = `sha256:${'a'.repeat(64)}`;
  const { request } = await import('undici');
  // A 405 names the methods that are allowed (RFC 9110 §15.5.6). A push starts with a POST to
  // `…/blobs/uploads/`: refused as a method, not as a malformed digest.
  const refusals: Array<[string, string, string]> = [
    ...['PUT', 'DELETE', 'POST', 'PATCH'].map((m): [string, string, string] => [
      s.blobUrl('team/app', digest),
      m,
      'GET, HEAD',
    ]),
    [`${s.cache.url}/v2/team/app/blobs/uploads/`, 'POST', 'GET, HEAD'],
    [`${s.cache.url}/v2/team/app/blobs/uploads/some-session-id?digest=${digest}`, 'PUT', 'GET, HEAD'],
    [`${s.cache.url}/v2/`, 'POST', 'GET, HEAD'],
    [`${s.cache.url}/.well-known/jwks.json`, 'DELETE', 'GET, HEAD'],
  ];
  for (const [url, method, allow] of refusals) {
    const res = await request(url, { dispatcher: s.h1, method });
    assert.equal(res.statusCode, 405, `${method} ${url}`);
    assert.equal(res.headers.allow, allow, `${method} ${url}`);
    assert.equal(((await res.body.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNSUPPORTED');
  }
});

test('an HTTP/1.1 request in absolute-form is routed by its path and query (RFC 9112 §3.2.2)', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(20_000));
  const absolute = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  const get = (target: string) => http1Raw(s.cache.url, target, s.ca.cert);
  const r = await get(absolute);
  assert.equal(r.status, 200);
  assert.equal(`sha256:${sha256(r.body)}`, blob.digest);
  const base = await get(`${s.cache.url}/v2/`);
  assert.equal(base.status, 200);
  assert.deepEqual(JSON.parse(base.body.toString()), {});
  const nf = await get(`${s.cache.url}/v2/team/app/manifests/latest`);
  assert.equal(nf.status, 404);
  assert.equal(JSON.parse(nf.body.toString()).errors[0].code, 'NOT_FOUND');
});

test('malformed names and digests get 400 and touch neither disk nor upstream', async (t) => {
  const s = await startStack(t);
  const good = `sha256:${'a'.repeat(64)}`;
  const cases: Array<[string, string]> = [
    [`/v2/..%2f..%2fetc/blobs/${good}`, 'NAME_INVALID'],
    [`/v2/team/..%2f/blobs/${good}`, 'NAME_INVALID'],
    [`/v2/team/../../x/blobs/${good}`, 'NAME_INVALID'],
    [`/v2/Team/App/blobs/${good}`, 'NAME_INVALID'],
    [`/v2/${'a'.repeat(256)}/blobs/${good}`, 'NAME_INVALID'],
    [`/v2//blobs/${good}`, 'NAME_INVALID'],
    [`/v2/team/app/blobs/sha256:${'A'.repeat(64)}`, 'DIGEST_INVALID'],
    [`/v2/team/app/blobs/md5:${'a'.repeat(32)}`, 'DIGEST_INVALID'],
    [`/v2/team/app/blobs/sha256:${'a'.repeat(63)}`, 'DIGEST_INVALID'],
    [`/v2/team/app/blobs/sha256:..%2f${'a'.repeat(60)}`, 'DIGEST_INVALID'],
    [`/v2/team/app/blobs/sha512:${'b'.repeat(64)}`, 'DIGEST_INVALID'],
    ['/v2/team/app/blobs/', 'DIGEST_INVALID'],
  ];
  for (const [path, code] of cases) {
    for (const agent of [s.h1, s.h2]) {
      // dispatcher.request sends the path as is (a URL object would normalise `/../`).
      const r = await agent.request({ origin: s.cache.url, path, method: 'GET' });
      assert.equal(r.statusCode, 400, path);
      const body = (await r.body.json()) as { errors: Array<{ code: string }> };
      assert.equal(body.errors[0]!.code, code, path);
    }
  }
  const pathsAtOrigin = s.origin.seen.filter((r) => r.path.startsWith('/v2/'));
  assert.equal(pathsAtOrigin.length, 0, 'no upstream request');
  const entries = await readdir(join(s.cache.root, 'docker', 'registry', 'v2')).catch(() => []);
  assert.deepEqual(
    entries.filter((e) => e !== '_dtr-cache'),
    [],
    'no blob directories created',
  );
});

test('auth: missing, forged, expired, wrong digest, wrong repository and rotated keys', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(1000));
  const url = (token?: string) => s.blobUrl('team/app', blob.digest, token);
  const code = (r: { body: Buffer }) =>
    (JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> }).errors[0]!.code;

  const none = await fetchBlob(s.h1, url());
  assert.equal(none.status, 401);
  assert.equal(code(none), 'UNAUTHORIZED');
  assert.match(
    String(none.headers['www-authenticate']),
    new RegExp(`^Bearer realm="${s.origin.url}/auth/token",service="localhost:\\d+"`),
  );

  const other = await s.origin.mint('team/app', `sha256:${'c'.repeat(64)}`);
  const wrongDigest = await fetchBlob(s.h1, url(other));
  assert.equal(wrongDigest.status, 401);
  assert.match(String(wrongDigest.headers['www-authenticate']), /error="invalid_token"/);

  // A token minted for another repository is not this URL's (401); one for this repository
  // without pull is a valid token refused (403), as the origin answers them.
  const wrongRepo = await fetchBlob(s.h2, url(await s.origin.mint('team/other', blob.digest)));
  assert.equal(wrongRepo.status, 401);
  assert.equal(code(wrongRepo), 'UNAUTHORIZED');
  assert.match(String(wrongRepo.headers['www-authenticate']), /error="invalid_token"/);
  const pushOnly = await fetchBlob(s.h2, url(await s.origin.mint('team/app', blob.digest, { actions: ['push'] })));
  assert.equal(pushOnly.status, 403);
  assert.equal(code(pushOnly), 'DENIED');
  assert.match(String(pushOnly.headers['www-authenticate']), /error="insufficient_scope"/);

  const expired = await fetchBlob(
    s.h1,
    url(await s.origin.mint('team/app', blob.digest, { exp: Math.floor(Date.now() / 1000) - 120 })),
  );
  assert.equal(expired.status, 401);

  const valid = await s.origin.mint('team/app', blob.digest);
  const [h, p] = valid.split('.');
  const forged = `${h}.${p}.${Buffer.from('not a signature').toString('base64url')}`;
  assert.equal((await fetchBlob(s.h1, url(forged))).status, 401);
  const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
  assert.equal((await fetchBlob(s.h1, url(noneAlg))).status, 401);

  // Bearer form, as a downstream cache forwards it.
  const bearer = await fetchBlob(s.h2, url(), { headers: { authorization: `Bearer ${valid}` } });
  assert.equal(bearer.status, 200);

  // A rotated key (new kid) is fetched on first sight, with no restart.
  const rotated = await s.origin.rotate('RS256', true);
  const afterRotation = await fetchBlob(s.h1, url(await s.origin.mint('team/app', blob.digest, { key: rotated })));
  assert.equal(afterRotation.status, 200);
  assert.equal(`sha256:${afterRotation.sha256}`, blob.digest);
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1, 'refused requests never reached upstream');
  assert.equal(sha256(afterRotation.body), blob.digest.slice(7));
});
