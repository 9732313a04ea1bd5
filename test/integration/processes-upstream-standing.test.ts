// A node of two serving processes in a chain (2.2 form: a regional tier, then the origin):
// a tier that one process found failing is left by the other processes too during its
// back-off, without a failure of their own, and so is it by a process that replaces one
// that died (docs/architecture.md, "Threads and processes").
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Client } from 'undici';
import { chainedNode, getDigest } from '../helpers/chained-node.js';
import { first, pair, servingPids } from '../helpers/node-probe.js';

async function chainedNodeWithBlobs(t: TestContext) {
  const node = await chainedNode(t);
  const { regional, origin, cache } = node;
  const blob = async (bytes: Buffer) => {
    const added = origin.add(bytes);
    regional.add(bytes);
    return {
      ...added,
      path: `/v2/team/app/blobs/${added.digest}?token=${await origin.mint('team/app', added.digest)}`,
    };
  };
  /** The status and the digest of the body; `error` when the body was cut or reset. */
  const get = async (client: Client, path: string) => {
    const r = await getDigest(client, path);
    return { status: r.status, digest: r.error === null ? r.digest : 'error' };
  };
  const failures = (pid: number) =>
    cache.lines.filter((l) => l['pid'] === pid && l['msg'] === 'upstream failed, trying next').length;
  return { ...node, blob, get, failures };
}

test('http.processes 2: a tier that failed in one process is skipped by the other during its back-off', async (t) => {
  const { regional, origin, cache, pin, blob, get, failures } = await chainedNodeWithBlobs(t);
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const [onA, onB] = pair(await pin([a, b]));
  const one = await blob(randomBytes(100_000));
  const two = await blob(randomBytes(100_001));
  for (const x of [one, two]) regional.fail503.add(x.digest);

  // Process A asks the tier first, which fails (503), then the origin.
  assert.deepEqual(await get(onA, one.path), { status: 200, digest: one.digest });
  assert.deepEqual([regional.count(regional.gets, one.digest), origin.count(origin.gets, one.digest)], [1, 1]);
  assert.equal(failures(a), 1);
  // Process B, within the tier's back-off (1 s after one failure), goes to the origin first.
  assert.deepEqual(await get(onB, two.path), { status: 200, digest: two.digest });
  assert.equal(
    regional.count(regional.gets, two.digest),
    0,
    'the other process asked the tier although it had just failed in this node',
  );
  assert.equal(origin.count(origin.gets, two.digest), 1);
  assert.equal(failures(b), 0);
});

test('http.processes 2: a process that replaces one killed starts with the node’s penalties', async (t) => {
  const { regional, origin, cache, pin, blob, get } = await chainedNodeWithBlobs(t);
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const [onA] = pair(await pin([a, b]));
  // The tier relays bad bytes: the fill fails its digest check, and the tier is left for
  // minutes (upstream/host.ts, fill/download.ts), longer than a replacement takes to start.
  const bad = await blob(randomBytes(100_000));
  regional.corrupt.add(bad.digest);
  assert.equal((await get(onA, bad.path)).digest, 'error', 'bad bytes: the client is reset');
  assert.equal(regional.count(regional.gets, bad.digest), 1);

  process.kill(b, 'SIGKILL');
  const c = first(await servingPids(cache.lines, 2, [b]).then((pids) => pids.filter((p) => p !== a)));
  const onC = first(await pin([c]));
  const good = await blob(randomBytes(100_002));
  assert.deepEqual(await get(onC, good.path), { status: 200, digest: good.digest });
  assert.equal(regional.count(regional.gets, good.digest), 0, 'the replacement asked the tier that had sent bad bytes');
  assert.equal(origin.count(origin.gets, good.digest), 1);
});
