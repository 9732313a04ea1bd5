// Tokens and keys along a chain. A retry uses the newest token among the clients
// still waiting; a tier with no route to the origin takes its keys from its upstream
// cache, rotations included.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createTestCa } from '../../testkit/pki.js';
import { startDtrMock } from '../../bench/dtr-mock/index.js';
import { startTestCache } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { startStack } from '../helpers/stack.js';
import { within, waitFor } from '../helpers/deadline.js';

/**
 * Two clients of one cold blob, under `names[0]` with a token good for 2 minutes and under
 * `names[1]` with one good for 15; the transfer breaks after the first MiB. Both clients
 * must get the blob; returns the tokens and the origin's GETs of it (path, Authorization, Range).
 */
async function breakWithTwoClients(t: TestContext, names: [string, string]) {
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(4 << 20));
  const older = await s.origin.mint(names[0], blob.digest, { ttlSec: 120 });
  const newer = await s.origin.mint(names[1], blob.digest, { ttlSec: 900 });
  const gate = s.origin.gate(blob.digest, 1 << 20);
  const first = fetchBlob(s.h1, s.blobUrl(names[0], blob.digest, older));
  await within(10_000, 'gate', gate.reached);
  const fill = await waitFor(5_000, 'fill', () => [...s.cache.ctx.inflight.fills()][0]);
  const second = fetchBlob(s.h2, s.blobUrl(names[1], blob.digest, newer));
  await waitFor(5_000, 'two waiters', () => fill.waiters === 2);
  gate.cut();
  const [a, b] = await within(20_000, 'clients', Promise.all([first, second]));
  assert.equal(`sha256:${a.sha256}`, blob.digest);
  assert.equal(`sha256:${b.sha256}`, blob.digest);
  const gets = s.origin.seen
    .filter((r) => r.method === 'GET' && r.path.endsWith(blob.digest))
    .map((r) => [r.path, r.headers.authorization, r.headers.range]);
  return { older, newer, gets, path: (name: string) => `/v2/${name}/blobs/${blob.digest}` };
}

test('a transfer that breaks is resumed with the newest token among the waiting clients', async (t) => {
  const { older, newer, gets, path } = await breakWithTwoClients(t, ['team/app', 'team/app']);
  assert.deepEqual(gets, [
    [path('team/app'), `Bearer ${older}`, undefined],
    [path('team/app'), `Bearer ${newer}`, `bytes=${1 << 20}-`],
  ]);
});

test('clients of one blob under two repositories: the retry asks under the repository of the token it carries', async (t) => {
  const { older, newer, gets, path } = await breakWithTwoClients(t, ['team/app', 'team/other']);
  assert.deepEqual(gets, [
    [path('team/app'), `Bearer ${older}`, undefined],
    [path('team/other'), `Bearer ${newer}`, `bytes=${1 << 20}-`],
  ]);
});

test('a tier with no route to the origin takes its keys from its upstream cache, and follows rotations', async (t) => {
  const ca = await createTestCa();
  const leaf = await ca.issue('origin');
  const mock = await startDtrMock({ tls: { cert: leaf.cert, key: leaf.key } });
  t.after(() => mock.close());
  // The regional refreshes its keys before serving them whatever their age (10 s by default).
  const regional = await startTestCache(
    t,
    { upstreams: [mock.url], cas: [ca.certPath], tls: await ca.issue('regional') },
    { keys: { servedMaxAgeMs: 0 } },
  );
  // The edge's origin is unreachable: its keys and its blobs can only come through the regional.
  const edge = await startTestCache(t, {
    upstreams: { origin: 'https://127.0.0.1:9', hosts: [regional.url] },
    cas: [ca.certPath],
    tls: await ca.issue('edge'),
  });
  assert.deepEqual(
    edge.ctx.keys.toJSON().keys.map((k) => k.kid),
    mock.jwks().keys.map((k) => k.kid),
  );
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());
  const { digest } = await mock.putBlob('team/app', randomBytes(100_000));
  const pull = async () =>
    fetchBlob(
      agent,
      `${edge.url}/v2/team/app/blobs/${digest}?token=${await mock.mintRedirectToken({ sub: 'alice', name: 'team/app', digest })}`,
    );
  assert.equal((await pull()).status, 200);

  // The origin rotates and drops the old key; a token signed with the new one reaches the
  // edge first. The edge refreshes from the regional, which refreshes from the origin.
  const kid = await mock.rotateKey({ dropOld: true });
  const r = await pull();
  assert.equal(r.status, 200, r.body.toString());
  assert.ok(edge.ctx.keys.toJSON().keys.some((k) => k.kid === kid));
  assert.ok(regional.ctx.keys.toJSON().keys.some((k) => k.kid === kid));
});
