// Issue #5: replicas sharing one rootdirectory (NFS in production, one local directory
// here). A blob one replica fetched is served by the others; a cold blob hit at two
// replicas at once is fetched once; a writer killed mid-spool is taken over.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { spawnCache, writeConfig, type CacheProcess } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin } from '../helpers/origin.js';
import { within, waitFor } from '../helpers/deadline.js';
import { spoolBytes } from '../helpers/spool.js';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function replicas(
  t: TestContext,
  n: number,
): Promise<{ ca: TestCa; origin: TestOrigin; root: string; nodes: CacheProcess[] }> {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const root = join(await mkdtemp(join(tmpdir(), 'dtr-cache-shared-')), 'registry');
  const nodes: CacheProcess[] = [];
  for (let i = 0; i < n; i++) {
    const cfg = await writeConfig({
      upstreams: [origin.url],
      cas: [ca.certPath],
      tls: await ca.issue(`replica${i}`),
      root,
    });
    nodes.push(await spawnCache(t, cfg.path, root));
  }
  return { ca, origin, root, nodes };
}

test("two replicas: a cold blob hit at both at once is fetched once, and each serves the other's blobs", async (t) => {
  const { ca, origin, root, nodes } = await replicas(t, 2);
  const [a, b] = nodes as [CacheProcess, CacheProcess];
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(6 << 20));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = origin.gate(blob.digest, 2 << 20);
  const atA = fetchBlob(agent, `${a.url}${path}`);
  await within(10_000, 'first replica fetching', gate.reached);
  const atB = fetchBlob(agent, `${b.url}${path}`);
  await waitFor(10_000, 'B follows A', () => b.lines.some((l) => String(l.msg).startsWith('following a replica')));
  gate.open();
  const [ra, rb] = await within(30_000, 'both replicas serve', Promise.all([atA, atB]));
  assert.equal(`sha256:${ra.sha256}`, blob.digest);
  assert.equal(`sha256:${rb.sha256}`, blob.digest);
  assert.equal(rb.error, null);
  assert.equal(origin.count(origin.gets, blob.digest), 1, 'one upstream fetch for two replicas');

  // A blob A fetched is a hit at B: B checks the shared disk on an index miss.
  const other = origin.add(randomBytes(300_000));
  const otherPath = `/v2/team/app/blobs/${other.digest}?token=${await origin.mint('team/app', other.digest)}`;
  assert.equal(`sha256:${(await fetchBlob(agent, `${a.url}${otherPath}`)).sha256}`, other.digest);
  // A publishes just after its client's last byte.
  await waitFor(5_000, 'A published', () => exists(new Layout(root).blobData(parseDigest(other.digest))));
  const fromB = await fetchBlob(agent, `${b.url}${otherPath}`);
  assert.equal(`sha256:${fromB.sha256}`, other.digest);
  assert.equal(origin.count(origin.gets, other.digest), 1);
  await waitFor(5_000, 'B logged a hit', () =>
    b.lines.some((l) => l.msg === 'request' && l.digest === other.digest && l.outcome === 'hit'),
  );
});

test('a writer killed mid-spool is taken over by the replica following it', async (t) => {
  const { ca, origin, root, nodes } = await replicas(t, 2);
  const [a, b] = nodes as [CacheProcess, CacheProcess];
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const size = 8 << 20;
  const blob = origin.add(randomBytes(size));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = origin.gate(blob.digest, 3 << 20);
  const victim = fetchBlob(agent, `${a.url}${path}`);
  await within(10_000, 'A fetching', gate.reached);
  const survivor = fetchBlob(agent, `${b.url}${path}`);
  await waitFor(10_000, 'B follows A', () => b.lines.some((l) => String(l.msg).startsWith('following a replica')));
  await waitFor(10_000, "A's spool has bytes", async () => (await spoolBytes(root, blob.digest)) > 0);
  await a.stop('SIGKILL');
  gate.cut();
  await victim;
  const r = await within(30_000, 'B completes after taking over', survivor);
  assert.equal(r.error, null);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  await waitFor(5_000, 'take-over logged', () => b.lines.some((l) => l.msg === 'took over the spool of a dead writer'));
  const takeover = b.lines.find((l) => l.msg === 'took over the spool of a dead writer')!;
  assert.ok(Number(takeover.offset) > 0, 'continued from the bytes the dead writer left');
  const gets = origin.seen.filter((s) => s.method === 'GET' && s.path.endsWith(blob.digest));
  assert.equal(gets.length, 2);
  assert.equal(gets[1]!.headers.range, `bytes=${takeover.offset}-`, 'asked upstream only for the rest');
  await waitFor(5_000, 'published by B', () =>
    b.lines.some((l) => l.msg === 'fill published' && l.digest === blob.digest),
  );
  assert.deepEqual(await readdir(join(root, 'docker', 'registry', 'v2', '_dtr-cache', 'spool')), [], 'no spool left');
  // A fresh request anywhere is now a hit.
  const again = await fetchBlob(agent, `${b.url}${path}`);
  assert.equal(`sha256:${again.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 2);
});
