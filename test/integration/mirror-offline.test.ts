// Mirror mode without its upstream (issue 15): stale-if-error — when the upstream answers
// 5xx or 429, or cannot be reached, the last known tag is served with a Warning and a log
// line, digests and blobs pull from the store; a tag deleted upstream while it is reachable
// is gone (404). And `ttl` never deletes the last copy while the upstream is unreachable.
import assert from 'node:assert/strict';
import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { startDtrMock } from '../../bench/dtr-mock/index.js';
import { createOciImage } from '../../testkit/image.js';
import { createTestCa } from '../../testkit/pki.js';
import { parseDigest } from '../../src/store/digest.js';
import { Layout } from '../../src/store/layout.js';
import { waitFor } from '../helpers/deadline.js';
import { send, startFakeRegistry } from '../helpers/fake-registry.js';
import { ACCEPT_ALL, MIRROR_USER, REGISTRY, pullImage, startMirrorStack, waitPublished } from '../helpers/mirror.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );
const STALE = '110 - "Response is Stale", 111 - "Revalidation Failed"';

/**
 * The raw log lines with this message, each holding the key `registry` once: pino writes a
 * key bound to the mirror's logger and the same key in the call twice, and log pipelines
 * that reject duplicate keys (Elasticsearch's JSON parser) drop such lines.
 */
async function registryOnce(logFile: string, msg: string): Promise<number> {
  const raw = (await readFile(logFile, 'utf8')).split('\n').filter((l) => l.includes(`"msg":"${msg}"`));
  for (const line of raw) assert.equal(line.split('"registry":').length - 1, 1, `one registry key: ${line}`);
  return raw.length;
}

test('5xx, 429 and an unreachable upstream: the last known tag with a Warning; digests and blobs still pull', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [
      { registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true, tagttl: '0s' },
    ],
  });
  const img = await createOciImage(join(s.dir, 'img'), { layers: [60_000, 1_000], seed: 'off', tag: 'v1' });
  await s.upstream.putOciLayout(img.dir, 'team/app', 'v1');
  const fresh = await pullImage(s, 'team/app', 'v1');
  assert.deepEqual(fresh.statuses, [200, 200, 200, 200]);
  await waitPublished(s.cache, [img.configDigest, ...img.layerDigests]);
  assert.equal(fresh.manifest.headers['warning'], undefined);
  const tag = () => s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });

  for (const status of [503, 429]) {
    s.upstream.configure({ manifestStatus: status });
    const r = await tag();
    assert.equal(r.status, 200, `upstream ${status}`);
    assert.equal(r.headers['warning'], STALE);
    assert.equal(r.headers['docker-content-digest'], img.manifestDigest);
    assert.equal(`sha256:${r.sha256}`, img.manifestDigest);
  }
  s.upstream.configure({ manifestStatus: null });
  const back = await waitFor(10_000, 'the upstream out of back-off', async () => {
    const r = await tag();
    return r.headers['warning'] === undefined ? r : undefined;
  });
  assert.equal(back.status, 200);

  await s.upstream.close();
  const offline = await pullImage(s, 'team/app', 'v1');
  assert.deepEqual(offline.statuses, [200, 200, 200, 200], 'tag, config and layers with the upstream gone');
  assert.equal(offline.manifest.headers['warning'], STALE);
  const byDigest = await s.get(`/v2/team/app/manifests/${img.manifestDigest}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(byDigest.status, 200);
  assert.equal(byDigest.headers['warning'], undefined, 'a digest is immutable: nothing to warn about');
  const lines = await s.cache.logLines();
  const stale = lines.filter((l) => l['msg'] === 'upstream unavailable: serving the last known tag');
  assert.ok(stale.length >= 3, `a log line per stale answer (${stale.length})`);
  assert.ok(stale.every((l) => l['repo'] === 'team/app' && l['tag'] === 'v1' && l['digest'] === img.manifestDigest));
  assert.ok(stale.every((l) => l['registry'] === REGISTRY));
  assert.equal(await registryOnce(s.cache.logFile, 'upstream unavailable: serving the last known tag'), stale.length);
  // Never pulled before: nothing to fall back on, an honest gateway error.
  const unknown = await s.get('/v2/team/app/manifests/v2', { headers: { accept: ACCEPT_ALL } });
  assert.ok([502, 503, 504].includes(unknown.status), `status ${unknown.status}`);
});

test('an upstream 429 on a cold miss: 429 with a Retry-After (its own, else 1), naming no upstream host', async (t) => {
  const ca = await createTestCa('mirror 429 test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  const fake = await startFakeRegistry(t, await ca.issue('fake'), (_req, res, url) => {
    const retry: Record<string, string> = url.pathname.startsWith('/v2/said/') ? { 'Retry-After': '7' } : {};
    const body = '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down","detail":{}}]}';
    send(res, 429, { 'Content-Type': 'application/json', ...retry }, body);
  });
  const s = await startMirrorStack(t, { ca, mirrors: [{ registry: 'busy.test', remoteurl: fake.url, default: true }] });
  const digest = `sha256:${'a'.repeat(64)}`;
  const asked = [
    ['said', 'manifests/v1', 'GET'],
    ['said', `blobs/${digest}`, 'GET'],
    ['said', `blobs/${digest}`, 'HEAD'],
    ['silent', 'manifests/v1', 'GET'],
    ['silent', `blobs/${digest}`, 'GET'],
    ['silent', `blobs/${digest}`, 'HEAD'],
  ] as const;
  for (const [repo, rest, method] of asked) {
    const r = await s.get(`/v2/${repo}/app/${rest}`, { method, headers: { accept: ACCEPT_ALL } });
    const what = `${method} ${repo} ${rest}`;
    assert.equal(r.status, 429, what);
    assert.equal(r.headers['retry-after'], repo === 'said' ? '7' : '1', what);
    if (method === 'GET') assert.match(r.body.toString(), /TOOMANYREQUESTS/, what);
    const shown = `${r.body.toString()} ${JSON.stringify(r.headers)}`;
    assert.ok(!shown.includes(String(new URL(fake.url).port)), `${what}: no upstream host in ${shown}`);
  }
});

test('a token service that answers 429 is throttling too: 429 with its Retry-After, not a 502', async (t) => {
  const ca = await createTestCa('mirror token 429 test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  let realm = '';
  const fake = await startFakeRegistry(t, await ca.issue('fake'), (_req, res, url) => {
    if (url.pathname === '/token') {
      send(res, 429, { 'Content-Type': 'application/json', 'Retry-After': '11' }, '{"details":"too many"}');
      return;
    }
    const challenge = `Bearer realm="${realm}",service="fake"`;
    send(res, 401, { 'Content-Type': 'application/json', 'WWW-Authenticate': challenge }, '{"errors":[]}');
  });
  realm = `${fake.url}/token`;
  const s = await startMirrorStack(t, { ca, mirrors: [{ registry: 'busy.test', remoteurl: fake.url, default: true }] });
  for (const rest of ['manifests/v1', `blobs/sha256:${'b'.repeat(64)}`]) {
    const r = await s.get(`/v2/team/app/${rest}`, { headers: { accept: ACCEPT_ALL } });
    assert.equal(r.status, 429, `${rest}: ${r.body.toString()}`);
    assert.equal(r.headers['retry-after'], '11', rest);
    assert.match(r.body.toString(), /TOOMANYREQUESTS/);
  }
  assert.ok(
    fake.seen.some((x) => x.path.startsWith('/token')),
    'the token service was asked',
  );
});

test('a tag deleted upstream, while it answers, is gone: 404 and its record removed', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [
      { registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true, tagttl: '0s' },
    ],
  });
  const img = await createOciImage(join(s.dir, 'img'), { layers: [1_000], seed: 'gone', tag: 'v1' });
  await s.upstream.putOciLayout(img.dir, 'team/app', 'v1');
  assert.equal((await pullImage(s, 'team/app', 'v1')).manifest.status, 200);
  const record = join(s.cache.root, 'docker/registry/v2/_dtr-cache/mirror/registries', REGISTRY, 'team/app/_tags/v1');
  assert.ok(await exists(record), 'the tag is recorded');
  assert.equal(await s.upstream.deleteTag('team/app', 'v1'), true);
  const r = await s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(r.status, 404);
  assert.match(r.body.toString(), /MANIFEST_UNKNOWN/);
  assert.equal(await exists(record), false, 'the record is gone');
  assert.equal(await registryOnce(s.cache.logFile, 'tag gone upstream: forgotten'), 1, 'the log line, registry once');
  assert.equal(
    (await s.get(`/v2/team/app/manifests/${img.manifestDigest}`, { headers: { accept: ACCEPT_ALL } })).status,
    200,
    'its manifest by digest is still there',
  );
});

test('ttl never deletes the last copy while the upstream is unreachable; once it answers, expiry resumes', async (t) => {
  const s = await startMirrorStack(t, {
    mirrors: [
      {
        registry: REGISTRY,
        username: MIRROR_USER.user,
        password: MIRROR_USER.password,
        default: true,
        ttl: '2s',
        tagttl: '0s',
      },
    ],
  });
  const img = await createOciImage(join(s.dir, 'img'), { layers: [30_000], seed: 'ttl', tag: 'v1' });
  await s.upstream.putOciLayout(img.dir, 'team/app', 'v1');
  assert.deepEqual((await pullImage(s, 'team/app', 'v1')).statuses, [200, 200, 200]);
  await waitPublished(s.cache, [img.configDigest, ...img.layerDigests]);
  const layout = new Layout(s.cache.root);
  const files = [img.manifestDigest, img.configDigest, ...img.layerDigests].map((d) => layout.blobData(parseDigest(d)));
  const port = s.upstream.port;
  await s.upstream.close();
  // Two eviction sweeps that found the content expired and kept it.
  await waitFor(15_000, 'two sweeps keeping the content', async () => {
    const kept = (await s.cache.logLines()).filter(
      (l) => l['msg'] === 'mirror upstream unreachable: keeping its content past ttl',
    );
    return kept.length >= 2 || undefined;
  });
  for (const f of files) assert.ok(await exists(f), `${f} kept`);
  assert.equal((await s.cache.logLines()).filter((l) => l['msg'] === 'blob evicted').length, 0);
  const offline = await pullImage(s, 'team/app', 'v1');
  assert.deepEqual(offline.statuses, [200, 200, 200], 'still pulls, long past ttl');

  // The upstream is back (same port, same data): the next sweeps let it all expire.
  const back = await startDtrMock({
    port,
    tls: await s.ca.issue('upstream'),
    storage: { dir: join(s.dir, 'upstream') },
    users: { [MIRROR_USER.user]: { password: MIRROR_USER.password, repos: { '*': ['pull'] } } },
  });
  t.after(() => back.close());
  await waitFor(15_000, 'the content evicted', async () => {
    const gone = await Promise.all(files.map(async (f) => !(await exists(f))));
    return gone.every(Boolean) || undefined;
  });
  const evicted = (await s.cache.logLines()).filter((l) => l['msg'] === 'blob evicted').map((l) => l['digest']);
  assert.deepEqual(new Set(evicted), new Set([img.manifestDigest, img.configDigest, ...img.layerDigests]));
});
