// A node of two serving processes in a chain (2.2 form: a regional tier, then the origin):
// a tier that one process found failing is left by the other process too during its
// back-off, without a failure of its own (docs/architecture.md, "Every core serves").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createTestCa } from '../../testkit/pki.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { TestOrigin } from '../helpers/origin.js';
import { first, pair, pinConnections, servingPids } from '../helpers/node-probe.js';

test('http.processes 2: a tier that failed in one process is skipped by the other during its back-off', async (t) => {
  const ca = await createTestCa();
  const regional = await TestOrigin.start(await ca.issue('regional'));
  t.after(() => regional.close());
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  regional.keys = origin.keys;
  const cfg = await writeConfig({
    upstreams: { origin: origin.url, hosts: [regional.url] },
    cas: [ca.certPath],
    tls: await ca.issue('cache'),
    extraHttp: '  processes: 2\n',
  });
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const [onA, onB] = pair((await pinConnections(t, cache.url, ca.cert, cache.lines, [a, b], 1)).map(first));

  const blob = async (bytes: Buffer) => {
    const added = origin.add(bytes);
    regional.add(bytes);
    return {
      ...added,
      path: `/v2/team/app/blobs/${added.digest}?token=${await origin.mint('team/app', added.digest)}`,
    };
  };
  const get = async (client: typeof onA, path: string) => {
    const res = await client.request({ path, method: 'GET' });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, digest: `sha256:${createHash('sha256').update(body).digest('hex')}` };
  };
  const one = await blob(randomBytes(100_000));
  const two = await blob(randomBytes(100_001));
  for (const b of [one, two]) regional.fail503.add(b.digest);

  // Process A asks the tier first, which fails (503), then the origin.
  assert.deepEqual(await get(onA, one.path), { status: 200, digest: one.digest });
  assert.deepEqual([regional.count(regional.gets, one.digest), origin.count(origin.gets, one.digest)], [1, 1]);
  // Process B, within the tier's back-off (1 s after one failure), goes to the origin first.
  assert.deepEqual(await get(onB, two.path), { status: 200, digest: two.digest });
  assert.equal(
    regional.count(regional.gets, two.digest),
    0,
    'the other process asked the tier although it had just failed in this node',
  );
  assert.equal(origin.count(origin.gets, two.digest), 1);
  assert.ok(
    cache.lines.some((l) => l['pid'] === a && l['msg'] === 'upstream failed, trying next'),
    'the failure was process A’s',
  );
  assert.ok(!cache.lines.some((l) => l['pid'] === b && l['msg'] === 'upstream failed, trying next'));
});
