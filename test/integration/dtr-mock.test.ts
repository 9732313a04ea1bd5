// The DTR mock origin against real clients: undici, testkit/registry-client and
// skopeo, over real TLS with a test CA on loopback.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, request, type Dispatcher } from 'undici';
import { startDtrMock, type DtrMock, type DtrMockOptions } from '../../bench/dtr-mock/index.js';
import { createOciImage } from '../../testkit/image.js';
import { createTestCa, type Leaf } from '../../testkit/pki.js';
import { RegistryClient } from '../../testkit/registry-client.js';
import { waitFor } from '../helpers/deadline.js';

const DEADLINE = 20_000;
const ca = await createTestCa('dtr-mock test CA');
const leaf: Leaf = await ca.issue('dtr-mock');
const agent = new Agent({ connect: { ca: ca.cert } });
after(async () => {
  await agent.close();
  await rm(ca.dir, { recursive: true, force: true });
});

const USERS: NonNullable<DtrMockOptions['users']> = {
  boss: { password: 'boss-pw', admin: true },
  alice: { password: 'alice-pw', repos: { 'library/app': ['pull', 'push'], 'team/*': ['pull', 'push'] } },
  bob: { password: 'bob-pw', repos: { 'library/app': ['pull'] } },
  carol: { password: 'carol-pw', repos: { '*': ['pull'] } },
  dave: { password: 'dave-pw', repos: {} },
};

/** Awaits `p`, failing after DEADLINE ms; the timer never outlives the wait. */
async function withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deadline: ${what}`)), DEADLINE);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function tmp(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `dtr-mock-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function mock(t: TestContext, opts: DtrMockOptions = {}): Promise<DtrMock> {
  const m = await startDtrMock({ tls: { cert: leaf.cert, key: leaf.key }, users: USERS, ...opts });
  t.after(() => m.close());
  return m;
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

interface Res {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Buffer;
}

/** One request with a deadline; the body is always read to the end. */
async function http(
  url: string,
  opts: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Res> {
  const res = await request(url, {
    dispatcher: agent,
    method: opts.method ?? 'GET',
    headers: opts.headers ?? {},
    body: opts.body ?? null,
    signal: AbortSignal.timeout(DEADLINE),
  });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

function h(r: Res, name: string): string | undefined {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function errorCode(r: Res): string | undefined {
  return (JSON.parse(r.body.toString()) as { errors: { code: string }[] }).errors[0]?.code;
}

async function token(m: DtrMock, user: string | undefined, pass: string, scope: string): Promise<string> {
  const r = await http(`${m.url}/auth/token?service=${m.service}&scope=${encodeURIComponent(scope)}`, {
    headers: user === undefined ? {} : { authorization: basic(user, pass) },
  });
  assert.equal(r.status, 200, r.body.toString());
  return (JSON.parse(r.body.toString()) as { token: string }).token;
}

async function pullToken(m: DtrMock, user: string, name = 'library/app'): Promise<string> {
  return token(m, user, `${user}-pw`, `repository:${name}:pull`);
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Deterministic test bytes. */
function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

async function jwksOf(m: DtrMock): Promise<JSONWebKeySet> {
  const r = await http(`${m.url}/.well-known/jwks.json`);
  assert.equal(r.status, 200);
  return JSON.parse(r.body.toString()) as JSONWebKeySet;
}

async function selectCache(m: DtrMock, user: string, cacheName: string, host: string): Promise<void> {
  const c = await http(`${m.url}/api/v0/content_caches`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw'), 'content-type': 'application/json' },
    body: JSON.stringify({ name: cacheName, host }),
  });
  assert.equal(c.status, 201, c.body.toString());
  const s = await http(`${m.url}/api/v0/accounts/${user}/settings`, {
    method: 'PATCH',
    headers: { authorization: basic(user, `${user}-pw`), 'content-type': 'application/json' },
    body: JSON.stringify({ contentCache: cacheName }),
  });
  assert.equal(s.status, 200, s.body.toString());
}

/** Reads a body until the server breaks it; returns the bytes that arrived and whether it ended cleanly. */
async function readUntilBroken(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; received: number; clean: boolean }> {
  const res = await request(url, { dispatcher: agent, headers, signal: AbortSignal.timeout(DEADLINE) });
  let received = 0;
  try {
    for await (const c of res.body) received += (c as Buffer).length;
    return { status: res.statusCode, received, clean: true };
  } catch {
    return { status: res.statusCode, received, clean: false };
  }
}

test('token flow: challenge, per-user grants, anonymous and bad credentials', async (t) => {
  const m = await mock(t);
  const ping = await http(`${m.url}/v2/`);
  assert.equal(ping.status, 401);
  assert.equal(h(ping, 'www-authenticate'), `Bearer realm="${m.url}/auth/token",service="dtr-mock"`);
  assert.equal(errorCode(ping), 'UNAUTHORIZED');

  const r = await http(
    `${m.url}/auth/token?service=dtr-mock&scope=repository:library/app:pull,push&scope=repository:other/x:pull`,
    { headers: { authorization: basic('alice', 'alice-pw') } },
  );
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body.toString()) as {
    token: string;
    access_token: string;
    expires_in: number;
    issued_at: string;
  };
  assert.equal(body.token, body.access_token);
  assert.ok(body.expires_in > 0);
  assert.ok(!Number.isNaN(Date.parse(body.issued_at)));
  const claims = decodeJwt(body.token);
  assert.equal(claims.sub, 'alice');
  assert.deepEqual(claims['access'], [{ type: 'repository', name: 'library/app', actions: ['pull', 'push'] }]);

  const bobClaims = decodeJwt(await token(m, 'bob', 'bob-pw', 'repository:library/app:pull,push'));
  assert.deepEqual(bobClaims['access'], [{ type: 'repository', name: 'library/app', actions: ['pull'] }]);
  const carolClaims = decodeJwt(await token(m, 'carol', 'carol-pw', 'repository:any/thing:pull,push'));
  assert.deepEqual(carolClaims['access'], [{ type: 'repository', name: 'any/thing', actions: ['pull'] }]);
  const aliceGlob = decodeJwt(await token(m, 'alice', 'alice-pw', 'repository:team/web:push'));
  assert.deepEqual(aliceGlob['access'], [{ type: 'repository', name: 'team/web', actions: ['push'] }]);

  const anon = decodeJwt(await token(m, undefined, '', 'repository:library/app:pull'));
  assert.deepEqual(anon['access'], []);

  const bad = await http(`${m.url}/auth/token?service=dtr-mock&scope=repository:library/app:pull`, {
    headers: { authorization: basic('alice', 'wrong') },
  });
  assert.equal(bad.status, 401);
  assert.equal(errorCode(bad), 'UNAUTHORIZED');

  const ok = await http(`${m.url}/v2/`, { headers: { authorization: `Bearer ${body.token}` } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), '{}');
  const forged = await http(`${m.url}/v2/`, { headers: { authorization: `Bearer ${body.token.slice(0, -4)}AAAA` } });
  assert.equal(forged.status, 401);
  assert.match(h(forged, 'www-authenticate') ?? '', /error="invalid_token"/);
});

test('permissions: pull-only users cannot push, users without rights get 403, anonymous gets 401', async (t) => {
  const m = await mock(t);
  const blob = bytes(1000);
  const { digest } = await m.putBlob('library/app', blob);
  const path = `/v2/library/app/blobs/${digest}`;

  const none = await http(`${m.url}${path}`);
  assert.equal(none.status, 401);
  assert.match(h(none, 'www-authenticate') ?? '', /scope="repository:library\/app:pull"/);

  const bob = await token(m, 'bob', 'bob-pw', 'repository:library/app:pull,push');
  assert.equal((await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${bob}` } })).status, 200);
  const up = await http(`${m.url}/v2/library/app/blobs/uploads/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bob}` },
  });
  assert.equal(up.status, 403);
  assert.equal(errorCode(up), 'DENIED');

  // dave has no rights at all: no bytes and no redirect, even with a cache selected.
  await selectCache(m, 'dave', 'c1', 'https://localhost:1');
  const dave = await token(m, 'dave', 'dave-pw', 'repository:library/app:pull');
  const d = await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${dave}` } });
  assert.equal(d.status, 403);
  assert.equal(h(d, 'location'), undefined);

  const anon = await token(m, undefined, '', 'repository:library/app:pull');
  const a = await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${anon}` } });
  assert.equal(a.status, 401);
  assert.match(h(a, 'www-authenticate') ?? '', /error="insufficient_scope"/);

  // A token for another repository: 401 so the client asks for the right scope.
  const other = await token(m, 'carol', 'carol-pw', 'repository:some/where:pull');
  const o = await http(`${m.url}${path}`, { headers: { authorization: `Bearer ${other}` } });
  assert.equal(o.status, 401);
  assert.equal(m.stats().blobs[digest]?.get.redirected, 0);
});

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

test('307 redirect to the selected cache with a token verifiable against the JWK Set', async (t) => {
  const m = await mock(t);
  const blob = bytes(4096, 3);
  const { digest } = await m.putBlob('library/app', blob);
  await selectCache(m, 'carol', 'region-asia', 'https://localhost:7443/');
  const tok = await pullToken(m, 'carol');
  const before = Math.floor(Date.now() / 1000);
  const r = await http(`${m.url}/v2/library/app/blobs/${digest}`, { headers: { authorization: `Bearer ${tok}` } });
  assert.equal(r.status, 307);
  assert.equal(r.body.length, 0);
  const loc = new URL(h(r, 'location') ?? '');
  assert.equal(loc.origin, 'https://localhost:7443');
  assert.equal(loc.pathname, `/v2/library/app/blobs/${digest}`);
  const redirectToken = loc.searchParams.get('token') ?? '';

  const jwks = await jwksOf(m);
  assert.equal(jwks.keys.length, 1);
  const key = jwks.keys[0]!;
  assert.equal(key.use, 'sig');
  assert.equal(key.alg, 'ES256');
  assert.equal(key.kty, 'EC');
  assert.equal(key.d, undefined, 'no private part published');
  const header = decodeProtectedHeader(redirectToken);
  assert.deepEqual(header, { alg: 'ES256', kid: key.kid, typ: 'JWT' });
  const { payload } = await jwtVerify(redirectToken, createLocalJWKSet(jwks), {
    issuer: m.issuer,
    algorithms: ['ES256'],
  });
  assert.equal(payload.sub, 'carol');
  assert.equal(payload['digest'], digest);
  assert.deepEqual(payload['access'], [{ type: 'repository', name: 'library/app', actions: ['pull'] }]);
  assert.ok(payload.iat !== undefined && payload.iat >= before - 1);
  assert.equal(payload.nbf, payload.iat);
  assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 300);

  // HEAD is answered directly; bob has no cache and gets the bytes.
  const head = await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    method: 'HEAD',
    headers: { authorization: `Bearer ${tok}` },
  });
  assert.equal(head.status, 200);
  assert.equal(h(head, 'content-length'), '4096');
  const bob = await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    headers: { authorization: `Bearer ${await pullToken(m, 'bob')}` },
  });
  assert.equal(bob.status, 200);
  assert.ok(bob.body.equals(blob));

  const s = m.stats().blobs[digest];
  assert.deepEqual(s?.get, { redirected: 1, served: 1, failed: 0 });
  assert.deepEqual(s?.head, { redirected: 0, served: 1, failed: 0 });

  // Unselecting the cache ends the redirects; deleting a cache unselects it.
  const sel = await http(`${m.url}/api/v0/accounts/carol/settings`, {
    method: 'PUT',
    headers: { authorization: basic('carol', 'carol-pw') },
    body: '{"contentCache":null}',
  });
  assert.deepEqual(JSON.parse(sel.body.toString()), { contentCache: null });
  assert.equal(
    (await http(`${m.url}/v2/library/app/blobs/${digest}`, { headers: { authorization: `Bearer ${tok}` } })).status,
    200,
  );
});

test('registry-client follows the 307 to another host without Authorization', async (t) => {
  const dir = await tmp(t, 'redirect');
  const m = await mock(t);
  const img = await createOciImage(join(dir, 'img'), { layers: [50_000, 70_000], seed: 'redir' });
  await m.putOciLayout(img.dir, 'library/app', 'v1');
  const seen: { authorization: string | undefined; token: string | null; path: string }[] = [];
  const cacheLeaf = await ca.issue('fake-cache');
  // A stand-in cache: records what the client sent, then fetches from the
  // origin with the redirect token as Bearer (docs/protocol.md §4).
  const cache = createHttpsServer({ cert: cacheLeaf.cert, key: cacheLeaf.key }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://x');
    seen.push({ authorization: req.headers.authorization, token: u.searchParams.get('token'), path: u.pathname });
    request(`${m.url}${u.pathname}`, {
      dispatcher: agent,
      headers: { authorization: `Bearer ${u.searchParams.get('token') ?? ''}` },
    }).then(
      async (up) => {
        res.writeHead(up.statusCode, { 'content-type': 'application/octet-stream' });
        for await (const c of up.body) res.write(c);
        res.end();
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => cache.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        cache.close(() => resolve());
        cache.closeAllConnections();
      }),
  );
  const cacheUrl = `https://localhost:${(cache.address() as AddressInfo).port}`;
  await selectCache(m, 'carol', 'near', cacheUrl);

  const client = new RegistryClient({ baseUrl: m.url, ca: ca.cert, username: 'carol', password: 'carol-pw' });
  t.after(() => client.close());
  const pulled = await client.pullImage('library/app', 'v1', join(dir, 'out'));
  assert.equal(pulled.manifestDigest, img.manifestDigest);
  assert.deepEqual(
    pulled.blobs.map((b) => b.redirectedTo),
    [cacheUrl, cacheUrl, cacheUrl],
  );
  assert.equal(seen.length, 3);
  for (const s of seen) {
    assert.equal(s.authorization, undefined, 'no Authorization crosses hosts');
    assert.ok(s.token !== null && s.token.length > 20);
  }
  const st = m.stats();
  for (const d of [img.configDigest, ...img.layerDigests]) {
    assert.deepEqual(st.blobs[d]?.get, { redirected: 1, served: 1, failed: 0 }, d);
  }
  for (const e of st.log) {
    assert.ok(!e.path.includes('?'), e.path);
    for (const s of seen) assert.ok(!JSON.stringify(e).includes(s.token ?? '-'), 'no token in the log');
  }
});

test('serving redirect tokens: ?token= and Bearer; wrong digest, repository, expiry, key → 401; no pull → 403', async (t) => {
  const m = await mock(t);
  const blob = bytes(10_000, 5);
  const { digest } = await m.putBlob('library/app', blob);
  const other = (await m.putBlob('library/app', bytes(10, 6))).digest;
  await selectCache(m, 'carol', 'c', 'https://localhost:9');
  const url = `${m.url}/v2/library/app/blobs/${digest}`;
  const good = await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest });

  const q = await http(`${url}?token=${good}`);
  assert.equal(q.status, 200, 'a token-carrying request is never redirected');
  assert.ok(q.body.equals(blob));
  const b = await http(url, { headers: { authorization: `Bearer ${good}` } });
  assert.equal(b.status, 200);
  assert.ok(b.body.equals(blob));
  const hd = await http(`${url}?token=${good}`, { method: 'HEAD' });
  assert.equal(hd.status, 200);
  assert.equal(h(hd, 'docker-content-digest'), digest);

  const cases: [string, string, number][] = [
    ['other digest', await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest: other }), 401],
    ['other repository', await m.mintRedirectToken({ sub: 'carol', name: 'library/other', digest }), 401],
    ['expired', await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, ttlSec: -120 }), 401],
    [
      'not yet valid',
      await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, notBeforeOffsetSec: 600 }),
      401,
    ],
    ['garbage', 'a.b.c', 401],
    ['no pull', await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, actions: ['push'] }), 403],
  ];
  for (const [what, tok, status] of cases) {
    const r = await http(`${url}?token=${tok}`);
    assert.equal(r.status, status, what);
    assert.equal(errorCode(r), status === 401 ? 'UNAUTHORIZED' : 'DENIED', what);
    if (status === 401) assert.match(h(r, 'www-authenticate') ?? '', /error="invalid_token"/, what);
    const rb = await http(url, { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(rb.status, status, `${what} (Bearer)`);
  }
  // Within the 60 s leeway an expired token is still good.
  const late = await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, ttlSec: -30 });
  assert.equal((await http(`${url}?token=${late}`)).status, 200);
  // Lifetimes are capped at 20 minutes.
  const long = decodeJwt(await m.mintRedirectToken({ sub: 'carol', name: 'library/app', digest, ttlSec: 99_999 }));
  assert.equal((long.exp ?? 0) - (long.iat ?? 0), 1200);

  // The admin endpoint mints the same tokens.
  const minted = await http(`${m.url}/_mock/token`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ sub: 'x', name: 'library/app', digest, ttlSec: 60, alg: 'RS256' }),
  });
  assert.equal(minted.status, 200);
  const mt = (JSON.parse(minted.body.toString()) as { token: string }).token;
  assert.equal(decodeProtectedHeader(mt).alg, 'RS256');
  assert.equal((await http(`${url}?token=${mt}`)).status, 200);
  const noAdmin = await http(`${m.url}/_mock/token`, {
    method: 'POST',
    headers: { authorization: basic('carol', 'carol-pw') },
    body: '{}',
  });
  assert.equal(noAdmin.status, 403);
});

test('Range, If-None-Match and blob headers', async (t) => {
  const m = await mock(t);
  const blob = bytes(1000, 11);
  const { digest } = await m.putBlob('library/app', blob);
  const auth = { authorization: `Bearer ${await pullToken(m, 'bob')}` };
  const url = `${m.url}/v2/library/app/blobs/${digest}`;

  const full = await http(url, { headers: auth });
  assert.equal(full.status, 200);
  assert.equal(h(full, 'content-type'), 'application/octet-stream');
  assert.equal(h(full, 'docker-content-digest'), digest);
  assert.equal(h(full, 'etag'), `"${digest}"`);
  assert.equal(h(full, 'accept-ranges'), 'bytes');
  assert.equal(h(full, 'cache-control'), 'max-age=31536000');
  assert.equal(h(full, 'docker-distribution-api-version'), 'registry/2.0');
  assert.equal(h(full, 'content-length'), '1000');

  const cases: [string, number, number][] = [
    ['bytes=10-19', 10, 19],
    ['bytes=990-', 990, 999],
    ['bytes=-5', 995, 999],
    ['bytes=900-5000', 900, 999],
  ];
  for (const [range, a, b] of cases) {
    const r = await http(url, { headers: { ...auth, range } });
    assert.equal(r.status, 206, range);
    assert.equal(h(r, 'content-range'), `bytes ${a}-${b}/1000`, range);
    assert.ok(r.body.equals(blob.subarray(a, b + 1)), range);
  }
  const past = await http(url, { headers: { ...auth, range: 'bytes=1000-' } });
  assert.equal(past.status, 416);
  assert.equal(h(past, 'content-range'), 'bytes */1000');
  const nm = await http(url, { headers: { ...auth, 'if-none-match': `"${digest}"` } });
  assert.equal(nm.status, 304);
  const missing = await http(`${m.url}/v2/library/app/blobs/${sha256(Buffer.from('nope'))}`, { headers: auth });
  assert.equal(missing.status, 404);
  assert.equal(errorCode(missing), 'BLOB_UNKNOWN');
});

test('faults: corrupt, cutAfter, status503 (count and always), refuse', async (t) => {
  const m = await mock(t);
  const blob = bytes(256 * 1024, 13);
  const { digest } = await m.putBlob('library/app', blob);
  const auth = { authorization: `Bearer ${await pullToken(m, 'bob')}` };
  const url = `${m.url}/v2/library/app/blobs/${digest}`;

  m.setFaults(digest, { corrupt: true });
  const bad = await http(url, { headers: auth });
  assert.equal(bad.status, 200);
  assert.equal(bad.body.length, blob.length);
  assert.notEqual(sha256(bad.body), digest);
  const badRange = await http(url, { headers: { ...auth, range: 'bytes=100-199' } });
  assert.equal(badRange.body.length, 100);
  assert.ok(!badRange.body.equals(blob.subarray(100, 200)));

  m.setFaults(digest, { cutAfter: 100_000 });
  const cut = await readUntilBroken(url, auth);
  assert.deepEqual(cut, { status: 200, received: 100_000, clean: false });
  const cutRange = await readUntilBroken(url, { ...auth, range: 'bytes=200000-' });
  assert.deepEqual(
    cutRange,
    { status: 206, received: blob.length - 200_000, clean: true },
    'a shorter response is not cut',
  );

  m.setFaults(digest, { status503: 2 });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await http(url, { headers: auth })).status);
  assert.deepEqual(statuses, [503, 503, 200]);
  m.setFaults(digest, { status503: 'always' });
  for (let i = 0; i < 3; i++) {
    const r = await http(url, { method: 'HEAD', headers: auth });
    assert.equal(r.status, 503);
  }
  const body503 = await http(url, { headers: auth });
  assert.equal(errorCode(body503), 'UNAVAILABLE');

  m.setFaults(digest, { refuse: true });
  await assert.rejects(http(url, { headers: auth }));
  m.setFaults(digest, null);
  const ok = await http(url, { headers: auth });
  assert.ok(ok.body.equals(blob));

  const s = m.stats().blobs[digest];
  // served: corrupt x2, cut x2, the 200 after two 503s, the last one; failed: 3+3+1 503s... and the refusal.
  assert.deepEqual(s?.get, { redirected: 0, served: 6, failed: 4 });
  assert.deepEqual(s?.head, { redirected: 0, served: 0, failed: 3 });

  // The same knobs over HTTP.
  const cfg = await http(`${m.url}/_mock/config`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ faults: { [digest]: { status503: 1 } } }),
  });
  assert.equal(cfg.status, 200);
  assert.equal((await http(url, { headers: auth })).status, 503);
  assert.equal((await http(url, { headers: auth })).status, 200);
  const badCfg = await http(`${m.url}/_mock/config`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ faults: { [digest]: { explode: 1 } } }),
  });
  assert.equal(badCfg.status, 400);
});

test('latency and bandwidth knobs, by method and by POST /_mock/config', async (t) => {
  const m = await mock(t);
  const blob = bytes(200 * 1024, 17);
  const { digest } = await m.putBlob('library/app', blob);
  const auth = { authorization: `Bearer ${await pullToken(m, 'bob')}` };
  const url = `${m.url}/v2/library/app/blobs/${digest}`;
  const timed = async (): Promise<number> => {
    const t0 = performance.now();
    const r = await http(url, { headers: auth });
    assert.ok(r.body.equals(blob));
    return performance.now() - t0;
  };
  await timed();
  const fast = await timed();
  m.setLatency(300);
  const slow = await timed();
  assert.ok(slow >= 290, `latency: ${slow} ms`);
  m.setLatency(0);
  m.setBandwidth(400 * 1024);
  const capped = await timed();
  assert.ok(capped >= 400, `200 KiB at 400 KiB/s took ${capped} ms`);
  assert.ok(capped > fast);
  const r = await http(`${m.url}/_mock/config`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: JSON.stringify({ bandwidth: null, latencyMs: 200 }),
  });
  assert.equal(r.status, 200);
  assert.equal(m.knobs().bandwidth, null);
  assert.equal(m.knobs().latencyMs, 200);
  const viaHttp = await timed();
  assert.ok(viaHttp >= 190 && viaHttp < capped + 1000, `${viaHttp} ms`);
  const unauth = await http(`${m.url}/_mock/config`, { method: 'POST', body: '{"latencyMs":0}' });
  assert.equal(unauth.status, 401);
});

test('stats: per-digest counts, bounded log without tokens, reset', async (t) => {
  const m = await mock(t, { logLimit: 5 });
  const { digest } = await m.putBlob('library/app', bytes(100));
  const tok = await pullToken(m, 'bob');
  const redirect = await m.mintRedirectToken({ sub: 'bob', name: 'library/app', digest });
  await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    headers: { authorization: `Bearer ${tok}`, range: 'bytes=0-9' },
  });
  await http(`${m.url}/v2/library/app/blobs/${digest}?token=${redirect}`, { method: 'HEAD' });
  const r = await http(`${m.url}/_mock/stats`);
  const s = JSON.parse(r.body.toString()) as ReturnType<DtrMock['stats']>;
  assert.deepEqual(s.blobs[digest], {
    get: { redirected: 0, served: 1, failed: 0 },
    head: { redirected: 0, served: 1, failed: 0 },
    bytesSent: 10,
  });
  assert.deepEqual(s.totals.blobGet, { redirected: 0, served: 1, failed: 0 });
  const entries = s.log.filter((e) => e.path.includes('/blobs/'));
  assert.deepEqual(
    entries.map((e) => [e.method, e.path, e.range, e.status, e.user]),
    [
      ['GET', `/v2/library/app/blobs/${digest}`, 'bytes=0-9', 206, 'bob'],
      ['HEAD', `/v2/library/app/blobs/${digest}`, null, 200, 'bob'],
    ],
  );
  for (let i = 0; i < 10; i++) await http(`${m.url}/v2/`);
  const s2 = m.stats();
  assert.equal(s2.log.length, 5);
  assert.ok(s2.totals.requests >= 13);
  assert.ok(!JSON.stringify(s2).includes(redirect));
  const reset = await http(`${m.url}/_mock/stats/reset`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
  });
  assert.equal(reset.status, 200);
  const s3 = m.stats();
  assert.deepEqual(s3.blobs, {});
  // Only the reset request itself, logged as it ended.
  assert.deepEqual(
    s3.log.map((e) => [e.method, e.path, e.user]),
    [['POST', '/_mock/stats/reset', null]],
  );
  m.resetStats();
  assert.equal(m.stats().totals.requests, 0);
});

test('content-cache API: 201, 409, 400, 401, 403; list, get, delete; account settings', async (t) => {
  const m = await mock(t);
  const admin = { authorization: basic('boss', 'boss-pw'), 'content-type': 'application/json' };
  const post = (body: unknown, headers: Record<string, string> = admin): Promise<Res> =>
    http(`${m.url}/api/v0/content_caches`, { method: 'POST', headers, body: JSON.stringify(body) });

  const c1 = await post({ name: 'region-asia', host: 'https://asia.example:443' });
  assert.equal(c1.status, 201);
  const created = JSON.parse(c1.body.toString()) as { id: string; name: string; host: string };
  assert.equal(created.name, 'region-asia');
  assert.equal(created.host, 'https://asia.example:443');
  assert.ok(created.id.length > 0);
  assert.equal((await post({ name: 'region-asia', host: 'https://other:443' })).status, 409);
  assert.equal((await post({ name: 'x', host: 'asia.example' })).status, 400);
  assert.equal((await post({ name: 'x', host: 'ftp://asia.example' })).status, 400);
  assert.equal((await post({ name: 'x' })).status, 400);
  const garbage = await http(`${m.url}/api/v0/content_caches`, { method: 'POST', headers: admin, body: '{not json' });
  assert.equal(garbage.status, 400);
  assert.equal((await post({ name: 'y', host: 'https://y' }, { 'content-type': 'application/json' })).status, 401);
  assert.equal((await post({ name: 'y', host: 'https://y' }, { authorization: basic('boss', 'nope') })).status, 401);
  assert.equal(
    (await post({ name: 'y', host: 'https://y' }, { authorization: basic('alice', 'alice-pw') })).status,
    403,
  );

  const list = await http(`${m.url}/api/v0/content_caches`, { headers: admin });
  assert.deepEqual(JSON.parse(list.body.toString()), [created]);
  const one = await http(`${m.url}/api/v0/content_caches/${created.id}`, { headers: admin });
  assert.deepEqual(JSON.parse(one.body.toString()), created);
  assert.equal((await http(`${m.url}/api/v0/content_caches/nope`, { headers: admin })).status, 404);

  const settings = `${m.url}/api/v0/accounts/alice/settings`;
  const self = { authorization: basic('alice', 'alice-pw') };
  assert.deepEqual(JSON.parse((await http(settings, { headers: self })).body.toString()), { contentCache: null });
  const set = await http(settings, { method: 'PATCH', headers: self, body: '{"contentCache":"region-asia"}' });
  assert.equal(set.status, 200);
  assert.deepEqual(JSON.parse(set.body.toString()), { contentCache: 'region-asia' });
  assert.equal(
    (await http(settings, { method: 'PATCH', headers: self, body: '{"contentCache":"nowhere"}' })).status,
    400,
  );
  assert.equal((await http(settings, { headers: { authorization: basic('bob', 'bob-pw') } })).status, 403);
  assert.equal((await http(settings)).status, 401);
  const byAdmin = await http(settings, { method: 'PUT', headers: admin, body: '{"contentCache":null}' });
  assert.deepEqual(JSON.parse(byAdmin.body.toString()), { contentCache: null });
  assert.equal((await http(`${m.url}/api/v0/accounts/nobody/settings`, { headers: admin })).status, 404);

  await http(settings, { method: 'PATCH', headers: self, body: '{"contentCache":"region-asia"}' });
  const del = await http(`${m.url}/api/v0/content_caches/${created.id}`, { method: 'DELETE', headers: admin });
  assert.equal(del.status, 204);
  assert.deepEqual(JSON.parse((await http(settings, { headers: self })).body.toString()), { contentCache: null });
  assert.deepEqual(JSON.parse((await http(`${m.url}/api/v0/content_caches`, { headers: admin })).body.toString()), []);
});

test('key rotation: the old key stays published until dropped; RS256 and EdDSA', async (t) => {
  const m = await mock(t);
  const { digest } = await m.putBlob('library/app', bytes(64));
  const url = `${m.url}/v2/library/app/blobs/${digest}`;
  const kid1 = m.currentKid();
  const t1 = await m.mintRedirectToken({ sub: 'bob', name: 'library/app', digest });
  assert.equal(decodeProtectedHeader(t1).kid, kid1);

  const kid2 = await m.rotateKey();
  assert.notEqual(kid2, kid1);
  const t2 = await m.mintRedirectToken({ sub: 'bob', name: 'library/app', digest });
  assert.equal(decodeProtectedHeader(t2).kid, kid2);
  let jwks = await jwksOf(m);
  assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), [kid1, kid2].sort());
  const set = createLocalJWKSet(jwks);
  await jwtVerify(t1, set, { issuer: m.issuer });
  await jwtVerify(t2, set, { issuer: m.issuer });
  assert.equal((await http(`${url}?token=${t1}`)).status, 200, 'old key still accepted');

  const rot = await http(`${m.url}/_mock/rotate-key`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw') },
    body: '{"dropOld":true}',
  });
  assert.equal(rot.status, 200);
  const kid3 = (JSON.parse(rot.body.toString()) as { kid: string }).kid;
  assert.equal(kid3, m.currentKid());
  jwks = await jwksOf(m);
  assert.deepEqual(
    jwks.keys.map((k) => k.kid),
    [kid3],
  );
  assert.equal((await http(`${url}?token=${t1}`)).status, 401);
  assert.equal((await http(`${url}?token=${t2}`)).status, 401);
  await assert.rejects(jwtVerify(t2, createLocalJWKSet(jwks), { issuer: m.issuer }));
  assert.equal((await http(`${m.url}/_mock/rotate-key`, { method: 'POST' })).status, 401);

  // Old keys expire on their own after keepOldKeysSec.
  const short = await mock(t, { keepOldKeysSec: 0.2 });
  await short.rotateKey();
  assert.equal(short.jwks().keys.length, 2);
  await waitFor(DEADLINE, 'the old key expired', () => short.jwks().keys.length === 1);

  for (const [alg, kty] of [
    ['RS256', 'RSA'],
    ['EdDSA', 'OKP'],
  ] as const) {
    const mm = await mock(t, { alg });
    const d = (await mm.putBlob('library/app', bytes(32))).digest;
    await selectCache(mm, 'carol', 'c', 'https://localhost:9');
    const r = await http(`${mm.url}/v2/library/app/blobs/${d}`, {
      headers: { authorization: `Bearer ${await pullToken(mm, 'carol')}` },
    });
    assert.equal(r.status, 307);
    const tok = new URL(h(r, 'location') ?? '').searchParams.get('token') ?? '';
    const keys = await jwksOf(mm);
    assert.equal(keys.keys[0]?.kty, kty);
    assert.equal(keys.keys[0]?.alg, alg);
    const { protectedHeader } = await jwtVerify(tok, createLocalJWKSet(keys), { issuer: mm.issuer });
    assert.equal(protectedHeader.alg, alg);
  }
});

test('tokens: false serves pulls to anyone and never redirects', async (t) => {
  const m = await mock(t, { tokens: false });
  const blob = bytes(500, 19);
  const { digest } = await m.putBlob('library/app', blob);
  await selectCache(m, 'carol', 'c', 'https://localhost:9');
  assert.equal((await http(`${m.url}/v2/`)).status, 200);
  const r = await http(`${m.url}/v2/library/app/blobs/${digest}`);
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(blob));
  const carol = await http(`${m.url}/v2/library/app/blobs/${digest}`, {
    headers: { authorization: `Bearer ${await pullToken(m, 'carol')}` },
  });
  assert.equal(carol.status, 200);
  assert.equal((await http(`${m.url}/v2/library/app/blobs/${digest}`, { method: 'HEAD' })).status, 200);
  assert.equal(
    (await http(`${m.url}/v2/library/app/blobs/uploads/`, { method: 'POST' })).status,
    401,
    'pushes still need a token',
  );
  m.setTokens(true);
  assert.equal((await http(`${m.url}/v2/library/app/blobs/${digest}`)).status, 401);
  assert.equal(
    (
      await http(`${m.url}/v2/library/app/blobs/${digest}`, {
        headers: { authorization: `Bearer ${await pullToken(m, 'carol')}` },
      })
    ).status,
    307,
  );
});

test('plain HTTP without TLS; registry-client with an open registry; indexes', async (t) => {
  const dir = await tmp(t, 'plain');
  const m = await startDtrMock({ users: USERS, tokens: false });
  t.after(() => m.close());
  assert.match(m.url, /^http:\/\/localhost:\d+$/);
  const img = await createOciImage(join(dir, 'img'), { layers: [10_000], seed: 'plain' });
  const pusher = new RegistryClient({ baseUrl: m.url, username: 'alice', password: 'alice-pw' });
  t.after(() => pusher.close());
  assert.equal(await pusher.ping(), null, 'open registry: /v2/ needs no token');
  const pushed = await pusher.pushImage(img.dir, 'library/app', 'v1');
  assert.equal(pushed.manifestDigest, img.manifestDigest);
  // An OCI index over that image, seeded directly.
  const manifestBytes = await readFile(join(img.dir, 'blobs', 'sha256', img.manifestDigest.slice(7)));
  const index = await m.putManifest('library/app', 'multi', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: img.manifestDigest,
        size: manifestBytes.length,
      },
    ],
  });
  const anon = new RegistryClient({ baseUrl: m.url });
  t.after(() => anon.close());
  const pulled = await anon.pullImage('library/app', 'multi', join(dir, 'out'));
  assert.equal(pulled.manifestDigest, index.digest);
  assert.equal(pulled.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(pulled.manifests, [img.manifestDigest]);
  assert.deepEqual(
    pulled.blobs.map((b) => b.digest),
    [img.configDigest, ...img.layerDigests],
  );
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

test('bad input gets registry errors and never takes the server down', async (t) => {
  const m = await mock(t);
  const auth = { authorization: `Bearer ${await pullToken(m, 'carol')}` };
  const d = sha256(Buffer.from('x'));
  const cases: [string, Dispatcher.HttpMethod, number, string | undefined][] = [
    [`/v2/UPPER/blobs/${d}`, 'GET', 400, 'NAME_INVALID'],
    [`/v2/a..b/blobs/${d}`, 'GET', 400, 'NAME_INVALID'],
    [`/v2/${'a'.repeat(256)}/blobs/${d}`, 'GET', 400, 'NAME_INVALID'],
    ['/v2/library/app/blobs/sha256:abc', 'GET', 400, 'DIGEST_INVALID'],
    ['/v2/library/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e', 'GET', 400, 'DIGEST_INVALID'],
    [`/v2/library/app/blobs/${d.toUpperCase()}`, 'GET', 400, 'DIGEST_INVALID'],
    ['/v2/library/app/blobs/%E0%A4%A', 'GET', 400, 'DIGEST_INVALID'],
    ['/v2/library/app/manifests/bad%20tag', 'GET', 400, 'TAG_INVALID'],
    [`/v2/library/app/blobs/${d}`, 'DELETE', 405, 'UNSUPPORTED'],
    ['/v2/library/app/nothing', 'GET', 404, 'NOT_FOUND'],
    ['/nowhere', 'GET', 404, 'NOT_FOUND'],
    ['/api/v0/content_caches/%zz', 'GET', 400, 'INVALID_REQUEST'],
  ];
  for (const [path, method, status, code] of cases) {
    const r = await http(`${m.url}${path}`, {
      method,
      headers: { ...auth, authorization: path.startsWith('/api') ? basic('boss', 'boss-pw') : auth.authorization },
    });
    assert.equal(r.status, status, `${method} ${path}`);
    assert.equal(errorCode(r), code, `${method} ${path}`);
  }
  const bigManifest = await http(`${m.url}/v2/library/app/manifests/v1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${await token(m, 'alice', 'alice-pw', 'repository:library/app:push,pull')}` },
    body: 'not json',
  });
  assert.equal(bigManifest.status, 400);
  assert.equal(errorCode(bigManifest), 'MANIFEST_INVALID');
  assert.equal((await http(`${m.url}/v2/`, { headers: { authorization: 'Bearer' } })).status, 401);
  assert.equal(
    (await http(`${m.url}/auth/token`, { headers: { authorization: 'Basic !!!' } })).status,
    200,
    'unparsable Basic is anonymous',
  );
  assert.equal((await http(`${m.url}/v2/`)).status, 401, 'still alive');
});

test('CLI: prints the listening line, serves, exits 0 on SIGTERM', async (t) => {
  const dir = await tmp(t, 'cli');
  const usersFile = join(dir, 'users.json');
  await writeFile(usersFile, JSON.stringify({ erin: { password: 'erin-pw', repos: { '*': ['pull'] } } }));
  const main = fileURLToPath(new URL('../../bench/dtr-mock/main.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      main,
      '--port',
      '0',
      '--cert',
      leaf.certPath,
      '--key',
      leaf.keyPath,
      '--storage',
      join(dir, 'store'),
      '--users',
      usersFile,
      '--admin',
      'root:root-pw',
      '--latency-ms',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const line = await withDeadline(
    new Promise<string>((resolve) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(out.slice(0, nl));
      });
    }),
    'listening line',
  ).catch((err: unknown) => assert.fail(`${String(err)}; stderr: ${stderr}`));
  const ev = JSON.parse(line) as { event: string; url: string; port: number };
  assert.equal(ev.event, 'listening');
  assert.equal(ev.url, `https://localhost:${ev.port}`);
  assert.equal((await http(`${ev.url}/v2/`)).status, 401);
  const tok = await http(`${ev.url}/auth/token?service=dtr-mock&scope=repository:a/b:pull`, {
    headers: { authorization: basic('erin', 'erin-pw') },
  });
  assert.deepEqual(decodeJwt((JSON.parse(tok.body.toString()) as { token: string }).token)['access'], [
    { type: 'repository', name: 'a/b', actions: ['pull'] },
  ]);
  const cache = await http(`${ev.url}/api/v0/content_caches`, {
    method: 'POST',
    headers: { authorization: basic('root', 'root-pw') },
    body: '{"name":"n","host":"https://h"}',
  });
  assert.equal(cache.status, 201);
  child.kill('SIGTERM');
  const code = await withDeadline(exited, 'exit after SIGTERM');
  assert.equal(code, 0);
});

test('image generator: valid tar layers, requested sizes, deterministic per seed', async (t) => {
  const dir = await tmp(t, 'image');
  const a = await createOciImage(join(dir, 'a'), { layers: [4096, 1_000_000, 100], seed: 42, tag: 'x' });
  const b = await createOciImage(join(dir, 'b'), { layers: [4096, 1_000_000, 100], seed: 42 });
  const c = await createOciImage(join(dir, 'c'), { layers: [4096], seed: 43 });
  assert.deepEqual(a.layerDigests, b.layerDigests);
  assert.notEqual(a.layerDigests[0], c.layerDigests[0]);
  assert.deepEqual(a.sizes, [4096, 1_000_448, 1536]);
  for (const [i, d] of a.layerDigests.entries()) {
    const p = join(a.dir, 'blobs', 'sha256', d.slice(7));
    assert.equal(sha256(await readFile(p)), d);
    const list = await new Promise<string>((resolve, reject) =>
      execFile('tar', ['-tvf', p], (err, out) => (err === null ? resolve(out) : reject(err))),
    );
    assert.match(list, new RegExp(`data/layer-${i}\\.bin`));
  }
  const index = JSON.parse(await readFile(join(a.dir, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations: Record<string, string> }[];
  };
  assert.equal(index.manifests[0]?.digest, a.manifestDigest);
  assert.equal(index.manifests[0]?.annotations['org.opencontainers.image.ref.name'], 'x');
  const manifest = JSON.parse(await readFile(join(a.dir, 'blobs', 'sha256', a.manifestDigest.slice(7)), 'utf8')) as {
    config: { digest: string };
    layers: { mediaType: string; size: number }[];
  };
  assert.equal(manifest.config.digest, a.configDigest);
  assert.deepEqual(
    manifest.layers.map((l) => [l.mediaType, l.size]),
    a.sizes.map((s) => ['application/vnd.oci.image.layer.v1.tar', s]),
  );
  assert.equal(JSON.parse(await readFile(join(a.dir, 'oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');
});

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

async function hasSkopeo(): Promise<boolean> {
  return (await run('skopeo', ['--version'])).code === 0;
}

test('skopeo: push an OCI layout, pull it back without and with a cache redirect', async (t) => {
  if (!(await hasSkopeo())) {
    if (process.env['CI'] === 'true') assert.fail('skopeo is required in CI (apt-get install skopeo)');
    t.skip('skopeo not installed');
    return;
  }
  const dir = await tmp(t, 'skopeo');
  const certs = join(dir, 'certs');
  await mkdir(certs);
  await copyFile(ca.certPath, join(certs, 'ca.crt'));
  const m = await mock(t, { storage: { dir: join(dir, 'store') } });
  const img = await createOciImage(join(dir, 'img'), { layers: [300_000, 2 * 1024 * 1024], seed: 'skopeo' });
  const ref = `docker://localhost:${m.port}/library/app:v1`;

  const push = await run('skopeo', [
    'copy',
    '--preserve-digests',
    '--dest-cert-dir',
    certs,
    '--dest-creds',
    'alice:alice-pw',
    `oci:${img.dir}:latest`,
    ref,
  ]);
  assert.equal(push.code, 0, push.out);
  const c = new RegistryClient({ baseUrl: m.url, ca: ca.cert, username: 'alice', password: 'alice-pw' });
  t.after(() => c.close());
  assert.equal((await c.getManifest('library/app', 'v1')).digest, img.manifestDigest);

  // bob has no cache selected: every blob comes from the origin, nothing is redirected.
  m.resetStats();
  const out = join(dir, 'out');
  const pull = await run('skopeo', [
    'copy',
    '--preserve-digests',
    '--src-cert-dir',
    certs,
    '--src-creds',
    'bob:bob-pw',
    ref,
    `oci:${out}:v1`,
  ]);
  assert.equal(pull.code, 0, pull.out);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(index.manifests[0]?.digest, img.manifestDigest);
  for (const d of [img.configDigest, ...img.layerDigests]) {
    assert.equal(sha256(await readFile(join(out, 'blobs', 'sha256', d.slice(7)))), d);
  }
  const st = m.stats();
  assert.equal(st.totals.blobGet.redirected, 0);
  assert.ok(st.totals.blobGet.served >= 3);
  assert.ok(st.log.some((e) => e.user === 'bob'));

  // carol has a cache selected: skopeo follows each 307 to it.
  const cacheLeaf = await ca.issue('skopeo-cache');
  let crossHostAuth = 0;
  let served = 0;
  const cache = createHttpsServer({ cert: cacheLeaf.cert, key: cacheLeaf.key }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://x');
    if (req.headers.authorization !== undefined) crossHostAuth++;
    request(`${m.url}${u.pathname}`, {
      dispatcher: agent,
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
      headers: { authorization: `Bearer ${u.searchParams.get('token') ?? ''}` },
    }).then(
      async (up) => {
        served++;
        const len = up.headers['content-length'];
        res.writeHead(up.statusCode, {
          'content-type': 'application/octet-stream',
          ...(typeof len === 'string' ? { 'content-length': len } : {}),
        });
        for await (const ch of up.body) res.write(ch);
        res.end();
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => cache.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        cache.close(() => resolve());
        cache.closeAllConnections();
      }),
  );
  await selectCache(m, 'carol', 'near', `https://localhost:${(cache.address() as AddressInfo).port}`);
  m.resetStats();
  const out2 = join(dir, 'out2');
  const pull2 = await run('skopeo', [
    'copy',
    '--preserve-digests',
    '--src-cert-dir',
    certs,
    '--src-creds',
    'carol:carol-pw',
    ref,
    `oci:${out2}:v1`,
  ]);
  assert.equal(pull2.code, 0, pull2.out);
  for (const d of [img.configDigest, ...img.layerDigests]) {
    assert.equal(sha256(await readFile(join(out2, 'blobs', 'sha256', d.slice(7)))), d);
  }
  assert.equal(m.stats().totals.blobGet.redirected, 3);
  assert.equal(served, 3);
  assert.equal(crossHostAuth, 0, 'skopeo sends no Authorization to the cache');
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
