// Failover that always reaches a host that can serve (docs/protocol.md §3): a transfer that
// breaks or stalls midway resumes with Range from the next host in order, the host that
// broke goes to the back, and a fill fails only when every host has failed it. A host that
// sent bytes failing the digest check is avoided by the next fill of the blob. One log line
// per fill names the hosts it used and where it switched.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createTestCa } from '../../testkit/pki.js';
import { startTestCache, type CacheSpec } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin } from '../helpers/origin.js';
import { waitFor, within } from '../helpers/deadline.js';

const MiB = 1 << 20;

/** Upstream hosts sharing one signing key, as the tiers of one origin do, and a cache in front. */
async function hosts(t: TestContext, n: number, spec: (urls: string[]) => Partial<CacheSpec>) {
  const ca = await createTestCa();
  const list: TestOrigin[] = [];
  for (let i = 0; i < n; i++) {
    const o = await TestOrigin.start(await ca.issue(`host-${i}`));
    t.after(() => o.close());
    if (i > 0) o.keys = list[0]!.keys;
    list.push(o);
  }
  const cache = await startTestCache(t, {
    upstreams: list.map((o) => o.url),
    cas: [ca.certPath],
    tls: await ca.issue('cache'),
    ...spec(list.map((o) => o.url)),
  });
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());
  const add = async (bytes: Buffer) => {
    const blob = list[0]!.add(bytes);
    for (const o of list.slice(1)) o.add(bytes);
    return {
      ...blob,
      url: `${cache.url}/v2/team/app/blobs/${blob.digest}?token=${await list[0]!.mint('team/app', blob.digest)}`,
    };
  };
  // The fill's line comes when it settles, just after its clients' last byte.
  const fillLine = (digest: string) =>
    waitFor(10_000, `the fill of ${digest} settled`, async () =>
      (await cache.logLines()).find(
        (l) => (l.msg === 'fill published' || l.msg === 'fill failed') && l.digest === digest,
      ),
    );
  return { list, cache, agent, add, fillLine };
}

test('a tier that cuts every transfer is left for the origin, which completes the blob with Range', async (t) => {
  // DTR 2.2 form: the regional first, the origin when it fails.
  const { list, agent, add, fillLine } = await hosts(t, 2, (urls) => ({
    upstreams: { origin: urls[1]!, hosts: [urls[0]!] },
  }));
  const [regional, origin] = list as [TestOrigin, TestOrigin];
  const blob = await add(randomBytes(12 * MiB));
  regional.cutAfter.set(blob.digest, 2 * MiB);
  const r = await within(60_000, 'the pull', fetchBlob(agent, blob.url));
  assert.equal(r.error, null);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(regional.count(regional.gets, blob.digest), 1, 'the tier that broke was not asked again');
  assert.equal(origin.count(origin.gets, blob.digest), 1);
  assert.match(origin.ranges.at(-1) ?? '', /^bytes=\d+-$/, 'the origin resumed where the tier broke');
  const line = await fillLine(blob.digest);
  const route = line?.route as Array<{ host: string; from: number; to: number }>;
  assert.equal(route.length, 2);
  assert.deepEqual([route[0]!.host, route[0]!.from], [regional.url, 0]);
  assert.deepEqual([route[1]!.host, route[1]!.to], [origin.url, 12 * MiB]);
  assert.equal(route[0]!.to, route[1]!.from, 'the switch offset');
  assert.ok(route[0]!.to >= 2 * MiB - 64 * 1024 && route[0]!.to <= 2 * MiB);
});

test('the resume goes to the next upstream host first, then to the origin', async (t) => {
  const { list, agent, add, fillLine } = await hosts(t, 3, (urls) => ({
    upstreams: { origin: urls[2]!, hosts: [urls[0]!, urls[1]!] },
  }));
  const [a, b, origin] = list as [TestOrigin, TestOrigin, TestOrigin];
  const blob = await add(randomBytes(8 * MiB));
  a.cutAfter.set(blob.digest, 1 * MiB);
  b.cutAfter.set(blob.digest, 3 * MiB);
  const r = await within(60_000, 'the pull', fetchBlob(agent, blob.url));
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  const route = ((await fillLine(blob.digest))?.route ?? []) as Array<{ host: string }>;
  // Round robin picks the first upstream host; each break moves on: the other host, then the origin.
  const order = route.map((leg) => leg.host);
  assert.equal(order.length, 3);
  assert.deepEqual(new Set(order.slice(0, 2)), new Set([a.url, b.url]));
  assert.equal(order[2], origin.url);
  for (const o of list) assert.equal(o.count(o.gets, blob.digest), 1);
});

test('a stalled transfer hits the body-idle timeout and resumes from the next host', async (t) => {
  const { list, agent, add, fillLine } = await hosts(t, 2, (urls) => ({
    upstreams: { origin: urls[1]!, hosts: [urls[0]!] },
    extraOptions: '          timeouts:\n            bodyidle: 1s\n',
  }));
  const [regional, origin] = list as [TestOrigin, TestOrigin];
  const blob = await add(randomBytes(4 * MiB));
  regional.stallAfter.set(blob.digest, 1 * MiB);
  const r = await within(30_000, 'the pull', fetchBlob(agent, blob.url));
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 1);
  const route = ((await fillLine(blob.digest))?.route ?? []) as Array<{ host: string; to: number }>;
  assert.deepEqual(
    route.map((l) => l.host),
    [regional.url, origin.url],
  );
  assert.equal(route[0]!.to, 1 * MiB);
});

test('a fill fails only when every host has failed it, after a bounded number of attempts', async (t) => {
  const { list, agent, add } = await hosts(t, 2, (urls) => ({ upstreams: { origin: urls[1]!, hosts: [urls[0]!] } }));
  const [regional, origin] = list as [TestOrigin, TestOrigin];
  const blob = await add(randomBytes(8 * MiB));
  // Both break, each after making some progress every time.
  regional.cutAfter.set(blob.digest, 1 * MiB);
  origin.cutAfter.set(blob.digest, 1 * MiB);
  const r = await within(60_000, 'the pull', fetchBlob(agent, blob.url));
  assert.notEqual(r.error, null, 'reset: never a clean end');
  const tries = regional.count(regional.gets, blob.digest) + origin.count(origin.gets, blob.digest);
  assert.ok(
    regional.count(regional.gets, blob.digest) >= 1 && origin.count(origin.gets, blob.digest) >= 1,
    'both were tried',
  );
  assert.ok(tries <= 6, `${tries} attempts in all`);
  // A healthy host left means the fill goes on: the origin recovers, the next pull completes.
  origin.cutAfter.delete(blob.digest);
  const again = await within(60_000, 'the pull after recovery', fetchBlob(agent, blob.url));
  assert.equal(`sha256:${again.sha256}`, blob.digest);
});

test('a host that cannot resume the transfer (404, a wrong Content-Range) is skipped; the fill goes on', async (t) => {
  const { list, agent, add, fillLine } = await hosts(t, 2, (urls) => ({
    upstreams: { origin: urls[1]!, hosts: [urls[0]!] },
  }));
  const [regional, origin] = list as [TestOrigin, TestOrigin];
  const answers: Array<[string, (digest: string, bytes: Buffer) => void]> = [
    [
      '404',
      (digest) =>
        origin.statusFor.set(digest, {
          status: 404,
          body: { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] },
        }),
    ],
    // Another blob's bytes: its Content-Range does not end where this blob does.
    ['a wrong Content-Range', (digest, bytes) => origin.lies.set(digest, Buffer.concat([bytes, bytes]))],
  ];
  for (const [what, answer] of answers) {
    const size = 2.5 * MiB;
    const blob = await add(randomBytes(size));
    // The regional breaks after each MiB it sends; the origin cannot resume. The regional,
    // which has not used up its attempts, is asked again from where it broke, twice.
    regional.cutAfter.set(blob.digest, 1 * MiB);
    answer(blob.digest, blob.bytes);
    const r = await within(60_000, `the pull (origin answers ${what})`, fetchBlob(agent, blob.url));
    assert.equal(r.error, null, `origin answers ${what}: ${String(r.error)}`);
    assert.equal(`sha256:${r.sha256}`, blob.digest, what);
    assert.equal(origin.count(origin.gets, blob.digest), 1, `origin answers ${what}: asked once, then skipped`);
    type Leg = { host: string; from: number; to: number };
    const route = ((await fillLine(blob.digest))?.route ?? []) as Leg[];
    assert.deepEqual(
      route.map((leg) => leg.host),
      [regional.url, regional.url, regional.url],
      what,
    );
    const [first, second, third] = route as [Leg, Leg, Leg];
    assert.deepEqual([first.from, second.from, third.from, third.to], [0, first.to, second.to, size], what);
  }
});

test('a first answer the cache cannot use (a 3xx, a 400, a 206) fails that host: the next serves; a 404 is the answer', async (t) => {
  // A regional that failed is left for the origin during its back-off: each case starts afresh.
  const pair = async () => {
    const s = await hosts(t, 2, (urls) => ({ upstreams: { origin: urls[1]!, hosts: [urls[0]!] } }));
    return { ...s, regional: s.list[0]!, origin: s.list[1]! };
  };
  const unusable: Array<[string, { status: number; headers?: Record<string, string>; body?: unknown }]> = [
    ['307', { status: 307, headers: { location: 'https://storage.example.org/blob' } }],
    ['400', { status: 400, body: { errors: [{ code: 'UNSUPPORTED', message: 'no' }] } }],
    ['206 to a plain GET', { status: 206, headers: { 'content-range': 'bytes 0-1/300000' }, body: 'x' }],
  ];
  for (const [what, answer] of unusable) {
    const { regional, origin, agent, add, fillLine } = await pair();
    const blob = await add(randomBytes(300_000));
    regional.statusFor.set(blob.digest, answer);
    const r = await within(30_000, `the pull (regional answers ${what})`, fetchBlob(agent, blob.url));
    assert.equal(r.status, 200, what);
    assert.equal(`sha256:${r.sha256}`, blob.digest, what);
    assert.equal(regional.count(regional.gets, blob.digest), 1, what);
    assert.equal(origin.count(origin.gets, blob.digest), 1, what);
    const route = ((await fillLine(blob.digest))?.route ?? []) as Array<{ host: string }>;
    assert.deepEqual(
      route.map((leg) => leg.host),
      [origin.url],
      what,
    );
  }
  // The regional's 404 is an answer about the blob: relayed, and the origin is not asked.
  const { regional, origin, agent, add } = await pair();
  const gone = await add(randomBytes(1_000));
  regional.statusFor.set(gone.digest, {
    status: 404,
    body: { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] },
  });
  const r404 = await fetchBlob(agent, gone.url);
  assert.equal(r404.status, 404);
  assert.equal(origin.count(origin.gets, gone.digest), 0);
});

test('a host that sent bytes failing the digest check is avoided by the next fill of the blob', async (t) => {
  // DTR 2.3+ list: round robin over both.
  const { list, agent, add } = await hosts(t, 2, () => ({}));
  const [a, b] = list as [TestOrigin, TestOrigin];
  const blob = await add(randomBytes(2 * MiB));
  a.corrupt.add(blob.digest);
  b.corrupt.add(blob.digest);
  const first = await within(30_000, 'first pull', fetchBlob(agent, blob.url));
  assert.notEqual(first.error, null, 'bad bytes: reset');
  const bad = a.count(a.gets, blob.digest) === 1 ? a : b;
  const good = bad === a ? b : a;
  assert.equal(bad.count(bad.gets, blob.digest), 1);
  good.corrupt.delete(blob.digest);
  // Longer than the back-off of an ordinary failure (1 s): bad bytes are penalised for longer.
  await new Promise((r) => setTimeout(r, 1_500));
  // Round robin: one request in between, so that without the penalty the next fill of the
  // blob would start at the host that sent bad bytes again.
  const other = await add(randomBytes(1000));
  assert.equal((await fetchBlob(agent, other.url)).error, null);
  assert.equal(good.count(good.gets, other.digest), 1, 'the turn in between went to the good host');
  const second = await within(30_000, 'second pull', fetchBlob(agent, blob.url));
  assert.equal(second.error, null);
  assert.equal(`sha256:${second.sha256}`, blob.digest);
  assert.equal(bad.count(bad.gets, blob.digest), 1, 'the host that sent bad bytes was not asked first again');
});

test('2.2 form: a tier that keeps failing is left for the origin during its back-off, then asked again', async (t) => {
  const { list, agent, add } = await hosts(t, 2, (urls) => ({ upstreams: { origin: urls[1]!, hosts: [urls[0]!] } }));
  const [regional, origin] = list as [TestOrigin, TestOrigin];
  const first = await add(randomBytes(100_000));
  const second = await add(randomBytes(100_001));
  for (const b of [first, second]) regional.fail503.add(b.digest);
  assert.equal((await fetchBlob(agent, first.url)).error, null);
  assert.deepEqual([regional.count(regional.gets, first.digest), origin.count(origin.gets, first.digest)], [1, 1]);
  // Within its back-off (1 s after one failure) the tier is skipped: the miss goes to the origin first.
  const r = await fetchBlob(agent, second.url);
  assert.equal(`sha256:${r.sha256}`, second.digest);
  assert.equal(regional.count(regional.gets, second.digest), 0, 'the failing tier was asked again within its back-off');
  // Past it, the tier is asked first again, and serves once it has recovered.
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  const third = await add(randomBytes(100_002));
  assert.equal((await fetchBlob(agent, third.url)).error, null);
  assert.deepEqual([regional.count(regional.gets, third.digest), origin.count(origin.gets, third.digest)], [1, 0]);
});

test('2.2 form: after a tier sent bytes failing the digest check, the next fill of the blob goes to the origin', async (t) => {
  const { list, agent, add } = await hosts(t, 2, (urls) => ({ upstreams: { origin: urls[1]!, hosts: [urls[0]!] } }));
  const [regional, origin] = list as [TestOrigin, TestOrigin];
  const blob = await add(randomBytes(2 * MiB));
  // A tier that relays bad bytes every time (its own upstream is broken); the origin is sound.
  regional.corrupt.add(blob.digest);
  regional.cutAfter.set(blob.digest, 2 * MiB - 1);
  const first = await within(30_000, 'first pull', fetchBlob(agent, blob.url));
  assert.notEqual(first.error, null, 'bad bytes: reset');
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const second = await within(30_000, 'second pull', fetchBlob(agent, blob.url));
  assert.equal(second.error, null);
  assert.equal(`sha256:${second.sha256}`, blob.digest);
  assert.equal(regional.count(regional.gets, blob.digest), 1, 'the tier that sent bad bytes was asked first again');
  assert.equal(origin.count(origin.gets, blob.digest), 2);
});

test('upstream answers: a throttling or refusing host is skipped; 4xx about the request are relayed with their codes', async (t) => {
  const { list, agent, add } = await hosts(t, 2, (urls) => ({ upstreams: { origin: urls[1]!, hosts: [urls[0]!] } }));
  const [regional, origin] = list as [TestOrigin, TestOrigin];
  // The regional's answers about the blob first (a host that failed is left during its back-off).
  // A 404 with the host's own code of the same status keeps it.
  const named = await add(randomBytes(100_002));
  regional.statusFor.set(named.digest, {
    status: 404,
    body: { errors: [{ code: 'NAME_UNKNOWN', message: 'no such repository', detail: { name: 'team/app' } }] },
  });
  const nf = await fetchBlob(agent, named.url);
  // As is: the host's code, message and detail, and nothing about which host answered.
  assert.equal(nf.status, 404);
  assert.deepEqual(JSON.parse(nf.body.toString()), {
    errors: [{ code: 'NAME_UNKNOWN', message: 'no such repository', detail: { name: 'team/app' } }],
  });
  // A 401 keeps the host's challenge; one relayed without gets the cache's own (RFC 9110
  // §15.5.2: every 401 carries one), for GET and HEAD.
  const challenged = await add(randomBytes(100_004));
  const theirs = 'Bearer realm="https://elsewhere.test/auth",service="elsewhere"';
  regional.statusFor.set(challenged.digest, { status: 401, headers: { 'www-authenticate': theirs } });
  const kept = await fetchBlob(agent, challenged.url);
  assert.deepEqual([kept.status, kept.headers['www-authenticate']], [401, theirs]);
  const bare = await add(randomBytes(100_005));
  regional.statusFor.set(bare.digest, { status: 401 });
  for (const method of ['GET', 'HEAD'] as const) {
    const ours = await fetchBlob(agent, bare.url, { method });
    assert.equal(ours.status, 401, method);
    assert.match(
      String(ours.headers['www-authenticate']),
      new RegExp(`^Bearer realm="${origin.url}/auth/token",service="[^"]+",error="invalid_token"$`),
      method,
    );
  }
  // The regional throttles: the origin serves.
  const blob = await add(randomBytes(100_000));
  regional.statusFor.set(blob.digest, { status: 429, headers: { 'retry-after': '7' } });
  const r = await within(30_000, 'past a throttling host', fetchBlob(agent, blob.url));
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 1);
  // Both throttle: 429 with the Retry-After, not a gateway error.
  const both = await add(randomBytes(100_001));
  for (const o of list) o.statusFor.set(both.digest, { status: 429, headers: { 'retry-after': '7' } });
  const throttled = await fetchBlob(agent, both.url);
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers['retry-after'], '7');
  assert.equal(JSON.parse(throttled.body.toString()).errors[0].code, 'TOOMANYREQUESTS');
  // A 405 is the host refusing our request: the next host is asked; when every host refuses, 502.
  const refused = await add(randomBytes(100_003));
  for (const o of list)
    o.statusFor.set(refused.digest, { status: 405, body: { errors: [{ code: 'UNSUPPORTED', message: 'no' }] } });
  for (const method of ['GET', 'HEAD'] as const) {
    const rf = await fetchBlob(agent, refused.url, { method });
    assert.equal(rf.status, 502, method);
    if (method === 'GET') assert.equal(JSON.parse(rf.body.toString()).errors[0].code, 'UNAVAILABLE');
  }
  origin.statusFor.delete(refused.digest);
  const past = await fetchBlob(agent, refused.url, { method: 'HEAD' });
  assert.equal(past.status, 200, 'a HEAD past a refusing host');
  assert.equal(origin.count(origin.heads, refused.digest), 2);
});
