// podman as a second real client: pulls through the origin's 307 into its own
// storage (vfs driver, private --root/--runroot), then into a second storage from the
// cache alone. CI installs podman (.ci/run), so under CI=true a missing podman fails this
// test; elsewhere it skips and says so.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { createOciImage } from '../../testkit/image.js';
import { podmanIn } from '../../testkit/tools.js';
import { waitFor } from '../helpers/deadline.js';
import { fillsPublished, originGets, outcomes, requireTool, startE2eStack } from './e2e-stack.js';

const REPO = 'library/app';

interface Inspected {
  Id: string;
  Digest: string;
  RootFS: { Layers: string[] };
}

test('podman pulls every blob through the cache, then from the cache alone', async (t) => {
  if (!(await requireTool(t, 'podman', true))) return;
  const s = await startE2eStack(t, 'podman', { alice: { password: 'alice-pw', repos: { [REPO]: ['pull', 'push'] } } }, [
    'alice',
  ]);
  const img = await createOciImage(join(s.dir, 'img'), {
    layers: [4 * 1024 * 1024, 1024 * 1024, 100_000],
    seed: 'e2e-podman',
    tag: 'v1',
  });
  await s.mock.putOciLayout(img.dir, REPO, 'v1');
  const blobs = [img.configDigest, ...img.layerDigests];
  const ref = `localhost:${s.mock.port}/${REPO}:v1`;
  const podman = podmanIn(s.dir);
  // Let podman take down what it made under --root/--runroot, then remove the lot: the
  // stack's own removal of s.dir ran before this hook (after hooks run in order).
  t.after(async () => {
    for (const store of ['a', 'b']) await podman(store, 'system', 'reset', '--force');
    await rm(s.dir, { recursive: true, force: true });
  });
  const pullInto = async (store: string): Promise<Inspected> => {
    const pulled = await podman(store, 'pull', '--cert-dir', s.certDir, '--creds', 'alice:alice-pw', ref);
    assert.equal(pulled.code, 0, pulled.out);
    const inspect = await podman(store, 'image', 'inspect', ref);
    assert.equal(inspect.code, 0, inspect.out);
    const [image] = JSON.parse(inspect.out) as Inspected[];
    assert.ok(image !== undefined, inspect.out);
    return { Id: image.Id, Digest: image.Digest, RootFS: { Layers: image.RootFS.Layers } };
  };

  const first = await pullInto('a');
  // Uncompressed layers: podman's diff IDs are the layer digests; its image ID is the config's.
  assert.equal(first.Digest, img.manifestDigest);
  assert.equal(`sha256:${first.Id}`, img.configDigest);
  assert.deepEqual(first.RootFS.Layers, img.layerDigests);
  const after1 = originGets(s.mock, blobs);
  for (const d of blobs) assert.deepEqual(after1.get(d), { redirected: 1, served: 1 }, `origin counts for ${d}`);
  const lines1 = await waitFor(10_000, 'a published fill per blob', async () => {
    const lines = await s.cache.logLines();
    return blobs.every((d) => fillsPublished(lines, d) === 1 && outcomes(lines, d).includes('miss'))
      ? lines
      : undefined;
  });

  const second = await pullInto('b');
  assert.deepEqual(second, first);
  const after2 = originGets(s.mock, blobs);
  for (const d of blobs)
    assert.deepEqual(after2.get(d), { redirected: 2, served: 1 }, `origin counts for ${d} after the second pull`);
  await waitFor(10_000, 'a hit per blob on the second pull', async () => {
    const lines = (await s.cache.logLines()).slice(lines1.length);
    return (
      blobs.every((d) => outcomes(lines, d).length > 0 && outcomes(lines, d).every((o) => o === 'hit')) || undefined
    );
  });
});
