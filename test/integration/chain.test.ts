// Chained tiers (edge → regional → origin) as real processes, each with its own
// CA listed in the next tier's `cas`; failover mid-transfer with a Range resume; loops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { startDtrMock, type DtrMock } from '../../bench/dtr-mock/index.js';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { spawnCache, writeConfig, type CacheProcess, type CacheSpec } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { within, waitFor } from '../helpers/deadline.js';
import { spoolBytes } from '../helpers/spool.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * Child-process logs arrive asynchronously: wait for `expected`, then make sure no more
 * come. The tier logs a request when it ends, in order; so once the line of a request sent
 * after everything the test did is in, every earlier line is in too.
 */
async function settled<T>(what: string, tier: Tier, list: () => T[], expected: number): Promise<T[]> {
  await waitFor(10_000, what, () => list().length >= expected);
  await tier.mark();
  const got = list();
  assert.equal(got.length, expected, what);
  return got;
}

interface Tier extends CacheProcess {
  ca: TestCa;
  /** GET requests this tier logged for a digest, with their outcome. */
  gets(digest: string): Array<Record<string, unknown>>;
  hasBlob(digest: string): Promise<boolean>;
  /** Sends GET /v2/ and waits for its log line: every line logged before it has arrived. */
  mark(): Promise<void>;
}

async function startOrigin(t: import('node:test').TestContext): Promise<{ mock: DtrMock; ca: TestCa }> {
  const ca = await createTestCa('origin CA');
  const leaf = await ca.issue('origin');
  const mock = await startDtrMock({ tls: { cert: leaf.cert, key: leaf.key } });
  t.after(() => mock.close());
  return { mock, ca };
}

async function startTier(
  t: import('node:test').TestContext,
  label: string,
  spec: Omit<CacheSpec, 'tls'>,
): Promise<Tier> {
  const ca = await createTestCa(`${label} CA`);
  const cfg = await writeConfig({ ...spec, tls: await ca.issue(label) });
  const proc = await spawnCache(t, cfg.path, cfg.root);
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const marks = () => proc.lines.filter((l) => l.msg === 'request' && l.route === 'base').length;
  return Object.assign(proc, {
    ca,
    gets: (digest: string) =>
      proc.lines.filter((l) => l.msg === 'request' && l.method === 'GET' && l.digest === digest),
    hasBlob: (digest: string) => exists(new Layout(cfg.root).blobData(parseDigest(digest))),
    async mark() {
      const before = marks();
      assert.equal((await fetchBlob(agent, `${proc.url}/v2/`)).status, 200);
      await waitFor(10_000, `${label} logged the mark`, () => marks() > before);
    },
  });
}

test('three tiers: one origin fetch, both tiers keep it, the second pull stays at the edge, 20 clients collapse', async (t) => {
  const { mock, ca: originCa } = await startOrigin(t);
  const regional = await startTier(t, 'regional', { upstreams: { origin: mock.url }, cas: [originCa.certPath] });
  const edge = await startTier(t, 'edge', {
    upstreams: { origin: mock.url, hosts: [regional.url] },
    cas: [regional.ca.certPath, originCa.certPath],
  });
  const agent = agentFor(edge.ca.cert, true);
  t.after(() => agent.destroy());

  const { digest } = await mock.putBlob('team/app', randomBytes(5 << 20));
  const token = await mock.mintRedirectToken({ sub: 'alice', name: 'team/app', digest });
  const url = `${edge.url}/v2/team/app/blobs/${digest}?token=${token}`;
  const first = await fetchBlob(agent, url);
  assert.equal(`sha256:${first.sha256}`, digest);
  assert.equal(mock.stats().blobs[digest]?.get.served, 1, 'one origin fetch');
  await waitFor(
    5_000,
    'both tiers published',
    async () => (await regional.hasBlob(digest)) && (await edge.hasBlob(digest)),
  );
  const [fill] = await settled('regional GET', regional, () => regional.gets(digest), 1);
  // The regional offers HTTP/2 as well; a fill goes over HTTP/1.1, a connection of its own
  // (docs/architecture.md, "Upstream connections").
  assert.equal(fill?.['proto'], '1.1', 'the edge fetched over HTTP/1.1');
  const keys = regional.lines.filter((l) => l.msg === 'request' && l.route === 'jwks');
  assert.ok(keys.length > 0, 'the edge asked the regional for its keys');
  assert.ok(
    keys.every((l) => l['proto'] === '1.1'),
    'and over HTTP/1.1 too',
  );

  const second = await fetchBlob(agent, url);
  assert.equal(`sha256:${second.sha256}`, digest);
  assert.equal(mock.stats().blobs[digest]?.get.served, 1, 'origin untouched');
  await settled('regional untouched: the second pull never left the edge', regional, () => regional.gets(digest), 1);
  const edgeGets = await settled('edge GETs', edge, () => edge.gets(digest), 2);
  assert.equal(edgeGets[1]?.outcome, 'hit');

  // HEAD works through the chain without starting fills.
  const { digest: cold } = await mock.putBlob('team/app', randomBytes(3 << 20));
  const coldToken = await mock.mintRedirectToken({ sub: 'alice', name: 'team/app', digest: cold });
  const head = await fetchBlob(agent, `${edge.url}/v2/team/app/blobs/${cold}?token=${coldToken}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(3 << 20));
  assert.equal(mock.stats().blobs[cold]?.get.served ?? 0, 0);

  // 20 concurrent edge clients of one cold blob: one fetch at the regional, one at the origin.
  mock.setBandwidth(2 << 20); // the fill lasts ~1.5 s, so all 20 clients are certainly waiting on it
  const many = await within(
    60_000,
    '20 clients',
    Promise.all(
      Array.from({ length: 20 }, () => fetchBlob(agent, `${edge.url}/v2/team/app/blobs/${cold}?token=${coldToken}`)),
    ),
  );
  for (const r of many) assert.equal(`sha256:${r.sha256}`, cold);
  assert.equal(mock.stats().blobs[cold]?.get.served, 1);
  await settled('one GET at the regional', regional, () => regional.gets(cold), 1);
  const coldGets = await settled('20 GETs at the edge', edge, () => edge.gets(cold), 20);
  assert.equal(coldGets.filter((l) => l.outcome === 'miss').length, 1);
  assert.equal(coldGets.filter((l) => l.outcome === 'joined').length, 19);
});

test('two regional upstreams are used round robin', async (t) => {
  const { mock, ca: originCa } = await startOrigin(t);
  const a = await startTier(t, 'regional-a', { upstreams: [mock.url], cas: [originCa.certPath] });
  const b = await startTier(t, 'regional-b', { upstreams: [mock.url], cas: [originCa.certPath] });
  const edge = await startTier(t, 'edge', { upstreams: [a.url, b.url], cas: [a.ca.certPath, b.ca.certPath] });
  const agent = agentFor(edge.ca.cert, false);
  t.after(() => agent.destroy());
  // Each serving process of the edge keeps its own round robin (http.processes): the order
  // alternates within each process.
  const order = new Map<number, string>();
  for (let i = 0; i < 6; i++) {
    const { digest } = await mock.putBlob('team/app', randomBytes(10_000 + i));
    const token = await mock.mintRedirectToken({ sub: 'alice', name: 'team/app', digest });
    const r = await fetchBlob(agent, `${edge.url}/v2/team/app/blobs/${digest}?token=${token}`);
    assert.equal(`sha256:${r.sha256}`, digest);
    await waitFor(5_000, 'a regional logged it', () => a.gets(digest).length + b.gets(digest).length === 1);
    const pid = Number((await waitFor(5_000, 'the edge logged it', () => edge.gets(digest)[0]))['pid']);
    order.set(pid, (order.get(pid) ?? '') + (a.gets(digest).length === 1 ? 'a' : 'b'));
  }
  for (const seq of order.values()) assert.ok(!/aa|bb/.test(seq), [...order.values()].join(' '));
  assert.ok(
    [...order.values()].some((seq) => seq.length >= 3),
    `requests on one connection reach one process: ${[...order.values()].join(' ')}`,
  );
});

test('the regional dies halfway through a 256 MiB blob: the edge resumes from the origin with Range', async (t) => {
  const { mock, ca: originCa } = await startOrigin(t);
  const regional = await startTier(t, 'regional', { upstreams: [mock.url], cas: [originCa.certPath] });
  const edge = await startTier(t, 'edge', {
    upstreams: { origin: mock.url, hosts: [regional.url] },
    cas: [regional.ca.certPath, originCa.certPath],
  });
  const size = 256 << 20;
  const bytes = randomBytes(size);
  const { digest } = await mock.putBlob('team/big', bytes);
  const token = await mock.mintRedirectToken({ sub: 'alice', name: 'team/big', digest });
  mock.setBandwidth(80 << 20);
  const agent = agentFor(edge.ca.cert, true);
  t.after(() => agent.destroy());
  const url = `${edge.url}/v2/team/big/blobs/${digest}?token=${token}`;

  // Two clients; the kill is timed by the edge's spool (what the fill has received), not
  // by a client, which may lag behind the fill.
  const clients = [fetchBlob(agent, url), fetchBlob(agent, url)];
  await waitFor(60_000, 'edge received half', async () => (await spoolBytes(edge.root, digest)) >= size / 2);
  await regional.stop('SIGKILL');
  const results = await within(120_000, 'clients through failover', Promise.all(clients));
  for (const r of results) {
    assert.equal(r.error, null);
    assert.equal(r.body.length, size);
    assert.equal(`sha256:${r.sha256}`, digest);
  }
  await waitFor(
    5_000,
    'origin logged the resume',
    () => mock.stats().log.filter((l) => l.method === 'GET' && l.path.endsWith(digest)).length >= 2,
  );
  const originGets = mock.stats().log.filter((l) => l.method === 'GET' && l.path.endsWith(digest));
  const resumes = originGets.filter((l) => l.range !== undefined && l.range !== null && l.range !== '');
  assert.equal(resumes.length, 1, JSON.stringify(originGets));
  const start = Number(/^bytes=(\d+)-$/.exec(String(resumes[0]!.range))?.[1]);
  assert.ok(start > 0 && start < size, `resume asked only for the rest (from ${start})`);
  assert.equal(originGets.length, 2, "the regional's full GET and the edge's resume");
  await settled(
    'published once',
    edge,
    () => edge.lines.filter((l) => l.msg === 'fill published' && l.digest === digest),
    1,
  );
  assert.ok(edge.lines.some((l) => l.msg === 'upstream transfer broke, resuming'));
  assert.ok(await edge.hasBlob(digest));
});

test('all upstreams down: 503 UNAVAILABLE quickly, never a hang', async (t) => {
  const { mock } = await startOrigin(t);
  const { digest } = await mock.putBlob('team/app', randomBytes(1000));
  const token = await mock.mintRedirectToken({ sub: 'alice', name: 'team/app', digest });
  // Keys come from a file: the point is that no upstream answers blob requests.
  const dir = await writeConfig({ upstreams: [], cas: [], tls: null });
  const jwks = join(dir.dir, 'jwks.json');
  await writeFile(jwks, JSON.stringify(mock.jwks()));
  const edge = await startTier(t, 'edge', {
    upstreams: { origin: 'https://127.0.0.1:9', hosts: ['https://127.0.0.1:1', 'https://127.0.0.1:2'] },
    cas: [],
    extraOptions: `          jwks: ${jwks}\n`,
  });
  const agent = agentFor(edge.ca.cert, false);
  t.after(() => agent.destroy());
  const started = Date.now();
  const r = await fetchBlob(agent, `${edge.url}/v2/team/app/blobs/${digest}?token=${token}`);
  assert.equal(r.status, 503);
  assert.equal(JSON.parse(r.body.toString()).errors[0].code, 'UNAVAILABLE');
  assert.ok(Date.now() - started < 3_000, `answered in ${Date.now() - started} ms`);
});

test('a request loop is refused and logged, not forwarded forever', async (t) => {
  const { mock, ca: originCa } = await startOrigin(t);
  const { digest } = await mock.putBlob('team/app', randomBytes(1000));
  const token = await mock.mintRedirectToken({ sub: 'alice', name: 'team/app', digest });
  // a's only upstream is b, and b's only upstream is a: a misconfigured ring.
  const ca = await createTestCa('ring CA');
  const jwksDir = await writeConfig({ upstreams: [], cas: [], tls: null });
  const jwks = join(jwksDir.dir, 'jwks.json');
  await writeFile(jwks, JSON.stringify(mock.jwks()));
  const net = await import('node:net');
  const freePort = () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as import('node:net').AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
  const [pa, pb] = [await freePort(), await freePort()];
  const mk = async (port: number, peer: number) => {
    const cfg = await writeConfig({
      upstreams: [`https://localhost:${peer}`],
      cas: [ca.certPath, originCa.certPath],
      tls: await ca.issue('ring'),
      extraOptions: `          jwks: ${jwks}\n`,
    });
    const text = (await readFile(cfg.path, 'utf8')).replace('addr: 127.0.0.1:0', `addr: 127.0.0.1:${port}`);
    await writeFile(cfg.path, text);
    return spawnCache(t, cfg.path, cfg.root);
  };
  const a = await mk(pa, pb);
  const b = await mk(pb, pa);
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const r = await within(
    20_000,
    'loop answer',
    fetchBlob(agent, `${a.url}/v2/team/app/blobs/${digest}?token=${token}`),
  );
  assert.ok(r.status >= 500, `status ${r.status}`);
  assert.ok(
    [...a.lines, ...b.lines].some((l) => String(l.msg).startsWith('request loop')),
    'a tier logged the loop',
  );
  assert.equal(mock.stats().blobs[digest]?.get.served ?? 0, 0);
});
