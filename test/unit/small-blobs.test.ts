// Small blobs served from memory must follow the store: bounded, least recently used out
// first, and gone the moment the store forgets the blob (eviction, expiry, bad size).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BlobStore } from '../../src/store/blob-store.js';
import { parseDigest } from '../../src/store/digest.js';
import { Layout } from '../../src/store/layout.js';
import { SmallBlobCache } from '../../src/store/small-blobs.js';
import { removeAtExit } from '../../testkit/tmp.js';

test('SmallBlobCache: entry and total bounds, least recently used out first', () => {
  const c = new SmallBlobCache(10, 25);
  c.set('a', Buffer.alloc(10));
  c.set('b', Buffer.alloc(10));
  c.set('big', Buffer.alloc(11));
  assert.equal(c.get('big'), undefined, 'over the entry size');
  c.get('a'); // a is now more recent than b
  c.set('c', Buffer.alloc(10)); // 30 > 25: b goes
  assert.equal(c.get('b'), undefined);
  assert.ok(c.get('a') && c.get('c'));
  assert.equal(c.bytes, 20);
});

test('BlobStore.smallBytes: read once, then from memory; forgotten blobs and bad sizes are not served', async () => {
  const layout = new Layout(join(removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-small-'))), 'registry'));
  const put = async (bytes: Buffer) => {
    const d = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    await mkdir(dirname(layout.blobData(d)), { recursive: true });
    await writeFile(layout.blobData(d), bytes);
    return d;
  };
  const small = await put(Buffer.alloc(4096, 's'));
  const large = await put(Buffer.alloc(100_000, 'l'));
  const short = await put(Buffer.alloc(4096, 't'));
  const store = new BlobStore(layout, { ttlMs: null });
  await store.scan();
  const entry = (await store.lookup(small))!;
  assert.deepEqual(await store.smallBytes(entry), Buffer.alloc(4096, 's'));
  await rm(layout.blobData(small));
  assert.deepEqual(await store.smallBytes(entry), Buffer.alloc(4096, 's'), 'second read from memory');
  store.forget(entry);
  assert.equal(await store.smallBytes(entry), null, 'forgotten: the memory copy went with it');
  assert.equal(await store.smallBytes((await store.lookup(large))!), null, 'too large to keep');
  await truncate(layout.blobData(short), 100);
  const shortEntry = (await store.lookup(short))!;
  assert.equal(await store.smallBytes(shortEntry), null, 'a file of the wrong size is never served');
  assert.equal(await store.lookup(short), null, 'quarantined: not found on disk again at its wrong size');
});
