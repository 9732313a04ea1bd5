// A full disk during fills. On an 8 MiB tmpfs made by the test, blobs larger
// than the disk still reach every client complete, nothing partial is published, the
// error is logged once per episode, and caching resumes by itself when space returns.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { startStack } from '../helpers/stack.js';
import { fetchBlob } from '../helpers/http.js';
import { waitFor, within } from '../helpers/deadline.js';
import { smallDisk } from '../helpers/small-disk.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * A stack on the small disk and one blob of `bytes` larger than it, so its fill streams
 * through memory; null where no small disk can be made (not root).
 */
async function passThrough(t: TestContext, bytes: number) {
  const mnt = await smallDisk(t);
  if (mnt === null) return null;
  const s = await startStack(t, { root: join(mnt, 'registry') });
  const blob = s.origin.add(randomBytes(bytes));
  return { s, blob, url: s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest)) };
}

test('disk full mid-fill: clients get complete blobs, nothing partial is published, caching resumes', async (t) => {
  const mnt = await smallDisk(t);
  if (mnt === null) return;
  const s = await startStack(t, { root: join(mnt, 'registry') });
  const layout = new Layout(join(mnt, 'registry'));
  const big = [s.origin.add(randomBytes(20 << 20)), s.origin.add(randomBytes(20 << 20))];
  const urls = await Promise.all(
    big.map(async (b) => s.blobUrl('team/app', b.digest, await s.origin.mint('team/app', b.digest))),
  );
  // Two blobs, each larger than the whole disk, two clients each, at once.
  const results = await within(
    60_000,
    'clients of blobs larger than the disk',
    Promise.all([
      fetchBlob(s.h1, urls[0]!),
      fetchBlob(s.h2, urls[0]!),
      fetchBlob(s.h1, urls[1]!),
      fetchBlob(s.h2, urls[1]!),
    ]),
  );
  results.forEach((r, i) => {
    assert.equal(r.error, null, `client ${i} ended cleanly`);
    assert.equal(`sha256:${r.sha256}`, big[i < 2 ? 0 : 1]!.digest);
  });
  for (const b of big) assert.equal(await exists(layout.blobData(parseDigest(b.digest))), false, 'nothing published');
  assert.deepEqual(await readdir(layout.spoolDir), [], 'no spool left behind');
  let lines = await s.cache.logLines();
  assert.equal(
    lines.filter((l) => String(l.msg).startsWith('disk full')).length,
    1,
    'logged once for the episode, not per fill or chunk',
  );
  assert.equal(lines.filter((l) => l.msg === 'fill streamed through without caching').length, 2);

  // A newcomer while a fill streams through memory gets a fill of its own, not a stalled spool.
  const gate = s.origin.gate(big[0]!.digest, 12 << 20);
  const first = fetchBlob(s.h1, urls[0]!);
  await within(10_000, 'past the disk size', gate.reached);
  await waitFor(10_000, 'the fill went to memory', () => [...s.cache.ctx.inflight.fills()].some((f) => !f.joinable));
  const newcomer = fetchBlob(s.h2, urls[0]!);
  const done = await within(30_000, 'the newcomer completes', newcomer);
  assert.equal(done.error, null);
  assert.equal(`sha256:${done.sha256}`, big[0]!.digest);
  gate.open();
  assert.equal(`sha256:${(await first).sha256}`, big[0]!.digest);

  // Space is back once the failed spools are gone and the last reader has closed its handle
  // on them: the next blob that fits is cached again.
  await waitFor(10_000, 'space back', async () => {
    const fs = await statfs(mnt);
    return fs.bavail * fs.bsize > 4 << 20;
  });
  const small = s.origin.add(randomBytes(1 << 20));
  const r = await fetchBlob(s.h2, s.blobUrl('team/app', small.digest, await s.origin.mint('team/app', small.digest)));
  assert.equal(`sha256:${r.sha256}`, small.digest);
  // Published just after the client's last byte.
  await waitFor(10_000, 'cached again', () => exists(layout.blobData(parseDigest(small.digest))));
  await waitFor(10_000, 'caching resumed, logged', async () =>
    (await s.cache.logLines()).some((l) => l.msg === 'disk has room again: caching resumed'),
  );
  lines = await s.cache.logLines();
  // A pass-through fill whose every client leaves stops, rather than hold memory forever.
  const { request } = await import('undici');
  const ac = new AbortController();
  const res = await request(urls[1]!, { dispatcher: s.h1, signal: ac.signal });
  let got = 0;
  try {
    for await (const chunk of res.body) {
      got += (chunk as Buffer).length;
      if (got > 9 << 20) ac.abort();
    }
  } catch {
    // aborted
  }
  await waitFor(10_000, 'the abandoned fill ended', () => s.cache.ctx.inflight.size === 0);

  // And a big one still streams through, a new episode logged once more.
  const again = await fetchBlob(s.h1, urls[0]!);
  assert.equal(`sha256:${again.sha256}`, big[0]!.digest);
  lines = await s.cache.logLines();
  assert.equal(lines.filter((l) => String(l.msg).startsWith('disk full')).length, 2);
});

test('disk full: health is 200 degraded, not 503 (the node still serves), and ok again once there is room', async (t) => {
  const mnt = await smallDisk(t);
  if (mnt === null) return;
  const s = await startStack(t, { root: join(mnt, 'registry') });
  const filler = join(mnt, 'filler');
  await writeFile(filler, Buffer.alloc(16 << 20)).catch(() => undefined); // ENOSPC once full
  // (A probe result is kept 5 s: each report here asks as if later.)
  const full = await s.cache.health.report(Date.now() + 10_000);
  assert.equal(full.status, 200);
  assert.equal(full.body.status, 'degraded');
  assert.equal(full.body.checks.store.full, true);
  assert.match(full.body.checks.store.detail, /^ENOSPC: no space left on device(?!.*ENOSPC)/);
  const blob = s.origin.add(randomBytes(1 << 20));
  const r = await fetchBlob(s.h1, s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest)));
  assert.equal(`sha256:${r.sha256}`, blob.digest, 'served through, as health says');
  await rm(filler);
  const room = await s.cache.health.report(Date.now() + 20_000);
  assert.deepEqual([room.status, room.body.status, room.body.checks.store.full], [200, 'ok', undefined]);
});

test('disk full: a Range client of a pass-through fill holds no memory below its range, so the fill does not stall', async (t) => {
  // 40 MiB through memory (the disk holds 8), asked for from 30 MiB on. The memory tail
  // pauses the upstream at 16 MiB held: were the client's position 0 until its first read,
  // it would never trim below 16 MiB, and the bytes from 30 MiB on would never come.
  const run = await passThrough(t, 40 << 20);
  if (run === null) return;
  const { s, blob, url } = run;
  const from = 30 << 20;
  const r = await within(
    30_000,
    'the range from 30 MiB of a 40 MiB pass-through fill',
    fetchBlob(s.h1, url, { headers: { Range: `bytes=${from}-` } }),
  );
  assert.equal(r.error, null);
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes ${from}-${(40 << 20) - 1}/${40 << 20}`);
  assert.ok(r.body.equals(blob.bytes.subarray(from)), 'the bytes of the range');
  // The fill's line comes when it settles, just after its client's last byte.
  await waitFor(10_000, 'it was a pass-through fill', async () =>
    (await s.cache.logLines()).some((l) => l.msg === 'fill streamed through without caching'),
  );
});

test('disk full: a Range client whose range ends early in a pass-through fill gets it; the fill is not held for it', async (t) => {
  // 40 MiB through memory. The client's last byte waits for the verdict; were its place at
  // the end of its range still counted, the memory tail would keep everything after it,
  // pause the upstream at 16 MiB, and the verdict would never come.
  const run = await passThrough(t, 40 << 20);
  if (run === null) return;
  const { s, blob, url } = run;
  const r = await within(
    30_000,
    'the range 1000-1999 of a 40 MiB pass-through fill',
    fetchBlob(s.h2, url, { headers: { Range: 'bytes=1000-1999' } }),
  );
  assert.equal(r.error, null);
  assert.equal(r.status, 206);
  assert.ok(r.body.equals(blob.bytes.subarray(1000, 2000)), 'the bytes of the range');
  await waitFor(10_000, 'it was a pass-through fill', async () =>
    (await s.cache.logLines()).some((l) => l.msg === 'fill streamed through without caching'),
  );
});

test('disk full: a client that stops reading a pass-through fill is cut off; the others get the blob', async (t) => {
  // 48 MiB through memory: the tail holds what the slowest client has not read, and pauses
  // the upstream at 16 MiB. A client that reads nothing would hold every other one until its
  // idle timeout (60 s); it is cut off after PASS_THROUGH_STALL_MS (5 s) instead.
  const run = await passThrough(t, 48 << 20);
  if (run === null) return;
  const { s, blob, url } = run;
  // Both join the fill before the disk fills (a newcomer after that gets a fill of its own).
  const gate = s.origin.gate(blob.digest, 1 << 20);
  const stalled = await request(url, { dispatcher: s.h1 });
  assert.equal(stalled.statusCode, 200);
  await within(10_000, 'the first MiB sent', gate.reached);
  const reader = fetchBlob(s.h2, url);
  await waitFor(10_000, 'two clients on the fill', () =>
    [...s.cache.ctx.inflight.fills()].some((f) => f.waiters === 2),
  );
  gate.open();
  const r = await within(30_000, 'the reading client, well before the idle timeout', reader);
  assert.equal(r.error, null);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  const cut = (await s.cache.logLines()).find((l) => String(l.msg).includes('stopped reading'));
  assert.equal(cut?.clients, 1, 'one client cut off, and said so');
  // The stalled client, when it reads, gets what was sent before the cut and then an error:
  // never a clean end on a partial body.
  let got = 0;
  const ended = await within(
    30_000,
    'the stalled client reads',
    (async () => {
      for await (const chunk of stalled.body) {
        got += (chunk as Buffer).length;
      }
    })().then(
      () => 'clean end',
      () => 'error',
    ),
  );
  assert.equal(ended, 'error');
  assert.ok(got < 48 << 20, `${got} bytes before the reset`);
});
