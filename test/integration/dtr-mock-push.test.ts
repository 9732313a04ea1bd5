// Pushing to the DTR mock: a registry-client push and pull round trip on directory storage
// (manifests, tags, a restart), the upload protocol (chunks, digests, mounts, manifest kinds),
// clients that give up halfway, and uploads streamed to disk rather than held in memory.
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { createOciImage } from '../../testkit/image.js';
import { RegistryClient } from '../../testkit/registry-client.js';
import { waitFor } from '../helpers/deadline.js';
import { DEADLINE, agent, bytes, ca, mock, sha256, tmp } from '../helpers/dtr-mock.js';
import { errorCode, h, http, token } from '../helpers/dtr-mock-http.js';

test('push with registry-client, pull back with digest checks; manifests and tags (directory storage)', async (t) => {
  const dir = await tmp(t, 'push');
  const m = await mock(t, { storage: { dir: join(dir, 'store') } });
  const img = await createOciImage(join(dir, 'img'), { layers: [100_000, 3 * 1024 * 1024 + 17], seed: 'push' });
  const client = new RegistryClient({ baseUrl: m.url, ca: ca.cert, username: 'alice', password: 'alice-pw' });
  t.after(() => client.close());

  const pushed = await client.pushImage(img.dir, 'library/app', 'v1');
  assert.equal(pushed.manifestDigest, img.manifestDigest);
  assert.deepEqual(
    pushed.blobs.map((b) => b.digest),
    [img.configDigest, ...img.layerDigests],
  );
  assert.ok(pushed.blobs.every((b) => b.uploaded));
  // Blobs land on disk as whole files.
  const onDisk = await stat(join(dir, 'store', 'blobs', 'sha256', img.layerDigests[1]!.slice(7)));
  assert.equal(onDisk.size, img.sizes[1]);
  const again = await client.pushImage(img.dir, 'library/app', 'v2');
  assert.ok(
    again.blobs.every((b) => !b.uploaded),
    'existing blobs are not uploaded twice',
  );

  const out = join(dir, 'out');
  const pulled = await client.pullImage('library/app', 'v1', out);
  assert.equal(pulled.manifestDigest, img.manifestDigest);
  assert.deepEqual(
    pulled.blobs.map((b) => [b.digest, b.size, b.redirectedTo]),
    [[img.configDigest, img.configSize, undefined], ...img.layerDigests.map((d, i) => [d, img.sizes[i], undefined])],
  );
  for (const name of await readdir(join(out, 'blobs', 'sha256'))) {
    assert.equal(sha256(await readFile(join(out, 'blobs', 'sha256', name))), `sha256:${name}`);
  }

  const tok = await token(m, 'alice', 'alice-pw', 'repository:library/app:pull');
  const auth = { authorization: `Bearer ${tok}` };
  const head = await http(`${m.url}/v2/library/app/manifests/v1`, { method: 'HEAD', headers: auth });
  assert.equal(head.status, 200);
  assert.equal(h(head, 'docker-content-digest'), img.manifestDigest);
  assert.equal(h(head, 'content-type'), 'application/vnd.oci.image.manifest.v1+json');
  const byDigest = await http(`${m.url}/v2/library/app/manifests/${img.manifestDigest}`, { headers: auth });
  assert.equal(sha256(byDigest.body), img.manifestDigest);
  const tags = await http(`${m.url}/v2/library/app/tags/list`, { headers: auth });
  assert.deepEqual(JSON.parse(tags.body.toString()), { name: 'library/app', tags: ['v1', 'v2'] });
  const page = await http(`${m.url}/v2/library/app/tags/list?n=1`, { headers: auth });
  assert.deepEqual(JSON.parse(page.body.toString()), { name: 'library/app', tags: ['v1'] });
  assert.match(h(page, 'link') ?? '', /last=v1/);
  const unknown = await http(`${m.url}/v2/library/app/manifests/nope`, { headers: auth });
  assert.equal(unknown.status, 404);
  assert.equal(errorCode(unknown), 'MANIFEST_UNKNOWN');

  // The manifest index survives a restart of a directory-backed mock.
  await m.close();
  const m2 = await mock(t, { storage: { dir: join(dir, 'store') } });
  const c2 = new RegistryClient({ baseUrl: m2.url, ca: ca.cert, username: 'alice', password: 'alice-pw' });
  t.after(() => c2.close());
  assert.equal((await c2.getManifest('library/app', 'v2')).digest, img.manifestDigest);
});

test('uploads: chunked PATCH, digest mismatch, monolithic POST, mount, index manifests', async (t) => {
  const m = await mock(t);
  const tok = await token(m, 'alice', 'alice-pw', 'repository:library/app:pull,push repository:team/src:pull');
  const auth = { authorization: `Bearer ${tok}` };
  const blob = bytes(200_000, 7);
  const digest = sha256(blob);

  const start = await http(`${m.url}/v2/library/app/blobs/uploads/`, { method: 'POST', headers: auth });
  assert.equal(start.status, 202);
  assert.ok(h(start, 'docker-upload-uuid'));
  assert.equal(h(start, 'range'), '0-0');
  const loc = new URL(h(start, 'location') ?? '', m.url);
  const p1 = await http(loc.href, {
    method: 'PATCH',
    headers: { ...auth, 'content-range': `0-${99_999}` },
    body: blob.subarray(0, 100_000),
  });
  assert.equal(p1.status, 202);
  assert.equal(h(p1, 'range'), '0-99999');
  const wrongRange = await http(loc.href, {
    method: 'PATCH',
    headers: { ...auth, 'content-range': '5-10' },
    body: Buffer.alloc(6),
  });
  assert.equal(wrongRange.status, 416);
  const p2 = await http(loc.href, { method: 'PATCH', headers: auth, body: blob.subarray(100_000) });
  assert.equal(p2.status, 202);
  const status = await http(loc.href, { headers: auth });
  assert.equal(status.status, 204);
  assert.equal(h(status, 'range'), `0-${blob.length - 1}`);
  const fin = await http(`${loc.href}?digest=${digest}`, { method: 'PUT', headers: auth });
  assert.equal(fin.status, 201);
  assert.equal(h(fin, 'docker-content-digest'), digest);
  assert.equal(h(fin, 'location'), `/v2/library/app/blobs/${digest}`);
  const got = await http(`${m.url}/v2/library/app/blobs/${digest}`, { headers: auth });
  assert.ok(got.body.equals(blob));

  // A body that does not hash to the digest is refused and not stored.
  const s2 = await http(`${m.url}/v2/library/app/blobs/uploads/`, { method: 'POST', headers: auth });
  const wrong = sha256(Buffer.from('something else'));
  const bad = await http(`${new URL(h(s2, 'location') ?? '', m.url).href}?digest=${wrong}`, {
    method: 'PUT',
    headers: auth,
    body: blob,
  });
  assert.equal(bad.status, 400);
  assert.equal(errorCode(bad), 'DIGEST_INVALID');
  assert.equal((await http(`${m.url}/v2/library/app/blobs/${wrong}`, { method: 'HEAD', headers: auth })).status, 404);
  const gone = await http(new URL(h(s2, 'location') ?? '', m.url).href, { headers: auth });
  assert.equal(gone.status, 404);
  assert.equal(errorCode(gone), 'BLOB_UPLOAD_UNKNOWN');

  // Monolithic POST ?digest=.
  const small = bytes(5000, 9);
  const mono = await http(`${m.url}/v2/library/app/blobs/uploads/?digest=${sha256(small)}`, {
    method: 'POST',
    headers: auth,
    body: small,
  });
  assert.equal(mono.status, 201);
  assert.equal(h(mono, 'docker-content-digest'), sha256(small));
  const monoBad = await http(`${m.url}/v2/library/app/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: auth,
    body: small,
  });
  assert.equal(monoBad.status, 400);

  // Cross-repository mount: 201 when the blob exists and the token may pull the source.
  const aliceTeam = await token(m, 'alice', 'alice-pw', 'repository:team/dst:pull,push repository:library/app:pull');
  const mount = await http(`${m.url}/v2/team/dst/blobs/uploads/?mount=${digest}&from=library/app`, {
    method: 'POST',
    headers: { authorization: `Bearer ${aliceTeam}` },
  });
  assert.equal(mount.status, 201);
  const noMount = await http(`${m.url}/v2/team/dst/blobs/uploads/?mount=${wrong}&from=library/app`, {
    method: 'POST',
    headers: { authorization: `Bearer ${aliceTeam}` },
  });
  assert.equal(noMount.status, 202, 'an unknown blob falls back to a new upload');

  // A Docker schema2 manifest, and a manifest list referring to it.
  const cfg = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const cfgPut = await http(`${m.url}/v2/library/app/blobs/uploads/?digest=${sha256(cfg)}`, {
    method: 'POST',
    headers: auth,
    body: cfg,
  });
  assert.equal(cfgPut.status, 201);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha256(cfg), size: cfg.length },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest, size: blob.length }],
    }),
  );
  const mPut = await http(`${m.url}/v2/library/app/manifests/${sha256(manifest)}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' },
    body: manifest,
  });
  assert.equal(mPut.status, 201, mPut.body.toString());
  assert.equal(h(mPut, 'docker-content-digest'), sha256(manifest));
  const list = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [
        {
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          digest: sha256(manifest),
          size: manifest.length,
          platform: { architecture: 'amd64', os: 'linux' },
        },
      ],
    }),
  );
  const lPut = await http(`${m.url}/v2/library/app/manifests/multi`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/vnd.docker.distribution.manifest.list.v2+json' },
    body: list,
  });
  assert.equal(lPut.status, 201);
  const lGet = await http(`${m.url}/v2/library/app/manifests/multi`, { headers: auth });
  assert.equal(h(lGet, 'content-type'), 'application/vnd.docker.distribution.manifest.list.v2+json');
  assert.ok(lGet.body.equals(list));
  // References to unknown blobs are refused.
  const dangling = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: wrong, size: 1 },
      layers: [],
    }),
  );
  const dPut = await http(`${m.url}/v2/library/app/manifests/dangling`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: dangling,
  });
  assert.equal(dPut.status, 400);
  assert.equal(errorCode(dPut), 'MANIFEST_BLOB_UNKNOWN');
  const digestMismatch = await http(`${m.url}/v2/library/app/manifests/${wrong}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' },
    body: manifest,
  });
  assert.equal(digestMismatch.status, 400);
  assert.equal(errorCode(digestMismatch), 'DIGEST_INVALID');
});

test('clients that abort uploads and downloads leave the server serving', async (t) => {
  const dir = await tmp(t, 'abort');
  const m = await mock(t, { storage: { dir: join(dir, 'store') } });
  const blob = bytes(1024 * 1024, 23);
  const { digest } = await m.putBlob('library/app', blob);
  const auth = { authorization: `Bearer ${await token(m, 'alice', 'alice-pw', 'repository:library/app:pull,push')}` };

  m.setBandwidth(256 * 1024);
  const res = await request(`${m.url}/v2/library/app/blobs/${digest}`, {
    dispatcher: agent,
    headers: auth,
    signal: AbortSignal.timeout(DEADLINE),
  });
  assert.equal(res.statusCode, 200);
  for await (const _ of res.body) break; // leaves after the first chunk
  m.setBandwidth(null);

  const start = await http(`${m.url}/v2/library/app/blobs/uploads/`, { method: 'POST', headers: auth });
  const loc = new URL(h(start, 'location') ?? '', m.url);
  const { PassThrough } = await import('node:stream');
  const body = new PassThrough();
  const put = request(`${loc.href}?digest=${digest}`, {
    dispatcher: agent,
    method: 'PUT',
    headers: { ...auth, 'content-length': String(blob.length) },
    body,
  });
  body.write(blob.subarray(0, 300_000));
  // The client gives up once the server has bytes of it on disk.
  const uploads = join(dir, 'store', 'uploads');
  await waitFor(DEADLINE, 'part of the upload on disk', async () => {
    const sizes = await Promise.all((await readdir(uploads)).map(async (n) => (await stat(join(uploads, n))).size));
    return sizes.some((size) => size > 0);
  });
  body.destroy(new Error('client gave up'));
  await assert.rejects(put);
  // The session is gone, and its partial file with it.
  await waitFor(DEADLINE, 'no upload leftovers', async () => {
    const left = await readdir(uploads);
    return left.length === 0 && (await http(loc.href, { headers: auth })).status === 404;
  });
  const ok = await http(`${m.url}/v2/library/app/blobs/${digest}`, { headers: auth });
  assert.ok(ok.body.equals(blob));
});

test('directory storage streams uploads: a large layer is not held in memory', async (t) => {
  const dir = await tmp(t, 'stream');
  const m = await mock(t, { storage: { dir: join(dir, 'store') } });
  const size = 96 * 1024 * 1024;
  const img = await createOciImage(join(dir, 'img'), { layers: [size], seed: 'big' });
  const client = new RegistryClient({ baseUrl: m.url, ca: ca.cert, username: 'alice', password: 'alice-pw' });
  t.after(() => client.close());
  global.gc?.();
  const base = process.memoryUsage();
  let peak = 0;
  const timer = setInterval(() => {
    const u = process.memoryUsage();
    peak = Math.max(peak, u.rss - base.rss, u.arrayBuffers - base.arrayBuffers);
  }, 10);
  try {
    await client.pushImage(img.dir, 'library/app', 'big');
  } finally {
    clearInterval(timer);
  }
  t.diagnostic(`peak memory growth ${Math.round(peak / 1048576)} MiB`);
  // A store holding the layer would grow by at least its size; streaming stays well below.
  assert.ok(peak < size * 0.75, `memory grew by ${Math.round(peak / 1048576)} MiB for a ${size / 1048576} MiB layer`);
  const st = await stat(join(dir, 'store', 'blobs', 'sha256', img.layerDigests[0]!.slice(7)));
  assert.equal(st.size, img.sizes[0]);
});
