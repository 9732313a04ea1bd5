// A node of two serving processes, one of which stops answering (SIGSTOP: it never exits,
// its event loop never turns again, yet the kernel keeps giving it its share of the port's
// new connections, which hang). The supervisor finds it silent, kills it and replaces it
// (src/cluster/watchdog.ts); then every new connection is answered again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnCache } from '../helpers/cache.js';
import { originConfig } from '../helpers/stack.js';
import { waitFor, within } from '../helpers/deadline.js';
import { fetchBlob, agentFor } from '../helpers/http.js';
import { first, pair, servingPids, tlsProbe } from '../helpers/node-probe.js';
import { PING_EVERY_MS, SILENT_MS } from '../../src/cluster/watchdog.js';

test('a serving process that stops answering is killed and replaced; then every connection is answered', async (t) => {
  const { ca, origin, cfg } = await originConfig(t, { extraHttp: '  processes: 2\n' });
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(50_000));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  assert.equal(`sha256:${(await fetchBlob(agent, `${cache.url}${path}`)).sha256}`, blob.digest);

  process.kill(a, 'SIGSTOP');
  // Should the test fail before the kill, the cleanup's signals must reach a running process.
  t.after(() => {
    try {
      process.kill(a, 'SIGCONT');
    } catch {
      // gone, as it should be
    }
  });
  const silent = await waitFor(SILENT_MS + 3 * PING_EVERY_MS, 'the silent process found', () =>
    cache.lines.find(
      (l) =>
        l['msg'] === 'serving process does not answer; killing it' &&
        l['servingPid'] === a &&
        l['pid'] === cache.child.pid,
    ),
  );
  assert.equal(silent['silentMs'], SILENT_MS);
  await waitFor(10_000, 'its death logged', () =>
    cache.lines.some(
      (l) => l['msg'] === 'serving process exited' && l['servingPid'] === a && l['signal'] === 'SIGKILL',
    ),
  );
  const c = first((await servingPids(cache.lines, 2, [a])).filter((p) => p !== b));

  // New connections land on both processes again, and each is answered.
  const answeredBy = new Set<number>();
  for (let i = 0; i < 64 && answeredBy.size < 2; i++) {
    const probe = await within(5_000, `connection ${i} answered`, tlsProbe(cache.port, ca.cert, cache.lines));
    assert.equal(probe.status, 401);
    answeredBy.add(probe.pid);
  }
  assert.deepEqual([...answeredBy].sort(), [b, c].sort());
  assert.equal(
    `sha256:${(await fetchBlob(agent, `${cache.url}${path}`)).sha256}`,
    blob.digest,
    'a hit after the replacement',
  );
  // The killed process kept no healthy sibling from serving: the kill was the only restart.
  assert.equal(cache.lines.filter((l) => l['msg'] === 'serving process exited').length, 1);
});
