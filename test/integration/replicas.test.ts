// Replicas sharing one rootdirectory (NFS in production, one local directory
// here). A blob one replica fetched is served by the others; a cold blob hit at two
// replicas at once is fetched once; a writer killed mid-spool is taken over.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { spawnCache, writeConfig, type CacheProcess, type CacheSpec } from '../helpers/cache.js';
import { request } from 'undici';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin, type Gate, type OriginBlob } from '../helpers/origin.js';
import { within, waitFor } from '../helpers/deadline.js';
import { spoolBytes } from '../helpers/spool.js';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { removeAtExit } from '../../testkit/tmp.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function replicas(
  t: TestContext,
  n: number,
  extra: Pick<CacheSpec, 'extraOptions' | 'extraHttp'> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<{ ca: TestCa; origin: TestOrigin; root: string; nodes: CacheProcess[] }> {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const root = join(removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-shared-'))), 'registry');
  const nodes: CacheProcess[] = [];
  for (let i = 0; i < n; i++) {
    const cfg = await writeConfig({
      upstreams: [origin.url],
      cas: [ca.certPath],
      tls: await ca.issue(`replica${i}`),
      root,
      ...extra,
    });
    nodes.push(await spawnCache(t, cfg.path, root, env));
  }
  return { ca, origin, root, nodes };
}

type Pulled = ReturnType<typeof fetchBlob>;

/**
 * A cold pull of a new blob at A, held by the origin after `holdAt` bytes, then the same pull
 * at B once A is fetching; resolves when B follows A's fill.
 */
async function pullAtBoth(
  origin: TestOrigin,
  agent: ReturnType<typeof agentFor>,
  a: CacheProcess,
  b: CacheProcess,
  size: number,
  holdAt: number,
): Promise<{ blob: OriginBlob; path: string; gate: Gate; atA: Pulled; atB: Pulled }> {
  const blob = origin.add(randomBytes(size));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = origin.gate(blob.digest, holdAt);
  const atA = fetchBlob(agent, `${a.url}${path}`);
  await within(10_000, 'A fetching', gate.reached);
  const atB = fetchBlob(agent, `${b.url}${path}`);
  await waitFor(10_000, 'B follows A', () =>
    b.lines.some((l) => String(l.msg).startsWith('following a replica') && l.digest === blob.digest),
  );
  return { blob, path, gate, atA, atB };
}

test("two replicas: a cold blob hit at both at once is fetched once, and each serves the other's blobs", async (t) => {
  const { ca, origin, root, nodes } = await replicas(t, 2);
  const [a, b] = nodes as [CacheProcess, CacheProcess];
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());
  const { blob, gate, atA, atB } = await pullAtBoth(origin, agent, a, b, 6 << 20, 2 << 20);
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

test("a follower's clients get their last byte on the writer's verdict, before the blob is made durable", async (t) => {
  // Both replicas hold every publication (the fsync) for two minutes: nothing below waits for one.
  const { ca, origin, root, nodes } = await replicas(t, 2, {}, { DTR_CACHE_TEST_PUBLISH_DELAY_MS: '120000' });
  const [a, b] = nodes as [CacheProcess, CacheProcess];
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());
  // A blob buffered whole by its writer, and one that goes through the writer's worker.
  for (const size of [1 << 20, 3 << 20]) await verdictReleasesFollower(origin, agent, a, b, root, size);
});

async function verdictReleasesFollower(
  origin: TestOrigin,
  agent: ReturnType<typeof agentFor>,
  a: CacheProcess,
  b: CacheProcess,
  root: string,
  size: number,
): Promise<void> {
  const { blob, gate, atA, atB } = await pullAtBoth(origin, agent, a, b, size, 256 << 10);
  gate.open();
  const [ra, rb] = await within(20_000, `${size}: both clients have every byte`, Promise.all([atA, atB]));
  assert.equal(`sha256:${ra.sha256}`, blob.digest);
  assert.equal(`sha256:${rb.sha256}`, blob.digest);
  assert.equal(rb.error, null);
  assert.equal(origin.count(origin.gets, blob.digest), 1, 'one upstream fetch for two replicas');
  assert.equal(await exists(new Layout(root).blobData(parseDigest(blob.digest))), false, `${size}: not published yet`);
}

test('a follower whose clients all leave stops quietly (an info line, outcome aborted); the writer publishes', async (t) => {
  const { ca, origin, root, nodes } = await replicas(t, 2);
  const [a, b] = nodes as [CacheProcess, CacheProcess];
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(6 << 20));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = origin.gate(blob.digest, 2 << 20);
  const atA = fetchBlob(agent, `${a.url}${path}`);
  await within(10_000, 'A fetching', gate.reached);
  const leaving = new AbortController();
  const atB = request(`${b.url}${path}`, { dispatcher: agent, signal: leaving.signal }).then(
    (res) => res.body.dump(),
    () => undefined,
  );
  await waitFor(10_000, 'B follows A', () =>
    b.lines.some((l) => String(l.msg).startsWith('following a replica') && l.digest === blob.digest),
  );
  leaving.abort();
  await atB;
  const stopped = await waitFor(10_000, "B's fill stops", () =>
    b.lines.find((l) => l.digest === blob.digest && l.outcome === 'aborted'),
  );
  assert.equal(stopped.msg, 'fill stopped: every client left');
  assert.equal(stopped.level, 30);
  assert.deepEqual(
    b.lines.filter((l) => l.digest === blob.digest && Number(l.level) >= 50),
    [],
    'no error line at the follower',
  );
  gate.open();
  const ra = await within(30_000, "A's client", atA);
  assert.equal(`sha256:${ra.sha256}`, blob.digest);
  await waitFor(10_000, 'published', () => exists(new Layout(root).blobData(parseDigest(blob.digest))));
  assert.equal(origin.count(origin.gets, blob.digest), 1);
});

test('a writer killed mid-spool is taken over by the replica following it', async (t) => {
  const { ca, origin, root, nodes } = await replicas(t, 2);
  const [a, b] = nodes as [CacheProcess, CacheProcess];
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const size = 8 << 20;
  const { blob, path, gate, atA: victim, atB: survivor } = await pullAtBoth(origin, agent, a, b, size, 3 << 20);
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
  // The spool goes once the fill has settled, just after that line: the taken-over file too.
  await waitFor(10_000, 'no spool left', async () => (await readdir(new Layout(root).spoolDir)).length === 0);
  // A fresh request anywhere is now a hit.
  const again = await fetchBlob(agent, `${b.url}${path}`);
  assert.equal(`sha256:${again.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 2);
});

test('a stalled writer is not taken over while it beats, and is once it stops; the blob is published once, correctly', async (t) => {
  // One serving process per node, so that SIGSTOP pauses the writer itself.
  const { ca, origin, root, nodes } = await replicas(t, 2, {
    extraOptions: '          replicas:\n            heartbeat: 200ms\n            stale: 1s\n',
    extraHttp: '  processes: 1\n',
  });
  const [a, b] = nodes as [CacheProcess, CacheProcess];
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const takeovers = () => b.lines.filter((l) => l.msg === 'took over the spool of a dead writer');

  // A's upstream holds still: A is alive and beats, so B follows it and waits, however long.
  const { blob: slow, gate: slowGate, atA, atB } = await pullAtBoth(origin, agent, a, b, 4 << 20, 1 << 20);
  // Three stale periods without a byte: a writer judged by its spool's growth would be taken over.
  await new Promise((r) => setTimeout(r, 3_500));
  assert.equal(takeovers().length, 0, 'a beating writer is not taken over');
  slowGate.open();
  for (const r of await within(30_000, 'both', Promise.all([atA, atB])))
    assert.equal(`sha256:${r.sha256}`, slow.digest);
  assert.equal(origin.count(origin.gets, slow.digest), 1);

  // A paused mid-fill (SIGSTOP): no beat, so B takes its spool over and completes the blob.
  const size = 8 << 20;
  const { blob, gate, atA: victim, atB: survivor } = await pullAtBoth(origin, agent, a, b, size, 3 << 20);
  await waitFor(10_000, "A's spool has bytes", async () => (await spoolBytes(root, blob.digest)) > 0);
  process.kill(a.child.pid!, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(a.child.pid!, 'SIGCONT');
    } catch {
      // Already gone.
    }
  });
  gate.open();
  const r = await within(30_000, 'B completes after taking over', survivor);
  assert.equal(r.error, null);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(takeovers().length, 1);
  // A wakes up: it finishes its own stream, verified by its own hash, and finds the blob published.
  process.kill(a.child.pid!, 'SIGCONT');
  const v = await within(30_000, "A's client completes", victim);
  assert.equal(`sha256:${v.sha256}`, blob.digest);
  const settledAt = async (n: CacheProcess) =>
    n.lines.filter((l) => (l.msg === 'fill published' || l.msg === 'fill failed') && l.digest === blob.digest);
  await waitFor(
    10_000,
    'both fills settled',
    async () => (await settledAt(a)).length + (await settledAt(b)).length === 2,
  );
  const outcomes = [...(await settledAt(a)), ...(await settledAt(b))].map((l) => l.outcome).sort();
  assert.deepEqual(outcomes, ['published', 'published-by-replica'], 'published once');
  const final = new Layout(root).blobData(parseDigest(blob.digest));
  assert.equal(
    `sha256:${createHash('sha256')
      .update(await readFile(final))
      .digest('hex')}`,
    blob.digest,
  );
  await waitFor(10_000, 'no spool left', async () => (await readdir(new Layout(root).spoolDir)).length === 0);
});
