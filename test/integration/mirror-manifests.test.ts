// Mirror mode, manifests (issue 15): by tag from the store while fresh, revalidated with one
// upstream HEAD once tagttl has passed (a GET only when the tag moved), by digest verified and
// kept, concurrent requests for one tag collapsed, Accept negotiated as distribution does,
// Docker Hub's `library/`, and `ns` only ever a key into the configured list.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import test from 'node:test';
import { createOciImage, type OciImage } from '../../testkit/image.js';
import {
  ACCEPT_ALL,
  MIRROR_USER,
  REGISTRY,
  requestLines,
  startMirrorStack,
  type MirrorStack,
} from '../helpers/mirror.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

async function pushImage(s: MirrorStack, repo: string, tag: string, seed: string): Promise<OciImage> {
  const img = await createOciImage(join(s.dir, `img-${seed}`), { layers: [20_000, 5_000], seed, tag });
  await s.upstream.putOciLayout(img.dir, repo, tag);
  return img;
}

/** Upstream manifest requests that were answered (the token flow's 401s left out). */
const manifestRequests = (s: MirrorStack, repo: string) =>
  s
    .upstreamLog(new RegExp(`^/v2/${repo}/manifests/`))
    .filter((e) => e.status !== 401)
    .map((e) => `${e.method} ${e.path.split('/manifests/')[1]}`);

test('a tag is fetched once, served fresh without the upstream, then revalidated by HEAD', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [
      { registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true, tagttl: '1h' },
      { registry: 'always.test', username: MIRROR_USER.user, password: MIRROR_USER.password, tagttl: '0s' },
    ],
  });
  const img = await pushImage(s, 'team/app', 'v1', 'm1');
  const first = await s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(first.status, 200, first.body.toString());
  assert.equal(first.headers['content-type'], OCI_MANIFEST);
  assert.equal(first.headers['docker-content-digest'], img.manifestDigest);
  assert.equal(Number(first.headers['content-length']), img.manifestSize);
  assert.equal(`sha256:${first.sha256}`, img.manifestDigest);
  const again = await s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(again.status, 200);
  assert.equal(again.headers['docker-content-digest'], img.manifestDigest);
  assert.deepEqual(manifestRequests(s, 'team/app'), ['GET v1'], 'fresh for tagttl: one upstream GET in all');

  // tagttl 0s: every pull asks, with a HEAD; a GET only once the tag moved.
  const ns = '?ns=always.test';
  assert.equal((await s.get(`/v2/team/app/manifests/v1${ns}`, { headers: { accept: ACCEPT_ALL } })).status, 200);
  const head = await s.get(`/v2/team/app/manifests/v1${ns}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(head.headers['docker-content-digest'], img.manifestDigest);
  assert.deepEqual(manifestRequests(s, 'team/app'), ['GET v1', 'GET v1', 'HEAD v1']);
  const moved = await pushImage(s, 'team/app', 'v1', 'm2');
  const now = await s.get(`/v2/team/app/manifests/v1${ns}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(now.status, 200);
  assert.equal(now.headers['docker-content-digest'], moved.manifestDigest);
  assert.equal(`sha256:${now.sha256}`, moved.manifestDigest);
  assert.deepEqual(manifestRequests(s, 'team/app'), [
    'GET v1',
    'GET v1',
    'HEAD v1',
    'HEAD v1',
    `GET ${moved.manifestDigest}`,
  ]);
  const outcomes = (await requestLines(s.cache, 'manifest')).map((l) => l['outcome']);
  assert.deepEqual(outcomes, ['miss', 'hit', 'miss', 'revalidated', 'miss']);
});

test('by digest: fetched once and verified, then served from the store; HEAD answers alike', async (t) => {
  const s = await startMirrorStack(t);
  const img = await pushImage(s, 'team/app', 'v1', 'd1');
  const path = `/v2/team/app/manifests/${img.manifestDigest}`;
  for (let i = 0; i < 3; i++) {
    const r = await s.get(path, { headers: { accept: ACCEPT_ALL } });
    assert.equal(r.status, 200);
    assert.equal(`sha256:${r.sha256}`, img.manifestDigest);
  }
  const head = await s.get(path, { method: 'HEAD', headers: { accept: ACCEPT_ALL } });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), img.manifestSize);
  assert.equal(head.headers['docker-content-digest'], img.manifestDigest);
  assert.deepEqual(manifestRequests(s, 'team/app'), [`GET ${img.manifestDigest}`]);
  const notModified = await s.get(path, {
    headers: { accept: ACCEPT_ALL, 'if-none-match': `"${img.manifestDigest}"` },
  });
  assert.equal(notModified.status, 304);
  const anyTag = await s.get(path, { headers: { accept: ACCEPT_ALL, 'if-none-match': '*' } });
  assert.equal(anyTag.status, 304, 'If-None-Match: *');
  // A digest the upstream does not have: its 404, relayed; nothing kept.
  const absent = await s.get(`/v2/team/app/manifests/sha256:${'0'.repeat(64)}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(absent.status, 404);
  assert.equal(
    (JSON.parse(absent.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code,
    'MANIFEST_UNKNOWN',
  );
});

test('20 concurrent requests for a cold tag make one upstream GET; for a stale tag one HEAD', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [
      { registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true, tagttl: '0s' },
    ],
  });
  const img = await pushImage(s, 'team/app', 'v1', 'c1');
  // Upstream latency keeps the 20 requests in flight together.
  s.upstream.setLatency(300);
  const pull = () => s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  const cold = await Promise.all(Array.from({ length: 20 }, pull));
  for (const r of cold) assert.equal(r.headers['docker-content-digest'], img.manifestDigest);
  assert.deepEqual(manifestRequests(s, 'team/app'), ['GET v1']);
  const warm = await Promise.all(Array.from({ length: 20 }, pull));
  for (const r of warm) assert.equal(r.status, 200);
  assert.deepEqual(manifestRequests(s, 'team/app'), ['GET v1', 'HEAD v1']);
  const outcomes = (await requestLines(s.cache, 'manifest')).map((l) => String(l['outcome']));
  assert.equal(outcomes.filter((o) => o === 'joined').length, 38, 'all but one of each wave joined');
});

test('Accept: an OCI manifest only to clients that read it; a Docker list rewritten to linux/amd64', async (t) => {
  const s = await startMirrorStack(t);
  await pushImage(s, 'team/app', 'v1', 'a1');
  const dockerOnly = { accept: DOCKER_MANIFEST };
  const refused = await s.get('/v2/team/app/manifests/v1', { headers: dockerOnly });
  assert.equal(refused.status, 404);
  assert.match(refused.body.toString(), /MANIFEST_UNKNOWN.*OCI manifest found/);
  // Docker v2 images behind a manifest list.
  const dockerImage = async (arch: string) => {
    const cfg = await s.upstream.putBlob('team/multi', Buffer.from(`{"architecture":"${arch}","os":"linux"}`));
    const layer = await s.upstream.putBlob('team/multi', Buffer.from(`layer bytes for ${arch}`));
    return s.upstream.putManifest(
      'team/multi',
      `${arch}-only`,
      {
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: cfg.digest, size: cfg.size },
        layers: [
          { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layer.digest, size: layer.size },
        ],
      },
      DOCKER_MANIFEST,
    );
  };
  const arm = await dockerImage('arm64');
  const child = await dockerImage('amd64');
  const list = await s.upstream.putManifest(
    'team/multi',
    'v1',
    {
      schemaVersion: 2,
      mediaType: DOCKER_LIST,
      manifests: [
        {
          mediaType: DOCKER_MANIFEST,
          digest: arm.digest,
          size: arm.size,
          platform: { architecture: 'arm64', os: 'linux' },
        },
        {
          mediaType: DOCKER_MANIFEST,
          digest: child.digest,
          size: child.size,
          platform: { architecture: 'amd64', os: 'linux' },
        },
      ],
    },
    DOCKER_LIST,
  );
  const asList = await s.get('/v2/team/multi/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(asList.headers['docker-content-digest'], list.digest);
  assert.equal(asList.headers['content-type'], DOCKER_LIST);
  const rewritten = await s.get('/v2/team/multi/manifests/v1', { headers: dockerOnly });
  assert.equal(rewritten.status, 200, rewritten.body.toString());
  assert.equal(rewritten.headers['docker-content-digest'], child.digest);
  assert.equal(rewritten.headers['content-type'], DOCKER_MANIFEST);
  assert.equal(`sha256:${rewritten.sha256}`, child.digest);
  // By digest the list is the list, whatever the client accepts (as distribution does).
  const byDigest = await s.get(`/v2/team/multi/manifests/${list.digest}`, { headers: dockerOnly });
  assert.equal(byDigest.headers['docker-content-digest'], list.digest);
});

test('Docker Hub: a one-part name is library/<name>, with ns=docker.io', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [{ registry: 'docker.io', username: MIRROR_USER.user, password: MIRROR_USER.password }],
  });
  const img = await pushImage(s, 'library/app', 'v1', 'h1');
  for (const path of ['/v2/app/manifests/v1?ns=docker.io', '/v2/library/app/manifests/v1?ns=docker.io']) {
    const r = await s.get(path, { headers: { accept: ACCEPT_ALL } });
    assert.equal(r.status, 200, `${path}: ${r.body.toString()}`);
    assert.equal(r.headers['docker-content-digest'], img.manifestDigest);
  }
  assert.deepEqual(manifestRequests(s, 'library/app'), ['GET v1'], 'the same tag: one fetch for both spellings');
  const lines = await requestLines(s.cache, 'manifest');
  assert.deepEqual(
    lines.map((l) => [l['registry'], l['repo']]),
    [
      ['docker.io', 'library/app'],
      ['docker.io', 'library/app'],
    ],
  );
});

test('an ns not in the list, or naming a host, is 404 NAME_UNKNOWN and nothing is dialled', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [{ registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password }],
  });
  await pushImage(s, 'team/app', 'v1', 'n1');
  // A listener that counts connections: an ns naming it must not reach it.
  const sockets: Socket[] = [];
  const sentinel = createServer((sock) => {
    sockets.push(sock);
    sock.destroy();
  });
  await new Promise<void>((r) => sentinel.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => sentinel.close(() => r())));
  const port = (sentinel.address() as { port: number }).port;
  const upstreamHost = new URL(s.upstream.url).host;
  const bad = [
    `127.0.0.1:${port}`,
    `localhost:${port}`,
    upstreamHost,
    'docker.io',
    `https://${upstreamHost}`,
    `${REGISTRY}&ns=other.test`,
    '',
  ];
  for (const ns of bad) {
    for (const path of [`/v2/team/app/manifests/v1`, `/v2/team/app/blobs/sha256:${'a'.repeat(64)}`]) {
      const r = await s.get(`${path}?ns=${ns.includes('&') ? ns : encodeURIComponent(ns)}`, {
        headers: { accept: ACCEPT_ALL },
      });
      assert.equal(r.status, 404, `ns=${ns}`);
      assert.equal(
        (JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code,
        'NAME_UNKNOWN',
      );
    }
  }
  // No default mirror: a request without ns names no registry either.
  const none = await s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(none.status, 404);
  assert.equal(sockets.length, 0, 'no connection to the host an ns named');
  assert.deepEqual(s.upstreamLog(), [], 'and none to the upstream');
  const ok = await s.get(`/v2/team/app/manifests/v1?ns=${REGISTRY.toUpperCase()}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(ok.status, 200, 'a registry name is a host name: any case');
  // Clients that cannot send ns (a podman mirror location "node/registry.test") name it first in the path.
  const prefixed = await s.get(`/v2/${REGISTRY}/team/app/manifests/v1`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(prefixed.status, 200);
  assert.equal(prefixed.headers['docker-content-digest'], ok.headers['docker-content-digest']);
  const other = await s.get('/v2/other.test/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(other.status, 404, 'a first component that names no mirrored registry is only a name');
});

test('referrers are passed through, never kept; an upstream 404 stays a 404', async (t) => {
  const s = await startMirrorStack(t);
  const img = await pushImage(s, 'team/app', 'v1', 'r1');
  const referrer = async (n: number) => {
    const blob = await s.upstream.putBlob('team/app', Buffer.from(`signature ${n}`));
    return s.upstream.putManifest(
      'team/app',
      `sig-${n}`,
      {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: blob.digest, size: blob.size },
        layers: [{ mediaType: 'application/octet-stream', digest: blob.digest, size: blob.size }],
        subject: { mediaType: OCI_MANIFEST, digest: img.manifestDigest, size: img.manifestSize },
      },
      OCI_MANIFEST,
    );
  };
  const path = `/v2/team/app/referrers/${img.manifestDigest}`;
  const read = async () => {
    const r = await s.get(path);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['content-type'], 'application/vnd.oci.image.index.v1+json');
    return (JSON.parse(r.body.toString()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest);
  };
  assert.deepEqual(await read(), []);
  const one = await referrer(1);
  assert.deepEqual(await read(), [one.digest], 'the list grew: not served from a copy');
  const two = await referrer(2);
  assert.deepEqual(await read(), [one.digest, two.digest]);
  const filtered = await s.get(`${path}?artifactType=application/vnd.example.signature`);
  assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
  assert.equal(s.upstreamLog(/\/referrers\//).filter((e) => e.status === 200).length, 4, 'every request went upstream');
  // Reads only, and a 405 names them: HEAD is no method of the referrers API.
  const head = await s.get(path, { method: 'HEAD' });
  assert.equal(head.status, 405);
  assert.equal(head.headers.allow, 'GET');

  const plain = await startMirrorStack(t, { upstream: { referrers: false } });
  const img2 = await pushImage(plain, 'team/app', 'v1', 'r2');
  const missing = await plain.get(`/v2/team/app/referrers/${img2.manifestDigest}`);
  assert.equal(missing.status, 404);
  assert.equal((await plain.get(`/v2/team/app/referrers/${img2.manifestDigest}`)).status, 404, 'and again: not cached');
  assert.equal(plain.upstreamLog(/\/referrers\//).filter((e) => e.status === 404).length, 2);
});
