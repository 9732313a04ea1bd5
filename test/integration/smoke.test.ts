import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createTestCa } from '../../testkit/pki.js';
import { TestOrigin } from '../helpers/origin.js';
import { startTestCache } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';

test('smoke: miss then hit over h1 and h2', async (t) => {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cache = await startTestCache(t, { upstreams: [origin.url], cas: [ca.certPath], tls: await ca.issue('cache') });
  const blob = origin.add(randomBytes(3 << 20));
  const token = await origin.mint('library/app', blob.digest);
  for (const h2 of [false, true]) {
    const agent = agentFor(ca.cert, h2);
    t.after(() => agent.close());
    const r = await fetchBlob(agent, `${cache.url}/v2/library/app/blobs/${blob.digest}?token=${token}`);
    assert.equal(r.status, 200);
    assert.equal(`sha256:${r.sha256}`, blob.digest);
  }
  assert.equal(origin.count(origin.gets, blob.digest), 1);
});
