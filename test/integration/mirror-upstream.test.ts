// Mirror mode, the upstream side (issue 15): the token flow (Bearer challenge → token, with
// the mirror's credentials or anonymous, cached per scope, one fetch for concurrent
// requests), the realm pinned to the upstream's configuration, Basic challenges, manifests
// verified against their digest before anything is kept, and credentials never logged.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import { createOciImage } from '../../testkit/image.js';
import { createTestCa } from '../../testkit/pki.js';
import { send, startFakeRegistry } from '../helpers/fake-registry.js';
import { ACCEPT_ALL, MIRROR_USER, REGISTRY, startMirrorStack, type MirrorStack } from '../helpers/mirror.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function pushImage(s: MirrorStack, repo: string, tag: string, seed: string) {
  const img = await createOciImage(join(s.dir, `img-${seed}`), { layers: [10_000], seed, tag });
  await s.upstream.putOciLayout(img.dir, repo, tag);
  return img;
}

const tokenRequests = (s: MirrorStack) => s.upstreamLog(/^\/auth\/token$/);
const code = (body: Buffer) => (JSON.parse(body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code;

test('one token per repository scope, fetched once for concurrent requests, with the mirror credentials', async (t) => {
  const s = await startMirrorStack(t);
  for (const tag of ['a', 'b', 'c', 'd', 'e']) await pushImage(s, 'team/one', tag, `t-${tag}`);
  await pushImage(s, 'team/two', 'a', 't2');
  s.upstream.setLatency(200);
  const tags = ['a', 'b', 'c', 'd', 'e'];
  const first = await Promise.all(
    tags.map((tag) => s.get(`/v2/team/one/manifests/${tag}`, { headers: { accept: ACCEPT_ALL } })),
  );
  for (const r of first) assert.equal(r.status, 200);
  assert.equal(tokenRequests(s).length, 1, 'five requests, one token');
  assert.deepEqual(
    tokenRequests(s).map((e) => e.user),
    [MIRROR_USER.user],
  );
  assert.equal(
    (await s.get('/v2/team/one/manifests/sha256:' + 'f'.repeat(64), { headers: { accept: ACCEPT_ALL } })).status,
    404,
  );
  assert.equal(tokenRequests(s).length, 1, 'the cached token serves the same scope');
  assert.equal((await s.get('/v2/team/two/manifests/a', { headers: { accept: ACCEPT_ALL } })).status, 200);
  assert.equal(tokenRequests(s).length, 2, 'another repository, another scope');
  const log = await readFile(s.cache.logFile, 'utf8');
  assert.doesNotMatch(log, new RegExp(MIRROR_USER.password), 'the password never reaches the log');
});

test('anonymous: a token without credentials; an upstream that grants nothing is DENIED, never a challenge', async (t) => {
  const s = await startMirrorStack(t, { mirrors: [{ registry: REGISTRY, default: true }] });
  await pushImage(s, 'team/app', 'v1', 'anon');
  const r = await s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(r.status, 403);
  assert.equal(code(r.body), 'DENIED');
  assert.equal(r.headers['www-authenticate'], undefined, "the upstream's challenge is not passed on");
  assert.deepEqual(
    tokenRequests(s).map((e) => e.user),
    [null],
    'asked anonymously',
  );
  // An open upstream: no challenge, no token.
  s.upstream.setTokens(false);
  const open = await s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(open.status, 200);
  assert.equal(tokenRequests(s).length, 1);
});

test('the token realm is pinned: another host is refused unless listed in realms', async (t) => {
  const ca = await createTestCa('mirror realm test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  // The mock names its realm with its publicHost: 127.0.0.1, while remoteurl says localhost.
  const s = await startMirrorStack(t, { ca, upstream: { publicHost: '127.0.0.1' } });
  const remote = s.upstream.url.replace('127.0.0.1', 'localhost');
  const realm = s.upstream.url;
  const s2 = await startMirrorStack(t, {
    ca,
    mirrors: [
      { registry: 'pinned.test', remoteurl: remote, username: MIRROR_USER.user, password: MIRROR_USER.password },
      {
        registry: 'listed.test',
        remoteurl: remote,
        username: MIRROR_USER.user,
        password: MIRROR_USER.password,
        extra: `    realms: [${realm}]`,
      },
    ],
  });
  await pushImage(s, 'team/app', 'v1', 'realm');
  const refused = await s2.get('/v2/team/app/manifests/v1?ns=pinned.test', { headers: { accept: ACCEPT_ALL } });
  assert.equal(refused.status, 502);
  assert.equal(code(refused.body), 'UNAVAILABLE');
  assert.equal(tokenRequests(s).length, 0, 'no request to a realm that is not allowed');
  const lines = await s2.cache.logLines();
  assert.ok(
    lines.some((l) => l['msg'] === 'upstream token realm is not allowed for this mirror; add its origin to realms'),
  );
  const allowed = await s2.get('/v2/team/app/manifests/v1?ns=listed.test', { headers: { accept: ACCEPT_ALL } });
  assert.equal(allowed.status, 200, allowed.body.toString());
  assert.equal(tokenRequests(s).length, 1);
});

test('Basic challenges: answered with the credentials, then sent up front', async (t) => {
  const ca = await createTestCa('mirror basic test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }));
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const expected = `Basic ${Buffer.from('bob:bob-pw').toString('base64')}`;
  const fake = await startFakeRegistry(t, await ca.issue('fake'), (req, res) => {
    if (req.headers.authorization !== expected) {
      send(res, 401, { 'WWW-Authenticate': 'Basic realm="fake"', 'Content-Type': 'application/json' }, '{"errors":[]}');
      return;
    }
    send(res, 200, { 'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': digest }, manifest.toString());
  });
  const s = await startMirrorStack(t, {
    ca,
    mirrors: [
      { registry: 'basic.test', remoteurl: fake.url, username: 'bob', password: 'bob-pw', tagttl: '0s' },
      { registry: 'nocreds.test', remoteurl: fake.url },
    ],
  });
  for (let i = 0; i < 3; i++) {
    const r = await s.get('/v2/team/app/manifests/v1?ns=basic.test', { headers: { accept: ACCEPT_ALL } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['docker-content-digest'], digest);
  }
  assert.deepEqual(
    fake.seen.map((x) => `${x.method} ${x.authorization === expected ? 'basic' : 'none'}`),
    ['GET none', 'GET basic', 'HEAD basic', 'HEAD basic'],
  );
  const without = await s.get('/v2/team/app/manifests/v1?ns=nocreds.test', { headers: { accept: ACCEPT_ALL } });
  assert.equal(without.status, 403);
  assert.match(without.body.toString(), /no user name and password|none configured/);
});

test('an upstream that refuses HEAD on manifests is revalidated with a GET', async (t) => {
  const ca = await createTestCa('mirror head test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  let manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }));
  const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  // As some registries do (containerd's resolver retries such a HEAD as a GET).
  const fake = await startFakeRegistry(t, await ca.issue('fake'), (req, res) => {
    if (req.method === 'HEAD') return send(res, 405, { 'Content-Type': 'application/json' }, '{"errors":[]}');
    send(res, 200, { 'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': digestOf(manifest) }, manifest);
  });
  const s = await startMirrorStack(t, {
    ca,
    mirrors: [{ registry: 'nohead.test', remoteurl: fake.url, tagttl: '0s' }],
  });
  const pull = () => s.get('/v2/team/app/manifests/v1?ns=nohead.test', { headers: { accept: ACCEPT_ALL } });
  for (let i = 0; i < 2; i++) {
    const r = await pull();
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['docker-content-digest'], digestOf(manifest));
  }
  // The tag moves: the GET that stands in for the HEAD brings the new manifest.
  manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [], v: 2 }));
  const moved = await pull();
  assert.equal(moved.status, 200);
  assert.equal(moved.headers['docker-content-digest'], digestOf(manifest));
  assert.deepEqual(
    fake.seen.map((x) => x.method),
    ['GET', 'HEAD', 'GET', 'HEAD', 'GET'],
  );
});

test('listings: tags and referrers pass through with their query, and page links lead back here', async (t) => {
  const ca = await createTestCa('mirror listing test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  const subject = `sha256:${'d'.repeat(64)}`;
  const index = (digests: string[]) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: digests.map((d) => ({ mediaType: OCI_MANIFEST, digest: d, size: 2 })),
    });
  // Two pages of each, the next page named by a Link as the spec has it.
  const fake = await startFakeRegistry(t, await ca.issue('fake'), (_req, res, url) => {
    const last = url.searchParams.get('last');
    if (url.pathname === '/v2/team/app/tags/list') {
      if (last === null) {
        const link = '</v2/team/app/tags/list?n=2&last=b>; rel="next"';
        return send(
          res,
          200,
          { 'Content-Type': 'application/json', Link: link },
          '{"name":"team/app","tags":["a","b"]}',
        );
      }
      return send(res, 200, { 'Content-Type': 'application/json' }, '{"name":"team/app","tags":["c"]}');
    }
    if (url.pathname === `/v2/team/app/referrers/${subject}`) {
      const type = { 'Content-Type': 'application/vnd.oci.image.index.v1+json' };
      if (last === null) {
        const link = `</v2/team/app/referrers/${subject}?n=1&last=p1>; rel="next"`;
        return send(res, 200, { ...type, Link: link }, index([`sha256:${'1'.repeat(64)}`]));
      }
      return send(res, 200, type, index([`sha256:${'2'.repeat(64)}`]));
    }
    send(res, 404, { 'Content-Type': 'application/json' }, '{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
  });
  const s = await startMirrorStack(t, { ca, mirrors: [{ registry: 'listing.test', remoteurl: fake.url }] });
  const nextOf = (link: unknown) => /^<([^>]+)>; rel="next"$/.exec(String(link))?.[1];
  // Named with ns, then with the registry as the path's first component: the link keeps either.
  for (const [first, expectNext] of [
    ['/v2/team/app/tags/list?ns=listing.test', '/v2/team/app/tags/list?n=2&last=b&ns=listing.test'],
    ['/v2/listing.test/team/app/tags/list', '/v2/listing.test/team/app/tags/list?n=2&last=b'],
  ] as const) {
    const page1 = await s.get(first);
    assert.equal(page1.status, 200, page1.body.toString());
    assert.deepEqual(JSON.parse(page1.body.toString()).tags, ['a', 'b']);
    assert.equal(nextOf(page1.headers.link), expectNext);
    const page2 = await s.get(expectNext);
    assert.equal(page2.status, 200);
    assert.deepEqual(JSON.parse(page2.body.toString()).tags, ['c'], 'the second page, not the first again');
  }
  const refs = await s.get(`/v2/team/app/referrers/${subject}?ns=listing.test`);
  assert.equal(refs.status, 200);
  const next = nextOf(refs.headers.link) ?? '';
  assert.equal(next, `/v2/team/app/referrers/${subject}?n=1&last=p1&ns=listing.test`);
  const refs2 = await s.get(next);
  assert.deepEqual(
    (JSON.parse(refs2.body.toString()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest),
    [`sha256:${'2'.repeat(64)}`],
  );
  // What the upstream was asked: every query parameter but ns, and never a copy served instead.
  assert.deepEqual(
    fake.seen.filter((x) => x.method === 'GET' && x.path.startsWith('/v2/team/')).map((x) => x.path),
    [
      '/v2/team/app/tags/list',
      '/v2/team/app/tags/list?n=2&last=b',
      '/v2/team/app/tags/list',
      '/v2/team/app/tags/list?n=2&last=b',
      `/v2/team/app/referrers/${subject}`,
      `/v2/team/app/referrers/${subject}?n=1&last=p1`,
    ],
  );
  // An unknown repository's tags: the upstream's 404 and code.
  const unknown = await s.get('/v2/team/none/tags/list?ns=listing.test');
  assert.deepEqual([unknown.status, code(unknown.body)], [404, 'NAME_UNKNOWN']);
});

test('a redirect target that wants a token of its own gets an anonymous one from its realm', async (t) => {
  const ca = await createTestCa('mirror redirect auth test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }));
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  // B: a regional registry (as registry.k8s.io sends pulls to), with its own token service.
  const regional = await startFakeRegistry(t, await ca.issue('regional'), (req, res, url) => {
    if (url.pathname === '/token') return send(res, 200, { 'Content-Type': 'application/json' }, '{"token":"tok-b"}');
    if (req.headers.authorization !== 'Bearer tok-b') {
      const challenge = `Bearer realm="${regional.url}/token",service="regional"`;
      return send(res, 401, { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json' }, '{"errors":[]}');
    }
    send(res, 200, { 'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': digest }, manifest);
  });
  // A: the configured upstream, which sends every manifest request on to B.
  const front = await startFakeRegistry(t, await ca.issue('front'), (_req, res, url) => {
    send(res, 307, { Location: `${regional.url}${url.pathname}` });
  });
  const s = await startMirrorStack(t, {
    ca,
    mirrors: [{ registry: 'k8s.test', remoteurl: front.url, username: 'bob', password: 'bob-pw', tagttl: '0s' }],
  });
  for (let i = 0; i < 2; i++) {
    const r = await s.get('/v2/team/app/manifests/v1?ns=k8s.test', { headers: { accept: ACCEPT_ALL } });
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['docker-content-digest'], digest);
  }
  // The token is B's, fetched once, anonymously, and sent only to B.
  const tokenAsks = regional.seen.filter((x) => x.path.startsWith('/token'));
  assert.deepEqual(
    tokenAsks.map((x) => [x.path, x.authorization]),
    [['/token?service=regional&scope=repository%3Ateam%2Fapp%3Apull', undefined]],
    'one token, asked anonymously (the credentials for A never go to B), then reused',
  );
  assert.ok(
    front.seen.every((x) => x.authorization !== 'Bearer tok-b'),
    "B's token never goes to A",
  );
  assert.deepEqual(
    regional.seen.filter((x) => !x.path.startsWith('/token')).map((x) => `${x.method} ${x.authorization ?? '-'}`),
    ['GET -', 'GET Bearer tok-b', 'HEAD Bearer tok-b'],
  );
});

test('manifest bytes that do not hash to their digest are refused and never kept', async (t) => {
  const ca = await createTestCa('mirror verify test CA');
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  const good = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }));
  const digest = `sha256:${createHash('sha256').update(good).digest('hex')}`;
  const bad = Buffer.from(good.toString().replace('"layers":[]', '"layers":[ ]'));
  let lie = true;
  const fake = await startFakeRegistry(t, await ca.issue('fake'), (_req, res, url) => {
    if (url.pathname === '/v2/') return send(res, 200, {}, '{}');
    // By tag: a Docker-Content-Digest the body does not match; by digest: other bytes.
    const body = lie ? bad : good;
    send(res, 200, { 'Content-Type': OCI_MANIFEST, 'Docker-Content-Digest': digest }, body.toString());
  });
  const s = await startMirrorStack(t, { ca, mirrors: [{ registry: 'liar.test', remoteurl: fake.url, default: true }] });
  const byTag = await s.get('/v2/team/app/manifests/v1', { headers: { accept: ACCEPT_ALL } });
  assert.equal(byTag.status, 502);
  const byDigest = await s.get(`/v2/team/app/manifests/${digest}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(byDigest.status, 502);
  assert.match(byDigest.body.toString(), /does not hash to its digest/);
  lie = false;
  const honest = await s.get(`/v2/team/app/manifests/${digest}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(honest.status, 200);
  assert.equal(`sha256:${honest.sha256}`, digest);
  assert.equal(fake.seen.filter((x) => x.path.startsWith('/v2/team/app/manifests/')).length, 3, 'nothing bad was kept');
});
