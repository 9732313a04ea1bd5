// A fill's claim on a real store root. A request looks the blob up, misses, and starts a
// fill; meanwhile another process of the node (or a replica) publishes the blob and lets
// its claim go, so the fill's claim is created. The fill then reads the published copy
// instead of fetching the blob a second time, and leaves no claim behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { claimSpool, followReplica } from '../../src/fill/claim.js';
import type { FillDeps } from '../../src/fill/deps.js';
import { Signal } from '../../src/fill/signal.js';
import type { WorkerPool } from '../../src/pool.js';
import { BlobStore } from '../../src/store/blob-store.js';
import { parseDigest } from '../../src/store/digest.js';
import { Layout } from '../../src/store/layout.js';
import { SpoolDir } from '../../src/store/spool.js';
import { removeAtExit } from '../../testkit/tmp.js';

test('claim: a blob published between the lookup and the claim is read from its copy, not fetched again', async () => {
  const layout = new Layout(join(removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-claim-'))), 'registry'));
  const store = new BlobStore(layout, { ttlMs: null });
  const spools = new SpoolDir(layout);
  const bytes = randomBytes(100_000);
  const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  assert.equal(await store.lookup(digest), null, 'the request missed');
  // Another process publishes it now (its claim is already gone).
  const finalPath = layout.blobData(digest);
  await mkdir(dirname(finalPath), { recursive: true });
  await writeFile(finalPath, bytes);

  const deps = {
    store,
    spools,
    log: pino({ level: 'silent' }),
    disk: { full: false },
    directWrites: false,
    pool: {} as WorkerPool,
  } satisfies FillDeps;
  const ctx = { deps, digest, finalPath, progress: new Signal() };
  const claim = await claimSpool(ctx);
  assert.equal(claim.kind, 'replica', 'no spool of its own: nothing to download');
  if (claim.kind !== 'replica') return;
  assert.equal(claim.size, bytes.length);
  const followed = await followReplica(ctx, claim.follower, {
    size: claim.size,
    waiting: () => 1,
    keep: () => undefined,
  });
  assert.equal(followed.kind, 'published');
  const read = Buffer.alloc(bytes.length);
  assert.equal(await claim.follower.read(read, 0, bytes.length), bytes.length);
  assert.ok(read.equals(bytes), 'the published copy is what the fill serves');
  await claim.follower.file?.close();
  assert.deepEqual(await readdir(spools.dir), [], 'no claim left behind');
});
