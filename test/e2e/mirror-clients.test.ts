// Mirror mode with real clients (issue 15), each configured the way its documentation says
// (CLIENTS.md, "As a mirror"): containerd with a hosts.toml naming the node as mirror of a
// registry (it must send ?ns=, so that mirror is not the default here), podman and skopeo
// with a registries.conf mirror, and skopeo against the node by tag and by digest. The
// upstream is the DTR mock with token auth; every client's digests must match the image's,
// and each blob is fetched from the upstream once.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { createOciImage, type OciImage } from '../../testkit/image.js';
import { badBlobs, readLayoutImage } from '../../testkit/oci-layout.js';
import { caCertDir, podmanIn, runTool } from '../../testkit/tools.js';
import { startContainerd } from '../helpers/containerd.js';
import { MIRROR_USER, requestLines, startMirrorStack, upstreamBlobGets, type MirrorStack } from '../helpers/mirror.js';
import { requireTool } from './e2e-stack.js';

// A registry name that resolves nowhere: every byte must come through the mirror.
const UPSTREAM_NAME = 'registry.mirror-test.invalid';
const REPO = 'team/app';

async function stack(t: test.TestContext, isDefault: boolean): Promise<{ s: MirrorStack; img: OciImage }> {
  const s = await startMirrorStack(t, {
    mirrors: [
      { registry: UPSTREAM_NAME, username: MIRROR_USER.user, password: MIRROR_USER.password, default: isDefault },
    ],
  });
  const img = await createOciImage(join(s.dir, 'img'), {
    layers: [3_000_000, 400_000, 20_000],
    seed: 'clients',
    tag: 'v1',
  });
  await s.upstream.putOciLayout(img.dir, REPO, 'v1');
  return { s, img };
}

const blobsOf = (img: OciImage) => [img.configDigest, ...img.layerDigests];

async function registriesConf(s: MirrorStack): Promise<string> {
  const file = join(s.dir, 'registries.conf');
  await writeFile(
    file,
    [
      `[[registry]]`,
      `location = "${UPSTREAM_NAME}"`,
      `[[registry.mirror]]`,
      `location = "localhost:${s.cache.port}"`,
      '',
    ].join('\n'),
  );
  return file;
}

test('containerd: ctr images pull through a hosts.toml mirror sends ?ns=, digests match', async (t) => {
  if (!(await requireTool(t, 'containerd', true)) || !(await requireTool(t, 'ctr', true))) return;
  const { s, img } = await stack(t, false);
  const c = await startContainerd(t, join(s.dir, 'containerd'));
  const hosts = await c.mirrorFor(
    UPSTREAM_NAME,
    `https://${UPSTREAM_NAME}`,
    `https://localhost:${s.cache.port}`,
    s.ca.certPath,
  );
  const ref = `${UPSTREAM_NAME}/${REPO}:v1`;
  const pulled = await c.ctr(['images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', ref]);
  assert.equal(pulled.code, 0, pulled.out);
  const listed = await c.ctr(['images', 'ls']);
  assert.match(listed.out, new RegExp(`${ref.replace(/[.]/g, '\\.')}\\s+\\S+\\s+${img.manifestDigest}`));
  const lines = [...(await requestLines(s.cache, 'manifest')), ...(await requestLines(s.cache, 'blob'))];
  assert.ok(lines.length >= 4, `${lines.length} requests`);
  assert.ok(
    lines.every((l) => l['registry'] === UPSTREAM_NAME && l['status'] === 200),
    `every request named the registry with ?ns= (no default mirror here): ${JSON.stringify(lines.map((l) => [l['registry'], l['status']]))}`,
  );
  assert.deepEqual(upstreamBlobGets(s, blobsOf(img)), [1, 1, 1, 1]);
  // A second pull into a fresh namespace: nothing more from the upstream.
  const again = await c.ctr(['-n', 'second', 'images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', ref]);
  assert.equal(again.code, 0, again.out);
  assert.deepEqual(upstreamBlobGets(s, blobsOf(img)), [1, 1, 1, 1]);
});

test('podman: a registries.conf mirror; digests match, blobs fetched once', async (t) => {
  if (!(await requireTool(t, 'podman', true))) return;
  const { s, img } = await stack(t, true);
  const conf = await registriesConf(s);
  const certDir = await caCertDir(s.ca.certPath, join(s.dir, 'certs.d', `localhost:${s.cache.port}`));
  const env = { CONTAINERS_REGISTRIES_CONF: conf };
  const podman = podmanIn(s.dir, env);
  t.after(async () => {
    for (const store of ['a', 'b']) await podman(store, 'system', 'reset', '--force');
  });
  const ref = `${UPSTREAM_NAME}/${REPO}:v1`;
  for (const store of ['a', 'b']) {
    const pulled = await podman(store, 'pull', '--cert-dir', certDir, ref);
    assert.equal(pulled.code, 0, pulled.out);
    const inspect = await podman(store, 'image', 'inspect', ref);
    assert.equal(inspect.code, 0, inspect.out);
    const [image] = JSON.parse(inspect.out) as Array<{ Id: string; Digest: string; RootFS: { Layers: string[] } }>;
    assert.equal(image?.Digest, img.manifestDigest);
    assert.equal(`sha256:${image?.Id ?? ''}`, img.configDigest);
    assert.deepEqual(image?.RootFS.Layers, img.layerDigests);
  }
  assert.deepEqual(upstreamBlobGets(s, blobsOf(img)), [1, 1, 1, 1]);
});

test('skopeo: by tag and by digest from the node, and through a registries.conf mirror', async (t) => {
  if (!(await requireTool(t, 'skopeo', true))) return;
  const { s, img } = await stack(t, true);
  const certDir = await caCertDir(s.ca.certPath, join(s.dir, 'certs'));
  const skopeo = (...args: string[]) => runTool('skopeo', ['--insecure-policy', ...args], 120_000);
  const copy = (src: string, out: string, ...extra: string[]) =>
    skopeo(...extra, 'copy', '--preserve-digests', '--src-cert-dir', certDir, src, `oci:${out}:v1`);
  const node = `docker://localhost:${s.cache.port}/${REPO}`;
  for (const [src, out] of [
    [`${node}:v1`, 'by-tag'],
    [`${node}@${img.manifestDigest}`, 'by-digest'],
  ] as const) {
    const r = await copy(src, join(s.dir, out));
    assert.equal(r.code, 0, r.out);
    const got = await readLayoutImage(join(s.dir, out));
    assert.equal(got.manifestDigest, img.manifestDigest, out);
    assert.deepEqual(got.layerDigests, img.layerDigests, out);
    assert.deepEqual(await badBlobs(join(s.dir, out), blobsOf(img)), [], out);
  }
  const conf = await registriesConf(s);
  const mirrored = await copy(
    `docker://${UPSTREAM_NAME}/${REPO}:v1`,
    join(s.dir, 'mirrored'),
    '--registries-conf',
    conf,
  );
  assert.equal(mirrored.code, 0, mirrored.out);
  assert.equal((await readLayoutImage(join(s.dir, 'mirrored'))).manifestDigest, img.manifestDigest);
  assert.deepEqual(upstreamBlobGets(s, blobsOf(img)), [1, 1, 1, 1]);
});
