// The miss path's order of events: the digest verdict releases a client's last byte; the
// fsync and the publication come after, off the client's path, and a crash in between
// publishes nothing. A lying upstream ends every client's stream in a reset, small blobs
// (buffered whole, hashed on the main thread) included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { access, readdir } from 'node:fs/promises';
import { createTestCa } from '../../testkit/pki.js';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin } from '../helpers/origin.js';
import { ringBuffers } from '../../src/fill/ring-buffers.js';
import { SMALL_BLOB_MAX } from '../../src/fill/small-blob.js';
import { scrape } from '../helpers/prom.js';
import { spoolBytes } from '../helpers/spool.js';
import { startStack } from '../helpers/stack.js';
import { waitFor, within } from '../helpers/deadline.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );
const spoolFiles = async (root: string) =>
  (await readdir(new Layout(root).spoolDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.'));

/** Long enough that nothing is published while the test looks. */
const HELD_PUBLISH_MS = 120_000;

test('a client gets its last byte before the spool is made durable and published', async (t) => {
  const s = await startStack(t, {}, { publishDelayMs: HELD_PUBLISH_MS });
  for (const size of [4 << 10, 3 << 20]) {
    const blob = s.origin.add(randomBytes(size));
    const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
    const r = await within(30_000, `client of ${size} bytes`, fetchBlob(s.h2, url));
    assert.equal(r.error, null);
    assert.equal(`sha256:${r.sha256}`, blob.digest);
    const final = new Layout(s.cache.root).blobData(parseDigest(blob.digest));
    if (size > SMALL_BLOB_MAX) {
      // The worker holds the fsync: the client has every byte, and the blob is not published yet.
      assert.equal(await exists(final), false, `${size}: not published before the fsync`);
      assert.ok((await spoolFiles(s.cache.root)).length > 0, 'its spool is still there');
      // A second client meanwhile joins the fill, verified already: no second upstream GET.
      const again = await fetchBlob(s.h1, url);
      assert.equal(`sha256:${again.sha256}`, blob.digest);
    }
    assert.equal(s.origin.count(s.origin.gets, blob.digest), 1);
  }
});

test('a blob of up to 1 MiB fills through memory, nothing on disk before its verdict; one byte more goes through the worker', async (t) => {
  const s = await startStack(t, {
    extraHttp: '  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n',
  });
  const upstreamBytes = async () =>
    (await scrape(`${s.cache.debugUrl!}/metrics`)).sum('dtr_cache_upstream_bytes_total') ?? 0;
  const HELD_AT = 256 << 10;
  const MiB = 1 << 20;
  for (const size of [MiB + 1, MiB]) {
    const blob = s.origin.add(randomBytes(size));
    const gate = s.origin.gate(blob.digest, HELD_AT);
    const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
    const before = await upstreamBytes();
    const pull = fetchBlob(s.h2, url);
    await within(10_000, 'origin reached', gate.reached);
    await waitFor(10_000, 'the held bytes reached the cache', async () => (await upstreamBytes()) - before >= HELD_AT);
    if (size > MiB) {
      // The worker writes what it has: the first bytes are on disk while the rest is held.
      await waitFor(10_000, 'first bytes on disk', async () => (await spoolBytes(s.cache.root, blob.digest)) > 0);
    } else {
      assert.equal(await spoolBytes(s.cache.root, blob.digest), 0, 'no data file while the body is in memory');
    }
    gate.open();
    const r = await within(30_000, `client of ${size} bytes`, pull);
    assert.equal(`sha256:${r.sha256}`, blob.digest);
    const final = new Layout(s.cache.root).blobData(parseDigest(blob.digest));
    await waitFor(10_000, `${size}: published`, () => exists(final));
    const settled = await waitFor(10_000, `${size}: the fill's log line`, async () =>
      (await s.cache.logLines()).find((l) => l.msg === 'fill published' && l.digest === blob.digest),
    );
    assert.equal(settled.through, size > MiB ? 'worker' : 'memory', `${size}: the fill's log line names its path`);
  }
});

test('a small fill with a stalled upstream writes what it has for followers in other processes', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(1 << 20));
  s.origin.stallAfter.set(blob.digest, 512 << 10);
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  void fetchBlob(s.h2, url).catch(() => undefined);
  // Written within a second or so while the upstream is silent, never to be verified here.
  await waitFor(10_000, 'the bytes received are in the data file', async () => {
    return (await spoolBytes(s.cache.root, blob.digest)) === 512 << 10;
  });
  assert.equal(await exists(new Layout(s.cache.root).blobData(parseDigest(blob.digest))), false);
});

test('a crash between the last byte and the publication publishes nothing; the next request fetches again', async (t) => {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cfg = await writeConfig({ upstreams: [origin.url], cas: [ca.certPath], tls: await ca.issue('cache') });
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(2 << 20));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const final = new Layout(cfg.root).blobData(parseDigest(blob.digest));

  const held = await spawnCache(t, cfg.path, cfg.root, { DTR_CACHE_TEST_PUBLISH_DELAY_MS: String(HELD_PUBLISH_MS) });
  const first = await within(30_000, 'first pull', fetchBlob(agent, `${held.url}${path}`));
  assert.equal(`sha256:${first.sha256}`, blob.digest, 'the client got every verified byte');
  assert.equal(await exists(final), false);
  await held.stop('SIGKILL');
  assert.equal(await exists(final), false, 'nothing published by the crash');

  const restarted = await spawnCache(t, cfg.path, cfg.root);
  const second = await within(30_000, 'pull after restart', fetchBlob(agent, `${restarted.url}${path}`));
  assert.equal(`sha256:${second.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 2, 'fetched again, not served from the dead spool');
  await waitFor(10_000, 'published after the restart', () => exists(final));
  await waitFor(10_000, 'no spool left', async () => (await spoolFiles(cfg.root)).length === 0);
});

test('a lying upstream resets every client, whatever the size: small blobs and empty bodies included', async (t) => {
  const s = await startStack(t);
  // [real size, size of the lie]: the lie keeps the length (flipped bytes) or is empty.
  const cases: Array<[number, 'flip' | 'empty']> = [
    [1, 'flip'],
    [4 << 10, 'flip'],
    [64 << 10, 'flip'],
    [(64 << 10) + 1, 'flip'],
    [1 << 20, 'flip'],
    [(1 << 20) + 1, 'flip'],
    [3 << 20, 'flip'],
    [4 << 10, 'empty'],
  ];
  for (const [size, lie] of cases) {
    const bytes = randomBytes(size);
    const blob = s.origin.add(bytes);
    const flipped = Buffer.from(bytes);
    flipped[size - 1] = flipped[size - 1]! ^ 0xff;
    s.origin.lies.set(blob.digest, lie === 'empty' ? Buffer.alloc(0) : flipped);
    const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
    const results = await within(30_000, `${size} ${lie}`, Promise.all([fetchBlob(s.h1, url), fetchBlob(s.h2, url)]));
    for (const r of results) {
      if (lie === 'empty') {
        // No byte to hold back, and headers alone would complete it: they wait for the verdict.
        assert.equal(r.status, 502, `${size} ${lie}: an error answer, not an empty blob`);
        assert.equal(
          (JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code,
          'UNAVAILABLE',
        );
        continue;
      }
      assert.equal(r.status, 200, `${size} ${lie}: headers went out before the verdict`);
      assert.notEqual(r.error, null, `${size} ${lie}: reset, never a clean end`);
      assert.ok(r.body.length < size, `${size} ${lie}: the last byte was held back`);
    }
    assert.equal(await exists(new Layout(s.cache.root).blobData(parseDigest(blob.digest))), false);
  }
  // The empty blob itself is served: a Content-Length of 0 is right for its digest only.
  const empty = s.origin.add(Buffer.alloc(0));
  assert.equal(empty.digest, `sha256:${createHash('sha256').digest('hex')}`);
  const r = await fetchBlob(s.h2, s.blobUrl('team/app', empty.digest, await s.origin.mint('team/app', empty.digest)));
  assert.equal(r.status, 200);
  assert.equal(r.error, null);
  assert.equal(r.body.length, 0);
});

test('ring memory is reused: twenty fills one after another allocate at most two ring buffers, and every blob is right', async (t) => {
  const s = await startStack(t);
  const before = ringBuffers.created;
  for (let i = 0; i < 20; i++) {
    const blob = s.origin.add(randomBytes((5 << 20) + i));
    const r = await fetchBlob(
      i % 2 === 0 ? s.h1 : s.h2,
      s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest)),
    );
    assert.equal(`sha256:${r.sha256}`, blob.digest);
    // The fill gives its ring back once it has settled and its reader has gone.
    await waitFor(10_000, 'the fill settled', () => s.cache.ctx.inflight.size === 0);
  }
  assert.ok(ringBuffers.created - before <= 2, `${ringBuffers.created - before} ring buffers for 20 fills`);
});
