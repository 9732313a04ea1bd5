// Mirror mode, blobs (issue 15): the node's own fill behind a mirror — one upstream GET per
// blob however many clients pull at once, bytes verified, kept, then served from the store;
// HEAD answered by an upstream HEAD; Range on a miss; redirects to another host (a CDN)
// followed without the mirror's credentials; and DTR mode beside it on the same port.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { createOciImage, type OciImage } from '../../testkit/image.js';
import { blobPath } from '../../testkit/oci-layout.js';
import { createTestCa } from '../../testkit/pki.js';
import { waitFor } from '../helpers/deadline.js';
import { send, startFakeRegistry } from '../helpers/fake-registry.js';
import {
  ACCEPT_ALL,
  MIRROR_USER,
  REGISTRY,
  pullImage,
  requestLines,
  startMirrorStack,
  upstreamBlobGets,
  waitPublished,
  type MirrorStack,
} from '../helpers/mirror.js';

async function pushImage(s: MirrorStack, repo: string, tag: string, seed: string, layers = [300_000, 200_000, 4_000]) {
  const img = await createOciImage(join(s.dir, `img-${seed}`), { layers, seed, tag });
  await s.upstream.putOciLayout(img.dir, repo, tag);
  return img;
}

const allBlobs = (img: OciImage) => [img.configDigest, ...img.layerDigests];

test('a pull fetches each blob once, verified; the next pull is served from the store', async (t) => {
  const s = await startMirrorStack(t);
  const img = await pushImage(s, 'team/app', 'v1', 'b1');
  const first = await pullImage(s, 'team/app', 'v1');
  assert.deepEqual(first.statuses, [200, 200, 200, 200, 200]);
  assert.deepEqual(first.blobs, allBlobs(img));
  assert.deepEqual(upstreamBlobGets(s, allBlobs(img)), [1, 1, 1, 1]);
  await waitPublished(s.cache, allBlobs(img));
  const second = await pullImage(s, 'team/app', 'v1');
  assert.deepEqual(second.statuses, [200, 200, 200, 200, 200]);
  assert.deepEqual(upstreamBlobGets(s, allBlobs(img)), [1, 1, 1, 1], 'no upstream GET the second time');
  const lines = await requestLines(s.cache, 'blob');
  assert.deepEqual(
    lines.map((l) => l['outcome']),
    ['miss', 'miss', 'miss', 'miss', 'hit', 'hit', 'hit', 'hit'],
  );
  assert.ok(lines.every((l) => l['registry'] === REGISTRY && l['repo'] === 'team/app'));
  // Range, If-None-Match, HEAD from the store.
  const layer = img.layerDigests[0] ?? '';
  const ranged = await s.get(`/v2/team/app/blobs/${layer}`, { headers: { range: 'bytes=10-19' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.body.length, 10);
  const cached = await s.get(`/v2/team/app/blobs/${layer}`, { headers: { 'if-none-match': `"other", W/"${layer}"` } });
  assert.equal(cached.status, 304, 'If-None-Match: a list, compared weakly');
  const any = await s.get(`/v2/team/app/blobs/${layer}`, { headers: { 'if-none-match': '*' } });
  assert.equal(any.status, 304, 'If-None-Match: * on a stored blob');
  const stale = await s.get(`/v2/team/app/blobs/${layer}`, {
    headers: { range: 'bytes=10-19', 'if-range': '"other"' },
  });
  assert.equal(stale.status, 200, 'an If-Range that does not match: the whole blob');
  assert.equal(stale.body.length, img.sizes[0]);
  const head = await s.get(`/v2/team/app/blobs/${layer}`, { method: 'HEAD', headers: { range: 'bytes=10-19' } });
  assert.equal(head.status, 200, 'a HEAD ignores Range');
  assert.equal(Number(head.headers['content-length']), img.sizes[0]);
});

test('20 clients pulling one cold image at once: one upstream GET per blob, one manifest GET, one token', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [
      { registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true, tagttl: '0s' },
    ],
  });
  const img = await pushImage(s, 'team/app', 'v1', 'b2', [2_000_000, 1_000_000, 500_000]);
  // A slow link keeps every transfer in flight while the others arrive.
  s.upstream.setLatency(200);
  s.upstream.setBandwidth(4_000_000);
  const pulls = await Promise.all(Array.from({ length: 20 }, () => pullImage(s, 'team/app', 'v1')));
  for (const p of pulls) assert.deepEqual(p.statuses, [200, 200, 200, 200, 200]);
  assert.deepEqual(upstreamBlobGets(s, allBlobs(img)), [1, 1, 1, 1], 'one upstream GET per blob');
  assert.deepEqual(
    s.upstreamLog(/\/blobs\//).filter((e) => e.method === 'HEAD'),
    [],
    'joining its own download needs no confirmation',
  );
  const manifests = s.upstreamLog(/\/manifests\//).filter((e) => e.status !== 401);
  assert.deepEqual(
    manifests.map((e) => e.method),
    ['GET'],
  );
  assert.equal(s.upstreamLog(/^\/auth\/token$/).length, 1);
  // Warm, with tagttl 0: twenty revalidations of the tag make one upstream HEAD.
  await Promise.all(Array.from({ length: 20 }, () => pullImage(s, 'team/app', 'v1')));
  assert.deepEqual(
    s
      .upstreamLog(/\/manifests\//)
      .filter((e) => e.status !== 401)
      .map((e) => e.method),
    ['GET', 'HEAD'],
  );
  assert.deepEqual(upstreamBlobGets(s, allBlobs(img)), [1, 1, 1, 1]);
  const outcomes = (await requestLines(s.cache, 'blob')).map((l) => String(l['outcome']));
  assert.equal(outcomes.filter((o) => o === 'miss').length, 4);
  assert.equal(outcomes.filter((o) => o === 'joined').length, 76);
});

test('HEAD of a blob not stored asks the upstream with a HEAD and downloads nothing; a 404 is relayed', async (t) => {
  const s = await startMirrorStack(t);
  const img = await pushImage(s, 'team/app', 'v1', 'b3');
  const layer = img.layerDigests[0] ?? '';
  const head = await s.get(`/v2/team/app/blobs/${layer}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers['content-length']), img.sizes[0]);
  assert.deepEqual(
    s
      .upstreamLog(/\/blobs\//)
      .filter((e) => e.status !== 401)
      .map((e) => e.method),
    ['HEAD'],
  );
  const absent = await s.get(`/v2/team/app/blobs/sha256:${'e'.repeat(64)}`);
  assert.equal(absent.status, 404);
  assert.match(absent.body.toString(), /BLOB_UNKNOWN/);
  const ranged = await s.get(`/v2/team/app/blobs/${layer}`, { headers: { range: 'bytes=100-' } });
  assert.equal(ranged.status, 206, 'a Range request on a miss is served from the fill');
  assert.equal(ranged.body.length, (img.sizes[0] ?? 0) - 100);
  await waitPublished(s.cache, [layer]);
  // Conditional misses: a HEAD with `*` once the upstream's HEAD found it; a GET naming the
  // tag of a blob never seen here once its download has started, which goes on and publishes.
  const other = img.layerDigests[1] ?? '';
  const anyHead = await s.get(`/v2/team/app/blobs/${other}`, { method: 'HEAD', headers: { 'if-none-match': '*' } });
  assert.equal(anyHead.status, 304);
  const unseen = img.layerDigests[2] ?? '';
  const named = await s.get(`/v2/team/app/blobs/${unseen}`, { headers: { 'if-none-match': `"${unseen}"` } });
  assert.equal(named.status, 304);
  assert.equal(named.body.length, 0);
  await waitPublished(s.cache, [unseen]);
  assert.deepEqual(upstreamBlobGets(s, [other, unseen]), [0, 1]);
});

test('a redirect to another host (a CDN) is followed without the credentials', async (t) => {
  const ca = await createTestCa('mirror redirect test CA');
  let layout = '';
  // It offers HTTP/2, as CDNs do; the mirror's fills ask for HTTP/1.1 (docs/architecture.md,
  // "Upstream connections"), or this server, which speaks only that, would not answer.
  const cdn = await startFakeRegistry(
    t,
    await ca.issue('cdn'),
    (_req, res, url) => {
      const digest = url.pathname.split('/blobs/')[1] ?? '';
      readFile(blobPath(layout, digest)).then(
        (bytes) => send(res, 200, { 'Content-Type': 'application/octet-stream' }, bytes),
        () => send(res, 404, {}),
      );
    },
    ['h2', 'http/1.1'],
  );
  const s = await startMirrorStack(t, { ca });
  const img = await pushImage(s, 'team/app', 'v1', 'b4', [50_000]);
  layout = img.dir;
  // The mock redirects a user's blob GETs to the content cache selected for them: the "CDN".
  s.upstream.addContentCache('cdn', cdn.url);
  s.upstream.setContentCache(MIRROR_USER.user, 'cdn');
  const pulled = await pullImage(s, 'team/app', 'v1');
  assert.deepEqual(pulled.statuses, [200, 200, 200]);
  assert.equal(cdn.seen.length, 2, 'both blobs came from the CDN');
  assert.ok(
    cdn.seen.every((x) => x.alpn === 'http/1.1'),
    'over HTTP/1.1',
  );
  assert.ok(
    cdn.seen.every((x) => x.authorization === undefined),
    'no Authorization to another origin',
  );
  assert.ok(
    cdn.seen.every((x) => x.path.includes('?token=')),
    "the redirect's own URL, query and all",
  );
  assert.deepEqual((await pullImage(s, 'team/app', 'v1')).statuses, [200, 200, 200]);
  assert.equal(cdn.seen.length, 2, 'then from the store');
});

test('DTR mode and mirror mode on one port: a redirect token takes the DTR path', async (t) => {
  const s = await startMirrorStack(t);
  // The same mock is the DTR origin of the DTR side.
  const both = await startMirrorStack(t, {
    ca: s.ca,
    mirrors: [
      {
        registry: REGISTRY,
        remoteurl: s.upstream.url,
        username: MIRROR_USER.user,
        password: MIRROR_USER.password,
        default: true,
      },
    ],
    dtrUpstreams: [s.upstream.url],
  });
  const img = await pushImage(s, 'team/app', 'v1', 'b5', [40_000]);
  const layer = img.layerDigests[0] ?? '';
  const token = await s.upstream.mintRedirectToken({ sub: 'alice', name: 'team/app', digest: layer, ttlSec: 60 });
  const viaDtr = await both.get(`/v2/team/app/blobs/${layer}?token=${token}`);
  assert.equal(viaDtr.status, 200);
  assert.equal(`sha256:${viaDtr.sha256}`, layer);
  // Publication follows the last byte, off the client's path: wait for it, so the next
  // request finds the stored copy (not the fill still publishing).
  await waitFor(
    10_000,
    'the DTR fill published',
    async () =>
      (await both.cache.logLines()).some((l) => l['msg'] === 'fill published' && l['digest'] === layer) || undefined,
  );
  // Twenty mirror clients at once, no token: the default mirror, one confirmation HEAD for all.
  s.upstream.setLatency(300);
  const noToken = await Promise.all(Array.from({ length: 20 }, () => both.get(`/v2/team/app/blobs/${layer}`)));
  for (const r of noToken) assert.equal(`sha256:${r.sha256}`, layer, 'without a token: the default mirror');
  s.upstream.setLatency(0);
  const lines = await requestLines(both.cache, 'blob');
  assert.deepEqual(
    lines.map((l) => [l['registry'] ?? 'dtr', l['outcome']]),
    [['dtr', 'miss'], ...Array.from({ length: 20 }, () => [REGISTRY, 'hit'])],
  );
  const mirrorAsks = s.upstreamLog(new RegExp(`/blobs/${layer}$`)).filter((e) => e.user === MIRROR_USER.user);
  assert.deepEqual(
    mirrorAsks.map((e) => e.method),
    ['HEAD'],
    'the mirror confirmed the blob in its repository before serving the stored copy',
  );
  const badToken = await both.get(`/v2/team/app/blobs/${layer}?token=not-a-token`);
  assert.equal(badToken.status, 401, 'a redirect token is checked as ever');
  const manifest = await both.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(manifest.status, 200);
});
