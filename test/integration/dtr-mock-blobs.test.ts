// How the DTR mock serves blobs, and the knobs tests bend it with: blob headers, Range and
// If-None-Match, injected faults, latency and bandwidth limits, the stats and request log,
// and the registry errors that bad requests get without taking the server down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, type Dispatcher } from 'undici';
import type { DtrMock } from '../../bench/dtr-mock/index.js';
import { DEADLINE, agent, bytes, mock, sha256 } from '../helpers/dtr-mock.js';
import { byteranges } from '../helpers/http.js';
import { basic, errorCode, h, http, pullToken, token } from '../helpers/dtr-mock-http.js';

/** Reads a body until the server breaks it; returns the bytes that arrived and whether it ended cleanly. */
async function readUntilBroken(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; received: number; clean: boolean }> {
  const res = await request(url, { dispatcher: agent, headers, signal: AbortSignal.timeout(DEADLINE) });
  let received = 0;
  try {
    for await (const c of res.body) received += (c as Buffer).length;
    return { status: res.statusCode, received, clean: true };
  } catch {
    return { status: res.statusCode, received, clean: false };
  }
}

test('Range, If-None-Match and blob headers', async (t) => {
  const m = await mock(t);
  const blob = bytes(1000, 11);
  const { digest } = await m.putBlob('library/app', blob);
  const auth = { authorization: `Bearer ${await pullToken(m, 'bob')}` };
  const url = `${m.url}/v2/library/app/blobs/${digest}`;

  const full = await http(url, { headers: auth });
  assert.equal(full.status, 200);
  assert.equal(h(full, 'content-type'), 'application/octet-stream');
  assert.equal(h(full, 'docker-content-digest'), digest);
  assert.equal(h(full, 'etag'), `"${digest}"`);
  assert.equal(h(full, 'accept-ranges'), 'bytes');
  assert.equal(h(full, 'cache-control'), 'max-age=31536000');
  assert.equal(h(full, 'docker-distribution-api-version'), 'registry/2.0');
  assert.equal(h(full, 'content-length'), '1000');

  const cases: [string, number, number][] = [
    ['bytes=10-19', 10, 19],
    ['bytes=990-', 990, 999],
    ['bytes=-5', 995, 999],
    ['bytes=900-5000', 900, 999],
  ];
  for (const [range, a, b] of cases) {
    const r = await http(url, { headers: { ...auth, range } });
    assert.equal(r.status, 206, range);
    assert.equal(h(r, 'content-range'), `bytes ${a}-${b}/1000`, range);
    assert.ok(r.body.equals(blob.subarray(a, b + 1)), range);
  }
  const past = await http(url, { headers: { ...auth, range: 'bytes=1000-' } });
  assert.equal(past.status, 416);
  assert.equal(h(past, 'content-range'), 'bytes */1000');
  const nm = await http(url, { headers: { ...auth, 'if-none-match': `"${digest}"` } });
  assert.equal(nm.status, 304);
  const missing = await http(`${m.url}/v2/library/app/blobs/${sha256(Buffer.from('nope'))}`, { headers: auth });
  assert.equal(missing.status, 404);
  assert.equal(errorCode(missing), 'BLOB_UNKNOWN');
});

// docs/protocol.md §5 holds for the origin as for the cache: the mock reads Range and the
// conditional fields with the cache's own code.
test('the origin answers Range and conditional requests as the cache does', async (t) => {
  const m = await mock(t);
  const blob = bytes(1000, 12);
  const { digest } = await m.putBlob('library/app', blob);
  const empty = await m.putBlob('library/app', Buffer.alloc(0));
  const auth = { authorization: `Bearer ${await pullToken(m, 'bob')}` };
  const url = `${m.url}/v2/library/app/blobs/${digest}`;

  const multi = await http(url, { headers: { ...auth, range: 'bytes=0-9, 500-509,-5' } });
  assert.equal(multi.status, 206);
  assert.equal(Number(h(multi, 'content-length')), multi.body.length);
  assert.deepEqual(
    byteranges(h(multi, 'content-type') ?? '', multi.body).map((p) => [p.contentRange, p.bytes.toString('hex')]),
    [
      ['bytes 0-9/1000', blob.subarray(0, 10).toString('hex')],
      ['bytes 500-509/1000', blob.subarray(500, 510).toString('hex')],
      ['bytes 995-999/1000', blob.subarray(995).toString('hex')],
    ],
  );
  const multiHead = await http(url, { method: 'HEAD', headers: { ...auth, range: 'bytes=0-9,500-509' } });
  assert.equal(multiHead.status, 200, 'a HEAD ignores Range');
  assert.equal(h(multiHead, 'content-length'), '1000');
  assert.equal(h(multiHead, 'content-range'), undefined);

  const range = { ...auth, range: 'bytes=0-9' };
  const ifRange = await http(url, { headers: { ...range, 'if-range': `"${digest}"` } });
  assert.equal(ifRange.status, 206);
  for (const other of [`W/"${digest}"`, '"x"', 'Tue, 01 Dec 2026 00:00:00 GMT']) {
    const r = await http(url, { headers: { ...range, 'if-range': other } });
    assert.equal(r.status, 200, `If-Range: ${other}`);
    assert.ok(r.body.equals(blob), `If-Range: ${other}`);
  }
  for (const tags of [`W/"${digest}"`, `"x", "${digest}"`]) {
    const r = await http(url, { headers: { ...auth, 'if-none-match': tags } });
    assert.equal(r.status, 304, `If-None-Match: ${tags}`);
  }
  const trailingComma = await http(url, { headers: { ...auth, range: 'bytes=0-9,' } });
  assert.equal(trailingComma.status, 206);
  assert.ok(trailingComma.body.equals(blob.subarray(0, 10)));

  const emptyUrl = `${m.url}/v2/library/app/blobs/${empty.digest}`;
  const suffixOfNothing = await http(emptyUrl, { headers: { ...auth, range: 'bytes=-5' } });
  assert.equal(suffixOfNothing.status, 200);
  assert.equal(suffixOfNothing.body.length, 0);
});

test('faults: corrupt, cutAfter, status503 (count and always), refuse', async (t) => {
  const m = await mock(t);
  const blob = bytes(256 * 1024, 13);
  const { digest } = await m.putBlob('library/app', blob);
  const auth = { authorization: `Bearer ${await pullToken(m, 'bob')}` };
  const url = `${m.url}/v2/library/app/blobs/${digest}`;

  m.setFaults(digest, { corrupt: true });
  const bad = await http(url, { headers: auth });
  assert.equal(bad.status, 200);
  assert.equal(bad.body.length, blob.length);
  assert.notEqual(sha256(bad.body), digest);
  const badRange = await http(url, { headers: { ...auth, range: 'bytes=100-199' } });
  assert.equal(badRange.body.length, 100);
  assert.ok(!badRange.body.equals(blob.subarray(100, 200)));

  m.setFaults(digest, { cutAfter: 100_000 });
  const cut = await readUntilBroken(url, auth);
  assert.deepEqual(cut, { status: 200, received: 100_000, clean: false });
  const cutRange = await readUntilBroken(url, { ...auth, range: 'bytes=200000-' });
  assert.deepEqual(
    cutRange,
    { status: 206, received: blob.length - 200_000, clean: true },
    'a shorter response is not cut',
  );

  m.setFaults(digest, { status503: 2 });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await http(url, { headers: auth })).status);
  assert.deepEqual(statuses, [503, 503, 200]);
  m.setFaults(digest, { status503: 'always' });
  for (let i = 0; i < 3; i++) {
    const r = await http(url, { method: 'HEAD', headers: auth });
    assert.equal(r.status, 503);
  }
  const body503 = await http(url, { headers: auth });
  assert.equal(errorCode(body503), 'UNAVAILABLE');

  m.setFaults(digest, { refuse: true });
  await assert.rejects(http(url, { headers: auth }));
  m.setFaults(digest, null);
  const ok = await http(url, { headers: auth });
  assert.ok(ok.body.equals(blob));

  const s = m.stats().blobs[digest];
  // served: corrupt x2, cut x2, the 200 after two 503s, the last one; failed: 3+3+1 503s... and the refusal.
  assert.deepEqual(s?.get, { redirected: 0, served: 6, failed: 4 });
  assert.deepEqual(s?.head, { redirected: 0, served: 0, failed: 3 });

  // The same knobs over HTTP.
  const cfg = await http(`${m.url}/_mock/config`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ faults: { [digest]: { status503: 1 } } }),
  });
  assert.equal(cfg.status, 200);
  assert.equal((await http(url, { headers: auth })).status, 503);
  assert.equal((await http(url, { headers: auth })).status, 200);
  const badCfg = await http(`${m.url}/_mock/config`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ faults: { [digest]: { explode: 1 } } }),
  });
  assert.equal(badCfg.status, 400);
});

test('latency and bandwidth knobs, by method and by POST /_mock/config', async (t) => {
  const m = await mock(t);
  const blob = bytes(200 * 1024, 17);
  const { digest } = await m.putBlob('library/app', blob);
  const auth = { authorization: `Bearer ${await pullToken(m, 'bob')}` };
  const url = `${m.url}/v2/library/app/blobs/${digest}`;
  const timed = async (): Promise<number> => {
    const t0 = performance.now();
    const r = await http(url, { headers: auth });
    assert.ok(r.body.equals(blob));
    return performance.now() - t0;
  };
  await timed();
  const fast = await timed();
  m.setLatency(300);
  const slow = await timed();
  assert.ok(slow >= 290, `latency: ${slow} ms`);
  m.setLatency(0);
  m.setBandwidth(400 * 1024);
  const capped = await timed();
  assert.ok(capped >= 400, `200 KiB at 400 KiB/s took ${capped} ms`);
  assert.ok(capped > fast);
  const r = await http(`${m.url}/_mock/config`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ bandwidth: null, latencyMs: 200 }),
  });
  assert.equal(r.status, 200);
  assert.equal(m.knobs().bandwidth, null);
  assert.equal(m.knobs().latencyMs, 200);
  const viaHttp = await timed();
  assert.ok(viaHttp >= 190 && viaHttp < capped + 1000, `${viaHttp} ms`);
  const unauth = await http(`${m.url}/_mock/config`, { method: 'POST', body: '{"latencyMs":0}' });
  assert.equal(unauth.status, 401);
});

test('stats: per-digest counts, bounded log without tokens, reset', async (t) => {
  const m = await mock(t, { logLimit: 5 });
  const { digest } = await m.putBlob('library/app', bytes(100));
  const tok = await pullToken(m, 'bob');
  const redirect = await m.mintRedirectToken({ sub: 'bob', name: 'library/app', digest });
  await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    headers: { authorization: `Bearer ${tok}`, range: 'bytes=0-9' },
  });
  await http(`${m.url}/v2/library/app/blobs/${digest}?token=${redirect}`, { method: 'HEAD' });
  const r = await http(`${m.url}/_mock/stats`);
  const s = JSON.parse(r.body.toString()) as ReturnType<DtrMock['stats']>;
  assert.deepEqual(s.blobs[digest], {
    get: { redirected: 0, served: 1, failed: 0 },
    head: { redirected: 0, served: 1, failed: 0 },
    bytesSent: 10,
  });
  assert.deepEqual(s.totals.blobGet, { redirected: 0, served: 1, failed: 0 });
  const entries = s.log.filter((e) => e.path.includes('/blobs/'));
  assert.deepEqual(
    entries.map((e) => [e.method, e.path, e.range, e.status, e.user]),
    [
      ['GET', `/v2/library/app/blobs/${digest}`, 'bytes=0-9', 206, 'bob'],
      ['HEAD', `/v2/library/app/blobs/${digest}`, null, 200, 'bob'],
    ],
  );
  for (let i = 0; i < 10; i++) await http(`${m.url}/v2/`);
  const s2 = m.stats();
  assert.equal(s2.log.length, 5);
  assert.ok(s2.totals.requests >= 13);
  assert.ok(!JSON.stringify(s2).includes(redirect));
  const reset = await http(`${m.url}/_mock/stats/reset`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
  });
  assert.equal(reset.status, 200);
  const s3 = m.stats();
  assert.deepEqual(s3.blobs, {});
  // Only the reset request itself, logged as it ended.
  assert.deepEqual(
    s3.log.map((e) => [e.method, e.path, e.user]),
    [['POST', '/_mock/stats/reset', null]],
  );
  m.resetStats();
  assert.equal(m.stats().totals.requests, 0);
});

test('bad input gets registry errors and never takes the server down', async (t) => {
  const m = await mock(t);
  const auth = { authorization: `Bearer ${await pullToken(m, 'carol')}` };
  const d = sha256(Buffer.from('x'));
  const cases: [string, Dispatcher.HttpMethod, number, string | undefined][] = [
    [`/v2/UPPER/blobs/${d}`, 'GET', 400, 'NAME_INVALID'],
    [`/v2/a..b/blobs/${d}`, 'GET', 400, 'NAME_INVALID'],
    [`/v2/${'a'.repeat(256)}/blobs/${d}`, 'GET', 400, 'NAME_INVALID'],
    ['/v2/library/app/blobs/sha256:abc', 'GET', 400, 'DIGEST_INVALID'],
    ['/v2/library/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e', 'GET', 400, 'DIGEST_INVALID'],
    [`/v2/library/app/blobs/${d.toUpperCase()}`, 'GET', 400, 'DIGEST_INVALID'],
    ['/v2/library/app/blobs/%E0%A4%A', 'GET', 400, 'DIGEST_INVALID'],
    ['/v2/library/app/manifests/bad%20tag', 'GET', 400, 'TAG_INVALID'],
    [`/v2/library/app/blobs/${d}`, 'DELETE', 405, 'UNSUPPORTED'],
    ['/v2/library/app/nothing', 'GET', 404, 'NOT_FOUND'],
    ['/nowhere', 'GET', 404, 'NOT_FOUND'],
    ['/api/v0/content_caches/%zz', 'GET', 400, 'INVALID_REQUEST'],
  ];
  for (const [path, method, status, code] of cases) {
    const r = await http(`${m.url}${path}`, {
      method,
      headers: { ...auth, authorization: path.startsWith('/api') ? basic('boss', 'boss-pw') : auth.authorization },
    });
    assert.equal(r.status, status, `${method} ${path}`);
    assert.equal(errorCode(r), code, `${method} ${path}`);
  }
  const bigManifest = await http(`${m.url}/v2/library/app/manifests/v1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await token(m, 'alice', 'alice-pw', 'repository:library/app:push,pull')}` },
    body: 'not json',
  });
  assert.equal(bigManifest.status, 400);
  assert.equal(errorCode(bigManifest), 'MANIFEST_INVALID');
  assert.equal((await http(`${m.url}/v2/`, { headers: { authorization: 'Bearer' } })).status, 401);
  assert.equal(
    (await http(`${m.url}/auth/token`, { headers: { authorization: 'Basic !!!' } })).status,
    200,
    'unparsable Basic is anonymous',
  );
  assert.equal((await http(`${m.url}/v2/`)).status, 401, 'still alive');
});
