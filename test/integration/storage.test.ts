// Storage with real processes: blobttl counts from the last pull and survives a restart;
// maxsize evicts least recently pulled; a distribution volume is served warm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createTestCa } from '../../testkit/pki.js';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { spawnCache, startTestCache } from '../helpers/cache.js';
import { originConfig } from '../helpers/stack.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin } from '../helpers/origin.js';
import { waitFor } from '../helpers/deadline.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

test('blobttl: counts from the last pull, survives a restart, and the sweep deletes', async (t) => {
  const { ca, origin, cfg } = await originConfig(t, { blobttl: '3s' });
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const layout = new Layout(cfg.root);
  const a = origin.add(randomBytes(10_000));
  const b = origin.add(randomBytes(10_000));
  const url = async (base: string, digest: string) =>
    `${base}/v2/team/app/blobs/${digest}?token=${await origin.mint('team/app', digest)}`;

  let cache = await spawnCache(t, cfg.path, cfg.root);
  const t0 = Date.now();
  for (const blob of [a, b]) assert.equal((await fetchBlob(agent, await url(cache.url, blob.digest))).status, 200);
  await sleepUntil(t0 + 1500);
  // Pulling a refreshes it: its 3 s now count from here.
  assert.equal((await fetchBlob(agent, await url(cache.url, a.digest))).status, 200);
  assert.equal(origin.count(origin.gets, a.digest), 1, 'a hit');
  // Restart in between: the last-pull times must come back from disk.
  assert.equal(await cache.stop('SIGTERM'), 0);
  cache = await spawnCache(t, cfg.path, cfg.root);
  await sleepUntil(t0 + 3700);
  // b was last pulled at t0: expired, never served from disk. a was pulled at t0+1.5 s: still fresh.
  const rb = await fetchBlob(agent, await url(cache.url, b.digest));
  assert.equal(`sha256:${rb.sha256}`, b.digest);
  assert.equal(origin.count(origin.gets, b.digest), 2, 'b had expired: fetched again');
  const ra = await fetchBlob(agent, await url(cache.url, a.digest));
  assert.equal(`sha256:${ra.sha256}`, a.digest);
  assert.equal(origin.count(origin.gets, a.digest), 1, 'a was still fresh after the restart');
  // Nobody pulls a again: the sweep (every 1.5 s) deletes it from disk.
  await waitFor(8_000, 'a swept from disk', async () => !(await exists(layout.blobData(parseDigest(a.digest)))));
  await waitFor(3_000, 'eviction logged', () =>
    cache.lines.some((l) => l.msg === 'blob evicted' && l.digest === a.digest && l.reason === 'expired'),
  );
});

test('maxsize: the least recently pulled blob is evicted first; the next pull of it is a miss', async (t) => {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cache = await startTestCache(t, {
    upstreams: [origin.url],
    cas: [ca.certPath],
    tls: await ca.issue('cache'),
    extraOptions: '          maxsize: 1MB\n',
  });
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());
  const blobs = [1, 2, 3, 4].map(() => origin.add(randomBytes(300_000)));
  const pull = async (i: number) => {
    const blob = blobs[i]!;
    const r = await fetchBlob(
      agent,
      `${cache.url}/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`,
    );
    assert.equal(`sha256:${r.sha256}`, blob.digest);
    // Published just after the client's last byte; the next pull must find it on disk.
    await waitFor(5_000, `blob ${i} stored`, () => exists(new Layout(cache.root).blobData(parseDigest(blob.digest))));
  };
  await pull(0);
  await pull(1);
  await pull(2);
  await pull(0); // 0 is now more recent than 1 and 2
  await pull(3); // 1.2 MB > 1 MB: evict down to 900 kB, least recently pulled first: 1
  const layout = new Layout(cache.root);
  await waitFor(5_000, 'blob 1 evicted', async () => !(await exists(layout.blobData(parseDigest(blobs[1]!.digest)))));
  for (const i of [0, 2, 3]) assert.ok(await exists(layout.blobData(parseDigest(blobs[i]!.digest))), `blob ${i} kept`);
  assert.equal(cache.ctx.store.bytes, 900_000);
  await pull(1);
  assert.equal(origin.count(origin.gets, blobs[1]!.digest), 2, 'evicted blob fetched again');
  assert.equal(origin.count(origin.gets, blobs[0]!.digest), 1);
});

test('a registry volume laid out by distribution is served as a warm cache', async (t) => {
  const { ca, origin, cfg } = await originConfig(t);
  // What `registry` (distribution) leaves on disk: blobs/…/data plus repositories/ links.
  const bytes = randomBytes(200_000);
  const hex = createHash('sha256').update(bytes).digest('hex');
  const v2 = join(cfg.root, 'docker', 'registry', 'v2');
  await mkdir(join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex), { recursive: true });
  await writeFile(join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), bytes);
  const link = join(v2, 'repositories', 'team', 'app', '_layers', 'sha256', hex, 'link');
  await mkdir(dirname(link), { recursive: true });
  await writeFile(link, `sha256:${hex}`);
  await mkdir(join(v2, 'blobs', 'sha256', 'ab', 'ab'.repeat(32)), { recursive: true }); // a dir with no data: skipped
  const cache = await spawnCache(t, cfg.path, cfg.root);
  assert.equal(cache.lines.find((l) => l.msg === 'store indexed')?.blobs, 1);
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  origin.add(bytes);
  const r = await fetchBlob(
    agent,
    `${cache.url}/v2/team/app/blobs/sha256:${hex}?token=${await origin.mint('team/app', `sha256:${hex}`)}`,
  );
  assert.equal(r.status, 200);
  assert.equal(r.sha256, hex);
  assert.equal(origin.count(origin.gets, `sha256:${hex}`), 0, 'served from the volume, no upstream fetch');
});

test('an expired copy pulled again is fetched again and then counts as pulled now, after a restart too', async (t) => {
  const { ca, origin, cfg } = await originConfig(t, { blobttl: '24h' });
  // A copy on disk last pulled two days ago (a registry volume, or a node that was down):
  // expired, and the sweep (every 10 minutes here) has not removed it yet.
  const blob = origin.add(randomBytes(20_000));
  const data = new Layout(cfg.root).blobData(parseDigest(blob.digest));
  await mkdir(dirname(data), { recursive: true });
  await writeFile(data, blob.bytes);
  const old = new Date(Date.now() - 48 * 3600_000);
  await utimes(data, old, old);
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const url = async (base: string) =>
    `${base}/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;

  let cache = await spawnCache(t, cfg.path, cfg.root);
  const pulledAt = Date.now();
  const first = await fetchBlob(agent, await url(cache.url));
  assert.equal(`sha256:${first.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 1, 'expired: fetched again');
  // That pull is the blob's last pull, on disk as on every other process of the node.
  await waitFor(5_000, 'the pull written to the file', async () => (await stat(data)).mtimeMs >= pulledAt - 1000);
  assert.equal(await cache.stop('SIGTERM'), 0);
  cache = await spawnCache(t, cfg.path, cfg.root);
  const again = await fetchBlob(agent, await url(cache.url));
  assert.equal(`sha256:${again.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 1, 'pulled a moment ago: a hit after the restart');
});

test('storage.delete.enabled: false never deletes, and says so at start', async (t) => {
  const { ca, origin, cfg } = await originConfig(t, { deleteEnabled: false });
  const cache = await spawnCache(t, cfg.path, cfg.root);
  assert.ok(
    cache.lines.some((l) => l.level === 40 && String(l.msg).includes('never deletes')),
    'a warning at start',
  );
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(10_000));
  const r = await fetchBlob(
    agent,
    `${cache.url}/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`,
  );
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  await waitFor(5_000, 'kept', () => exists(new Layout(cfg.root).blobData(parseDigest(blob.digest))));
  assert.ok(!cache.lines.some((l) => l.msg === 'blob evicted'));
});
