// After a SIGKILL mid-fill and a restart, no partial blob is served and the
// spool leftovers are gone. Runs the cache as its own process (dtr-cache serve).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readdir } from 'node:fs/promises';
import { createTestCa } from '../../testkit/pki.js';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin } from '../helpers/origin.js';
import { within, waitFor } from '../helpers/deadline.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

test('SIGKILL mid-fill, then restart: no partial blob served, spool leftovers removed', async (t) => {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cfg = await writeConfig({ upstreams: [origin.url], cas: [ca.certPath], tls: await ca.issue('cache') });
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(6 << 20));
  const token = await origin.mint('team/app', blob.digest);
  const layout = new Layout(cfg.root);
  const d = parseDigest(blob.digest);

  const first = await spawnCache(t, cfg.path, cfg.root);
  const gate = origin.gate(blob.digest, 3 << 20);
  const victim = fetchBlob(agent, `${first.url}/v2/team/app/blobs/${blob.digest}?token=${token}`);
  await within(10_000, 'upstream half sent', gate.reached);
  await waitFor(10_000, 'spool has bytes', async () => (await readdir(layout.spoolDir).catch(() => [])).length > 0);
  await first.stop('SIGKILL');
  const v = await within(10_000, 'victim ends', victim);
  assert.notEqual(v.error, null, 'the client of the killed cache saw a broken transfer');
  gate.open();
  assert.equal(await exists(layout.blobData(d)), false, 'nothing published');
  assert.ok((await readdir(layout.spoolDir)).length > 0, 'a spool leftover exists before restart');

  const second = await spawnCache(t, cfg.path, cfg.root);
  assert.deepEqual(await readdir(layout.spoolDir), [], 'spool leftovers removed at start');
  const indexed = second.lines.find((l) => l.msg === 'store indexed');
  assert.equal(indexed?.removedSpools, 1);
  const r = await fetchBlob(agent, `${second.url}/v2/team/app/blobs/${blob.digest}?token=${token}`);
  assert.equal(r.status, 200);
  assert.equal(r.error, null);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 2, 'the restarted cache fetched afresh');
  assert.equal(await second.stop('SIGTERM'), 0, 'SIGTERM exits 0');
});
