// A node of two serving processes while its origin is down: the stored blobs are what it
// is there for. A process that dies then is replaced like any other (README, "Every core
// serves"): the replacement cannot load the origin's keys, so it starts with the keys the
// node's other process trusts, and serves hits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { parseDigest } from '../../src/store/digest.js';
import { Layout } from '../../src/store/layout.js';
import { spawnCache } from '../helpers/cache.js';
import { originConfig } from '../helpers/stack.js';
import { waitFor } from '../helpers/deadline.js';
import { fetchBlob, agentFor } from '../helpers/http.js';
import { first, pair, pinConnections, servingPids } from '../helpers/node-probe.js';

const DEBUG = '  debug:\n    addr: 127.0.0.1:0\n';

test('origin down: a serving process killed is replaced, and the replacement serves hits with the node keys', async (t) => {
  const { ca, origin, cfg } = await originConfig(t, { extraHttp: `  processes: 2\n${DEBUG}` });
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const debugPort = Number(cache.lines.find((l) => l['msg'] === 'debug server listening')?.['port']);
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(50_000));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  assert.equal((await fetchBlob(agent, `${cache.url}${path}`)).status, 200);
  // The client's last byte comes before the publication (the fsync follows): the process
  // killed below may be the writer, so the blob must be on disk first.
  const stored = new Layout(cfg.root).blobData(parseDigest(blob.digest));
  await waitFor(10_000, 'the blob published', () =>
    access(stored).then(
      () => true,
      () => false,
    ),
  );

  await origin.close();
  process.kill(a, 'SIGKILL');
  const c = first(await servingPids(cache.lines, 2, [a]).then((pids) => pids.filter((p) => p !== b)));
  assert.ok(
    cache.lines.some(
      (l) => l['pid'] === c && l['msg'] === 'trusted keys could not be loaded: using the keys the node trusts',
    ),
    'the replacement says where its keys came from',
  );
  const [onC] = await pinConnections(t, cache.url, ca.cert, cache.lines, [c], 1);
  const res = await first(onC ?? []).request({ path, method: 'GET' });
  assert.equal(res.statusCode, 200, 'a hit on the replacement, its token verified');
  assert.equal((await res.body.arrayBuffer()).byteLength, blob.bytes.length);
  const health = await waitFor(5_000, 'the node healthy with both processes', async () => {
    const r = await fetch(`http://127.0.0.1:${debugPort}/debug/health`);
    const body = (await r.json()) as { processes: Array<{ state: string }> };
    return r.status === 200 && body.processes.every((p) => p.state === 'ready') ? body : undefined;
  });
  assert.equal(health.processes.length, 2);
});
