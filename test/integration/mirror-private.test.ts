// Private content stays private (issue 15). The mirror serves only what its own upstream
// credentials can read, and never hands a stored object to a client of a repository where
// the upstream has not confirmed it, whoever stored it. Two upstream users: `robot` may pull
// public/* only; `alice` may pull everything. Two mirrored registries on one node use them:
// public.test (robot, the default) and team.test (alice), over one store.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { createOciImage } from '../../testkit/image.js';
import { ACCEPT_ALL, pullImage, startMirrorStack, upstreamBlobGets, type MirrorStack } from '../helpers/mirror.js';

const ROBOT = { user: 'robot', password: 'robot-pw' };
const ALICE = { user: 'alice', password: 'alice-pw' };
const code = (body: Buffer) => (JSON.parse(body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code;

async function stack(t: test.TestContext): Promise<MirrorStack> {
  return startMirrorStack(t, {
    // Blobs linked to repositories, as in distribution: a layer of private/app is not in public/app.
    upstream: { scopeBlobs: true },
    users: {
      [ROBOT.user]: { password: ROBOT.password, repos: { 'public/*': ['pull'] } },
      [ALICE.user]: { password: ALICE.password, repos: { '*': ['pull', 'push'] } },
    },
    mirrors: [
      { registry: 'public.test', username: ROBOT.user, password: ROBOT.password, default: true },
      { registry: 'team.test', username: ALICE.user, password: ALICE.password },
    ],
  });
}

test("a repository the mirror's credentials cannot read is refused, manifests and blobs alike", async (t) => {
  const s = await stack(t);
  const img = await createOciImage(join(s.dir, 'private'), { layers: [30_000], seed: 'private', tag: 'v1' });
  await s.upstream.putOciLayout(img.dir, 'private/app', 'v1');
  for (const path of [
    '/v2/private/app/manifests/v1',
    `/v2/private/app/manifests/${img.manifestDigest}`,
    `/v2/private/app/blobs/${img.layerDigests[0] ?? ''}`,
  ]) {
    const r = await s.get(path, { headers: { accept: ACCEPT_ALL } });
    assert.equal(r.status, 403, path);
    assert.equal(code(r.body), 'DENIED');
    assert.equal(r.headers['www-authenticate'], undefined);
  }
  // team.test reads it with alice's account: the bytes are now in the shared store.
  const team = await pullImage(s, 'private/app', 'v1', '?ns=team.test');
  assert.deepEqual(team.statuses, [200, 200, 200]);
  // Still refused through public.test, now that the store holds every byte.
  for (const path of [
    '/v2/private/app/manifests/v1',
    `/v2/private/app/manifests/${img.manifestDigest}`,
    `/v2/private/app/blobs/${img.layerDigests[0] ?? ''}`,
    `/v2/private/app/blobs/${img.configDigest}`,
  ]) {
    const r = await s.get(path, { headers: { accept: ACCEPT_ALL } });
    assert.equal(r.status, 403, `${path} after the store has it`);
  }
});

test('a stored blob or manifest reaches a client of another repository only once the upstream confirms it there', async (t) => {
  const s = await stack(t);
  const secret = await createOciImage(join(s.dir, 'secret'), { layers: [40_000], seed: 'secret', tag: 'v1' });
  await s.upstream.putOciLayout(secret.dir, 'private/app', 'v1');
  const open = await createOciImage(join(s.dir, 'open'), { layers: [20_000], seed: 'open', tag: 'v1' });
  await s.upstream.putOciLayout(open.dir, 'public/app', 'v1');
  assert.deepEqual((await pullImage(s, 'private/app', 'v1', '?ns=team.test')).statuses, [200, 200, 200]);
  // Knowing a private digest is not enough: public/app does not have it upstream.
  const layer = secret.layerDigests[0] ?? '';
  const blob = await s.get(`/v2/public/app/blobs/${layer}`);
  assert.equal(blob.status, 404);
  assert.equal(code(blob.body), 'BLOB_UNKNOWN');
  const manifest = await s.get(`/v2/public/app/manifests/${secret.manifestDigest}`, {
    headers: { accept: ACCEPT_ALL },
  });
  assert.equal(manifest.status, 404);
  assert.equal(code(manifest.body), 'MANIFEST_UNKNOWN');
  const asked = s.upstreamLog(new RegExp(`^/v2/public/app/(blobs|manifests)/`)).filter((e) => e.status === 404);
  assert.deepEqual(
    asked.map((e) => [e.method, e.user]),
    [
      ['HEAD', ROBOT.user],
      ['HEAD', ROBOT.user],
    ],
    'each was asked of the upstream, with the robot account, as a HEAD',
  );
  // The same layer pushed to public/app: confirmed there, then served from the one stored copy.
  await s.upstream.putOciLayout(secret.dir, 'public/app', 'shared');
  const shared = await s.get(`/v2/public/app/blobs/${layer}`);
  assert.equal(shared.status, 200);
  assert.equal(`sha256:${shared.sha256}`, layer);
  assert.deepEqual(
    upstreamBlobGets(s, [layer]),
    [1],
    'downloaded once, by team.test; confirmed by HEAD for public.test',
  );
  assert.equal((await s.get(`/v2/public/app/blobs/${layer}`)).status, 200);
  assert.equal(
    s.upstreamLog(new RegExp(`^/v2/public/app/blobs/${layer}$`)).filter((e) => e.status === 200).length,
    1,
    'a confirmation is kept: the second pull asks nothing',
  );
});
