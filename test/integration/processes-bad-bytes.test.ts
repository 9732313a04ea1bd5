// A node of two serving processes in front of an upstream cache that serves a corrupt copy
// of a blob, with a good origin behind it. The process that fetched the blob finds the
// digest wrong and puts the upstream cache at the back of the order; the other process,
// whose client was following that fill, continues it from the bytes it had (the bad ones)
// with the rest from the origin, and finds the digest wrong too. That second verdict says
// nothing about the origin: blaming it sent the node's next fills back to the bad upstream
// cache first, and the blob could not be pulled for the length of the penalty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chainedNode, getDigest as get } from '../helpers/chained-node.js';
import { waitFor, within } from '../helpers/deadline.js';
import { pair, servingPids } from '../helpers/node-probe.js';

test("a follower's failed continuation of a corrupt fill does not blame the good origin", async (t) => {
  // `regional` is the upstream cache in front of the origin.
  const { regional, origin, cache, pin } = await chainedNode(t);
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const [onA, onB] = pair(await pin([a, b]));

  // A blob buffered whole (at most 1 MiB): its writer writes what it has for followers each second.
  const bytes = randomBytes(512 << 10);
  const blob = origin.add(bytes);
  regional.add(bytes);
  regional.corrupt.add(blob.digest);
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = regional.gate(blob.digest, 256 << 10);
  const atA = get(onA, path);
  await within(10_000, 'the upstream cache sent half', gate.reached);
  const atB = get(onB, path);
  await waitFor(10_000, "the other process following A's fill", () =>
    cache.lines.some((l) => l['pid'] === b && l['msg'] === "following a replica's fill of this blob"),
  );
  // Past the writer's one-second flush: the follower holds the first half, bad bytes included.
  await new Promise((r) => setTimeout(r, 1_500));
  gate.open();
  for (const r of await within(20_000, 'both clients', Promise.all([atA, atB])))
    assert.notEqual(r.error, null, 'bad bytes end in a reset');
  await waitFor(5_000, 'both fills failed', () =>
    [a, b].every((pid) => cache.lines.some((l) => l['pid'] === pid && l['outcome'] === 'digest-mismatch')),
  );
  assert.deepEqual(origin.ranges, ['bytes=262144-'], 'the follower continued from the origin');

  // The upstream cache still serves bad bytes; the origin, good ones: both processes get them.
  for (const c of [onA, onB]) {
    const r = await within(20_000, 'a later GET', get(c, path));
    assert.deepEqual(r, { status: 200, digest: blob.digest, error: null });
  }
  assert.equal(regional.count(regional.gets, blob.digest), 1, 'the bad host is not asked again');
});
