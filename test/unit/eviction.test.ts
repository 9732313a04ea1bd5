// The Evictor on a real directory: LRU order under maxsize, blobs in use are
// never evicted, a pull by another replica (mtime) is honoured, trash outlives readers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, open, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BlobStore } from '../../src/store/blob-store.js';
import { parseDigest, type Digest } from '../../src/store/digest.js';
import { Evictor, type EvictionReason } from '../../src/store/eviction.js';
import { Layout } from '../../src/store/layout.js';
import { removeAtExit } from '../../testkit/tmp.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function setup(names: string[], size: number) {
  const root = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-evict-')));
  const layout = new Layout(root);
  const digests: Record<string, Digest> = {};
  let t = Date.now() - 100_000;
  for (const name of names) {
    const bytes = Buffer.alloc(size, name);
    const d = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    const path = layout.blobData(d);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    // Pulled in the order given, one second apart.
    t += 1000;
    await utimes(path, new Date(t), new Date(t));
    digests[name] = d;
  }
  const store = new BlobStore(layout, { ttlMs: null });
  await store.scan();
  return { root, layout, store, digests };
}

test('maxsize evicts the least recently pulled first, down to the low watermark', async () => {
  const { layout, store, digests } = await setup(['a', 'b', 'c', 'd', 'e'], 100_000);
  const evicted: Array<[EvictionReason, string]> = [];
  const ev = new Evictor(store, {
    ttlMs: null,
    maxSize: 350_000,
    busy: () => false,
    onEvict: (r, e) => evicted.push([r, e.digest.value]),
  });
  // b is pulled now: it becomes the most recent.
  store.touch((await store.lookup(digests.b!))!);
  await ev.sweep();
  // 500 kB → ≤ 315 kB (90 % of 350 kB): a, c go (oldest), b is spared by its recent pull.
  assert.deepEqual(evicted, [
    ['size', digests.a!.value],
    ['size', digests.c!.value],
  ]);
  assert.equal(store.bytes, 300_000);
  assert.equal(await exists(layout.blobData(digests.d!)), true);
  assert.equal(await exists(layout.blobData(digests.a!)), false);
  assert.equal(await exists(layout.blobData(digests.b!)), true);
  assert.equal(await exists(layout.blobData(digests.e!)), true);
});

test('a blob being read or filled is never evicted', async () => {
  const { layout, store, digests } = await setup(['a', 'b', 'c'], 100_000);
  const reading = await store.open((await store.lookup(digests.a!))!);
  const ev = new Evictor(store, { ttlMs: null, maxSize: 150_000, busy: (d) => d === digests.b!.value });
  await ev.sweep();
  assert.equal(await exists(layout.blobData(digests.a!)), true, 'being read');
  assert.equal(await exists(layout.blobData(digests.b!)), true, 'being filled');
  assert.equal(await exists(layout.blobData(digests.c!)), false, 'the only evictable one went');
  await reading!.release();
  await ev.sweep();
  assert.equal(await exists(layout.blobData(digests.a!)), false, 'evictable once released');
});

/** A store with a 10 s blobttl on its own clock, and a maker of 1000-byte blobs pulled now. */
async function expiringStore(clock: { now: number }) {
  const root = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-expire-')));
  const layout = new Layout(root);
  const store = new BlobStore(layout, { ttlMs: 10_000, now: () => clock.now });
  const mk = async (fill: string) => {
    const bytes = Buffer.alloc(1000, fill);
    const d = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    await mkdir(dirname(layout.blobData(d)), { recursive: true });
    await writeFile(layout.blobData(d), bytes);
    await utimes(layout.blobData(d), new Date(clock.now), new Date(clock.now));
    store.add(d, bytes.length);
    return d;
  };
  return { layout, store, mk };
}

test('expiry: expired blobs go, a pull by another replica (mtime) keeps a blob, trash is emptied after the grace', async () => {
  const clock = { now: Date.now() };
  const { layout, store, mk } = await expiringStore(clock);
  const old = await mk('o');
  const shared = await mk('s');
  const ev = new Evictor(store, {
    ttlMs: 10_000,
    maxSize: null,
    busy: () => false,
    now: () => clock.now,
    trashGraceMs: 5_000,
  });
  assert.equal(ev.periodMs, 5_000, 'min(blobttl / 2, 10 min)');
  clock.now += 11_000;
  // Another replica served `shared` a moment ago: it moved the mtime.
  await utimes(layout.blobData(shared), new Date(clock.now - 1000), new Date(clock.now - 1000));
  assert.equal(await store.lookup(old), null, 'an expired blob is never served, swept or not');
  await ev.sweep();
  assert.equal(await exists(layout.blobData(old)), false);
  assert.equal(await exists(layout.blobData(shared)), true);
  assert.notEqual(await store.lookup(shared), null);
  // The evicted file waits in the trash for readers elsewhere, then goes.
  const trash = join(layout.spoolDir, '..', 'trash');
  assert.equal((await readdir(trash)).length, 1);
  clock.now += 6_000;
  await ev.sweep();
  assert.equal((await readdir(trash)).length, 0);
});

test('lookup: a blob another process of the node keeps pulling is not expired here, before any sweep', async () => {
  const clock = { now: Date.now() };
  const { layout, store, mk } = await expiringStore(clock);
  const hotElsewhere = await mk('h');
  const cold = await mk('c');
  clock.now += 11_000;
  // The other process served it a moment ago, and its touch moved the mtime.
  await utimes(layout.blobData(hotElsewhere), new Date(clock.now - 2_000), new Date(clock.now - 2_000));
  const entry = await store.lookup(hotElsewhere);
  assert.notEqual(entry, null, 'served from the store, not fetched again');
  assert.equal(entry?.lastPull, clock.now - 2_000, 'that pull is ours too from now on');
  assert.equal(await store.lookup(cold), null, 'pulled nowhere within blobttl: expired');
  // A file gone under an expired entry (another replica evicted it) is forgotten.
  await rm(layout.blobData(cold));
  assert.equal(await store.lookup(cold), null);
  assert.equal(store.count, 1);
});

test('a reader that opened a blob keeps reading after another replica evicts it', async () => {
  const { layout, store, digests } = await setup(['a'], 100_000);
  const fh = await open(layout.blobData(digests.a!), 'r');
  const other = new BlobStore(layout, { ttlMs: null });
  await other.scan();
  await new Evictor(other, { ttlMs: null, maxSize: 1, busy: () => false }).sweep();
  assert.equal(await exists(layout.blobData(digests.a!)), false);
  const buf = Buffer.alloc(100_000);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
  assert.equal(bytesRead, 100_000);
  assert.equal(createHash('sha256').update(buf).digest('hex'), digests.a!.hex);
  await fh.close();
  assert.equal(
    (await store.lookup(digests.a!)) === null || (await store.open((await store.lookup(digests.a!))!)) === null,
    true,
    'the first replica treats it as a miss',
  );
});

test('maxsize bounds the disk, trash included; a full disk empties the trash at once', async () => {
  const { layout, store } = await setup(['a', 'b', 'c', 'd', 'e'], 100_000);
  const trash = join(layout.spoolDir, '..', 'trash');
  // Evicted files wait out a long grace for readers elsewhere, unless store + trash would pass maxsize.
  const ev = new Evictor(store, { ttlMs: null, maxSize: 350_000, busy: () => false, trashGraceMs: 3_600_000 });
  await ev.sweep();
  assert.equal(store.bytes, 300_000);
  assert.deepEqual(await readdir(trash), [], 'store 300 kB + trash 200 kB > 350 kB: the trash went');
  // Trash within the cap keeps its grace: 10 × 100 kB, maxsize 950 kB → the store goes to
  // 800 kB; of the 200 kB of trash, the oldest 100 kB goes to bring the total under 950 kB.
  const roomy = await setup(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], 100_000);
  const ev2 = new Evictor(roomy.store, { ttlMs: null, maxSize: 950_000, busy: () => false, trashGraceMs: 3_600_000 });
  await ev2.sweep();
  assert.equal(roomy.store.bytes, 800_000);
  assert.equal((await readdir(join(roomy.layout.spoolDir, '..', 'trash'))).length, 1);
  // …and a full disk empties it whatever the grace.
  const full = await setup(['a', 'b', 'c'], 100_000);
  // Pulled 100 s ago or more: expired under a 1 s blobttl.
  const expiring = new BlobStore(full.layout, { ttlMs: 1_000 });
  await expiring.scan();
  const ev3 = new Evictor(expiring, { ttlMs: 1_000, busy: () => false, maxSize: null, trashGraceMs: 3_600_000 });
  await ev3.sweep();
  const fullTrash = join(full.layout.spoolDir, '..', 'trash');
  assert.equal((await readdir(fullTrash)).length, 3, 'expired: all three in the trash, within their grace');
  ev3.diskFull();
  await waitUntil(async () => (await readdir(fullTrash)).length === 0);
});

async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(await check(), 'in time');
}
