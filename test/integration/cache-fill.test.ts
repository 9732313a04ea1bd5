// Collapsed misses. One upstream GET however many clients; every client,
// whenever it joins, streams bytes as they arrive; leaving does not stop the fill; bad
// bytes are never published and their clients are reset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readdir } from 'node:fs/promises';
import { request } from 'undici';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { startStack } from '../helpers/stack.js';
import { fetchBlob } from '../helpers/http.js';
import { within, waitFor } from '../helpers/deadline.js';

/** The message of a log line's error (logged as an object: type, message, stack). */
const errText = (l: Record<string, unknown>): string =>
  String((l.err as { message?: unknown } | undefined)?.message ?? l.err);

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

test('50 concurrent clients of one cold blob cause exactly one upstream GET', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(6 << 20));
  const token = await s.origin.mint('team/app', blob.digest);
  // Hold the upstream at 1 MiB so all 50 are certainly waiting on the same fill.
  const gate = s.origin.gate(blob.digest, 1 << 20);
  const clients = Array.from({ length: 50 }, (_, i) =>
    fetchBlob(i % 2 ? s.h2 : s.h1, s.blobUrl('team/app', blob.digest, token)),
  );
  await within(10_000, 'gate reached', gate.reached);
  await waitFor(10_000, '50 waiters', () => [...s.cache.ctx.inflight.fills()][0]?.waiters === 50);
  gate.open();
  const results = await within(60_000, 'all clients', Promise.all(clients));
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.error, null);
    assert.equal(`sha256:${r.sha256}`, blob.digest);
  }
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
  // A request's line is written once its response has ended, which the client may see first.
  const outcomes = await waitFor(10_000, '50 request lines', async () => {
    const lines = (await s.cache.logLines()).filter((l) => l.msg === 'request');
    return lines.length === 50 ? lines.map((l) => l.outcome) : undefined;
  });
  assert.equal(outcomes.filter((o) => o === 'miss').length, 1);
  assert.equal(outcomes.filter((o) => o === 'joined').length, 49);
  // Published just after the clients' last byte (the verdict releases it; the fsync follows).
  await waitFor(10_000, 'published', () => exists(s.cache.ctx.store.layout.blobData(parseDigest(blob.digest))));
});

test('a late joiner gets every byte; a range on a fill in progress is served from what arrived, its last byte after the verdict', async (t) => {
  const s = await startStack(t);
  const bytes = randomBytes(4 << 20);
  const blob = s.origin.add(bytes);
  const token = await s.origin.mint('team/app', blob.digest);
  const half = 2 << 20;
  const gate = s.origin.gate(blob.digest, half);
  const early = fetchBlob(s.h1, s.blobUrl('team/app', blob.digest, token));
  await within(10_000, 'gate reached', gate.reached);
  const fill = await waitFor(10_000, 'fill', () => [...s.cache.ctx.inflight.fills()][0]);
  // A range inside what arrived: everything but its own last byte at once; that byte only
  // once the whole blob has verified, so the client can never end cleanly on unverified bytes.
  let rangeGot = 0;
  let rangeEnded = false;
  const rangeDone = fetchBlob(s.h2, s.blobUrl('team/app', blob.digest, token), {
    headers: { range: 'bytes=1000-1999' },
    received: (n) => (rangeGot = n),
  }).finally(() => (rangeEnded = true));
  await waitFor(10_000, 'the range has all but its last byte while upstream is held', () => rangeGot === 999);
  // A suffix range beyond what arrived must wait; start it now and check it after the gate.
  const tail = fetchBlob(s.h1, s.blobUrl('team/app', blob.digest, token), { headers: { range: 'bytes=-100' } });
  const late = fetchBlob(s.h2, s.blobUrl('team/app', blob.digest, token));
  await waitFor(10_000, '4 waiters', () => fill.waiters === 4);
  assert.equal(rangeEnded, false, 'the range did not end before the blob was verified');
  assert.equal(rangeGot, 999);
  gate.open();
  const [e, l, tl, r] = await within(30_000, 'clients', Promise.all([early, late, tail, rangeDone]));
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes 1000-1999/${bytes.length}`);
  assert.deepEqual(r.body, bytes.subarray(1000, 2000));
  assert.equal(`sha256:${e.sha256}`, blob.digest);
  assert.equal(`sha256:${l.sha256}`, blob.digest);
  assert.equal(tl.status, 206);
  assert.deepEqual(tl.body, bytes.subarray(bytes.length - 100));
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
});

test('a lone Range client whose range ends early in a cold blob larger than the ring gets its range, and the fill publishes', async (t) => {
  const s = await startStack(t);
  // 16 MiB: more than the ring and the upstream chunks it may hold. The client's last byte
  // waits for the verdict; were its place at the end of its range still counted as a reader
  // in the ring, the ring would keep those bytes for it, the upstream would stop, and the
  // verdict would never come.
  const bytes = randomBytes(16 << 20);
  const blob = s.origin.add(bytes);
  const token = await s.origin.mint('team/app', blob.digest);
  for (const [proto, range] of [
    [s.h1, 'bytes=1000-1999'],
    [s.h2, 'bytes=0-0'],
  ] as const) {
    const r = await within(
      30_000,
      `the range ${range}`,
      fetchBlob(proto, s.blobUrl('team/app', blob.digest, token), { headers: { range } }),
    );
    assert.equal(r.error, null);
    assert.equal(r.status, 206);
    const [from, to] = range.slice(6).split('-').map(Number) as [number, number];
    assert.deepEqual(r.body, bytes.subarray(from, to + 1));
    if (range === 'bytes=1000-1999') {
      await waitFor(10_000, 'the blob published', async () =>
        (await s.cache.logLines()).some((l) => l.msg === 'fill published' && l.digest === blob.digest),
      );
    }
  }
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
});

test('a client that stops reading does not stop the fill: the blob is stored, then the client reads it all', async (t) => {
  const s = await startStack(t);
  const path = (digest: string) => new Layout(s.cache.root).blobData(parseDigest(digest));
  for (const agent of [s.h1, s.h2]) {
    // 48 MiB: far more than the ring, the upstream chunks it may hold and the socket buffers,
    // so the fill would wait for this client were a stalled reader kept in memory.
    const bytes = randomBytes(48 << 20);
    const blob = s.origin.add(bytes);
    const res = await request(s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest)), {
      dispatcher: agent,
    });
    assert.equal(res.statusCode, 200);
    // The client reads nothing until the blob is published: well before its idle timeout (60 s).
    await waitFor(15_000, 'published while the client is stalled', () => exists(path(blob.digest)));
    const body = Buffer.concat((await within(30_000, 'the stalled client reads', res.body.toArray())) as Buffer[]);
    assert.ok(body.equals(bytes), 'every byte, in order');
    assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
  }
});

test('a client that aborts midway does not disturb the others or the fill', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(8 << 20));
  const token = await s.origin.mint('team/app', blob.digest);
  const gate = s.origin.gate(blob.digest, 3 << 20);
  const url = s.blobUrl('team/app', blob.digest, token);
  const steady = [fetchBlob(s.h1, url), fetchBlob(s.h2, url)];
  const quitters = [s.h1, s.h2].map(async (agent) => {
    const ac = new AbortController();
    const res = await request(url, { dispatcher: agent, signal: ac.signal });
    let got = 0;
    try {
      for await (const chunk of res.body) {
        got += (chunk as Buffer).length;
        if (got >= 1 << 20) ac.abort();
      }
    } catch {
      // aborted, as intended
    }
    return got;
  });
  await within(10_000, 'gate reached', gate.reached);
  const got = await within(10_000, 'quitters read 1 MiB and left', Promise.all(quitters));
  assert.ok(got.every((n) => n >= 1 << 20 && n < 8 << 20));
  gate.open();
  for (const r of await within(30_000, 'steady clients', Promise.all(steady))) {
    assert.equal(r.error, null);
    assert.equal(`sha256:${r.sha256}`, blob.digest);
  }
  // The fill finished for the cache too: the next pull is a hit.
  const again = await fetchBlob(s.h1, url);
  assert.equal(`sha256:${again.sha256}`, blob.digest);
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
});

test('the fill goes on when every client has left, and publishes', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(2 << 20));
  const token = await s.origin.mint('team/app', blob.digest);
  const gate = s.origin.gate(blob.digest, 1 << 20);
  const ac = new AbortController();
  const res = await request(s.blobUrl('team/app', blob.digest, token), { dispatcher: s.h1, signal: ac.signal });
  await within(10_000, 'gate', gate.reached);
  ac.abort();
  await res.body.dump().catch(() => undefined);
  gate.open();
  const path = new Layout(s.cache.root).blobData(parseDigest(blob.digest));
  await waitFor(10_000, 'published', () => exists(path));
  const hit = await fetchBlob(s.h2, s.blobUrl('team/app', blob.digest, token));
  assert.equal(`sha256:${hit.sha256}`, blob.digest);
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
});

test('an upstream serving wrong bytes: nothing published, clients reset, next request fetches again', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(3 << 20));
  const token = await s.origin.mint('team/app', blob.digest);
  s.origin.corrupt.add(blob.digest);
  const url = s.blobUrl('team/app', blob.digest, token);
  const results = await within(
    30_000,
    'corrupt fill',
    Promise.all([fetchBlob(s.h1, url), fetchBlob(s.h2, url), fetchBlob(s.h1, url)]),
  );
  for (const r of results) {
    assert.equal(r.status, 200, 'headers went out before the digest could be known');
    assert.notEqual(r.error, null, 'the stream was reset, never ended cleanly');
    assert.ok(r.body.length < 3 << 20, 'the last byte was held back');
  }
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
  const path = new Layout(s.cache.root).blobData(parseDigest(blob.digest));
  assert.equal(await exists(path), false, 'nothing published');
  const lines = await s.cache.logLines();
  assert.ok(
    lines.some(
      (l) =>
        l.msg === 'fill failed' && l.outcome === 'digest-mismatch' && errText(l).includes('do not match the digest'),
    ),
  );
  // Each client's line counts the bytes it was sent before the reset (never the held-back last).
  const logged = lines.filter((l) => l.msg === 'request' && l.digest === blob.digest).map((l) => Number(l.bytes));
  assert.equal(logged.length, 3);
  assert.ok(
    logged.every((n) => n > 0 && n < 3 << 20),
    `bytes logged: ${logged.join(', ')}`,
  );
  const sum = (ns: number[]) => ns.reduce((a, b) => a + b, 0);
  assert.ok(sum(logged) >= sum(results.map((r) => r.body.length)), 'at least what the clients received');
  // Failures are not cached: the next request fetches again, and succeeds once upstream is fixed.
  s.origin.corrupt.delete(blob.digest);
  const ok = await fetchBlob(s.h2, url);
  assert.equal(ok.error, null);
  assert.equal(`sha256:${ok.sha256}`, blob.digest);
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 2);
  // Published after the clients' last byte (the verdict releases them; fsync and link follow).
  await waitFor(10_000, 'published', () => exists(path));
});

test('upstream errors are relayed: 404 BLOB_UNKNOWN, and UNAVAILABLE when every upstream fails', async (t) => {
  const s = await startStack(t);
  const unknown = `sha256:${'d'.repeat(64)}`;
  const unknownUrl = s.blobUrl('team/app', unknown, await s.origin.mint('team/app', unknown));
  const r = await fetchBlob(s.h1, unknownUrl);
  assert.equal(r.status, 404);
  assert.equal(JSON.parse(r.body.toString()).errors[0].code, 'BLOB_UNKNOWN');
  // A HEAD's Content-Length, if any, is the GET's (RFC 9110 §8.6); the GET relayed the
  // upstream's body, which the upstream's answer to a HEAD does not show.
  for (const agent of [s.h1, s.h2]) {
    const head = await fetchBlob(agent, unknownUrl, { method: 'HEAD' });
    assert.equal(head.status, 404);
    const length = head.headers['content-length'];
    assert.ok(length === undefined || Number(length) === r.body.length, `HEAD ${String(length)}, GET ${r.body.length}`);
  }
  const blob = s.origin.add(randomBytes(1000));
  s.origin.fail503.add(blob.digest);
  const u = await fetchBlob(s.h2, s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest)));
  assert.equal(u.status, 502);
  assert.equal(JSON.parse(u.body.toString()).errors[0].code, 'UNAVAILABLE');
});

test('a fill that fails before streaming leaves no spool behind: the retry is fetched at once', async (t) => {
  const s = await startStack(t);
  const bytes = randomBytes(100_000);
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const url = s.blobUrl('team/app', digest, await s.origin.mint('team/app', digest));
  assert.equal((await fetchBlob(s.h1, url)).status, 404, 'not at the origin yet');
  s.origin.add(bytes);
  // A spool left by the failed fill would make this wait (follow a spool nobody writes).
  const r = await within(5_000, 'the retry', fetchBlob(s.h2, url));
  assert.equal(`sha256:${r.sha256}`, digest);
});

test('close mid-fill: the abandoned fill has let go of its spool by the time close returns', async (t) => {
  const s = await startStack(t);
  const layout = new Layout(s.cache.root);
  const blob = s.origin.add(randomBytes(8 << 20));
  const gate = s.origin.gate(blob.digest, 2 << 20);
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  // The client leaves (so the drain has nothing to wait for); the fill goes on, held at 2 MiB.
  const ac = new AbortController();
  const res = await request(url, { dispatcher: s.h1, signal: ac.signal });
  await within(10_000, 'the origin sent 2 MiB', gate.reached);
  ac.abort();
  await res.body.dump().catch(() => undefined);
  await waitFor(10_000, 'a spool exists', async () => (await readdir(layout.spoolDir).catch(() => [])).length > 0);
  assert.equal(s.cache.ctx.inflight.size, 1, 'the fill is running');
  await s.cache.close();
  // Nothing is left for the caller to trip over when it removes the root next.
  assert.deepEqual(await readdir(layout.spoolDir), [], 'no spool file left');
  assert.equal(await exists(layout.blobData(parseDigest(blob.digest))), false, 'nothing published');
  gate.open();
});
