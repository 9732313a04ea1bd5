// A corrupted or truncated file in the store is never served as valid; scrub
// finds and removes bad blobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, open, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { cliNodeFlags, writeConfig } from '../helpers/cache.js';
import { startStack } from '../helpers/stack.js';
import { fetchBlob } from '../helpers/http.js';
import { waitFor } from '../helpers/deadline.js';

const run = promisify(execFile);
const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );
const CLI = new URL('../../src/cli.js', import.meta.url).pathname;

async function put(layout: Layout, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const path = layout.blobData(parseDigest(digest));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
  return digest;
}

test('scrub re-hashes the store and removes bad blobs; --dry-run only reports', async () => {
  const cfg = await writeConfig({ upstreams: ['https://localhost:1'], cas: [], tls: null });
  const layout = new Layout(cfg.root);
  const good = await put(layout, randomBytes(300_000));
  const flipped = await put(layout, randomBytes(300_000));
  const truncated = await put(layout, randomBytes(300_000));
  const fh = await open(layout.blobData(parseDigest(flipped)), 'r+');
  await fh.write(Buffer.from([0x42]), 0, 1, 150_000);
  await fh.close();
  await truncate(layout.blobData(parseDigest(truncated)), 1000);
  const scrub = async (...extra: string[]) =>
    run(process.execPath, [...(await cliNodeFlags()), CLI, 'scrub', '--config', cfg.path, ...extra]).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
  const dry = await scrub('--dry-run');
  assert.equal(dry.code, 3);
  assert.match(dry.out, /checked 3 blobs, 2 bad, 0 removed/);
  assert.ok(await exists(layout.blobData(parseDigest(flipped))), 'dry run removes nothing');
  const real = await scrub();
  assert.equal(real.code, 3);
  assert.match(real.out, new RegExp(`removed ${flipped}`));
  assert.match(real.out, new RegExp(`removed ${truncated}`));
  assert.equal(await exists(layout.blobData(parseDigest(flipped))), false);
  assert.equal(await exists(layout.blobData(parseDigest(truncated))), false);
  assert.equal(await exists(layout.blobData(parseDigest(good))), true);
  const clean = await scrub();
  assert.equal(clean.code, 0);
  assert.match(clean.out, /checked 1 blobs, 0 bad/);
});

test('a blob file truncated under a running cache is not served short: it is fetched again', async (t) => {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(2 << 20));
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  assert.equal((await fetchBlob(s.h1, url)).status, 200);
  const stored = new Layout(s.cache.root).blobData(parseDigest(blob.digest));
  // Published just after the client's last byte.
  await waitFor(10_000, 'published', () =>
    access(stored).then(
      () => true,
      () => false,
    ),
  );
  // …and the fill has settled: a request before that joins the (verified) fill, not the file.
  await waitFor(10_000, 'the fill settled', () => s.cache.ctx.inflight.size === 0);
  await truncate(stored, 1 << 20);
  const r = await fetchBlob(s.h2, url);
  assert.equal(r.error, null);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(s.origin.count(s.origin.gets, blob.digest), 2, 'the size mismatch made it a miss');
});
