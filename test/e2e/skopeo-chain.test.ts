// End to end: the chaining configs of the DTR docs (seed 003: Asia pulls from DTR,
// China from the Asia cache, DTR 2.2 form) run unchanged apart from addresses and
// certificate paths, each tier with its own CA, and skopeo pulls through China → Asia →
// origin via the origin's redirect. The 2.3+ plain-list form is checked beside it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { startDtrMock } from '../../bench/dtr-mock/index.js';
import { DtrApi } from '../../testkit/dtr-api.js';
import { createOciImage } from '../../testkit/image.js';
import { badBlobs, readLayoutImage } from '../../testkit/oci-layout.js';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { caCertDir, runTool } from '../../testkit/tools.js';
import { spawnCache, type CacheProcess } from '../helpers/cache.js';
import { waitFor } from '../helpers/deadline.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { ADMIN, fillsPublished, requireTool } from './e2e-stack.js';

const SEEDS = new URL('../../../test/fixtures/seeds/', import.meta.url).pathname;

/** A seed config with only its addresses and certificate paths replaced. */
async function seedConfig(dir: string, file: string, swaps: Array<[string, string]>): Promise<string> {
  let text = await readFile(join(SEEDS, file), 'utf8');
  for (const [from, to] of swaps) {
    assert.ok(text.includes(from), `${file} has ${from}`);
    text = text.split(from).join(to);
  }
  assert.doesNotMatch(text, /<[a-z-]+>/, `every placeholder of ${file} was filled`);
  const path = join(dir, file);
  await writeFile(path, text);
  return path;
}

async function tier(
  t: TestContext,
  dir: string,
  name: string,
  file: string,
  swaps: (leaf: { certPath: string; keyPath: string }) => Array<[string, string]>,
): Promise<CacheProcess & { ca: TestCa }> {
  const ca = await createTestCa(`${name} CA`, await mkdtemp(join(dir, `${name}-pki-`)));
  const leaf = await ca.issue(name);
  const root = join(dir, `${name}-registry`);
  const path = await seedConfig(dir, file, [['/var/lib/registry', root], ...swaps(leaf)]);
  return Object.assign(await spawnCache(t, path, root), { ca });
}

test('skopeo pulls through the seed chain China → Asia → origin, each blob fetched once per tier', async (t) => {
  if (!(await requireTool(t, 'skopeo', true))) return;
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-e2e-chain-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const originCa = await createTestCa('origin CA', await mkdtemp(join(dir, 'origin-pki-')));
  const mock = await startDtrMock({
    tls: await originCa.issue('dtr-mock'),
    users: {
      alice: { password: 'alice-pw', repos: { 'library/app': ['pull', 'push'] } },
      [ADMIN.user]: { password: ADMIN.password, admin: true },
    },
  });
  t.after(() => mock.close());
  const dtrHost = new URL(mock.url).host;
  const seedTls =
    (name: string) =>
    (leaf: { certPath: string; keyPath: string }): Array<[string, string]> => [
      ['addr: :5000', 'addr: 127.0.0.1:0'],
      [`/certs/${name}-ca.pem`, leaf.certPath],
      [`/certs/${name}-key.pem`, leaf.keyPath],
    ];
  const asia = await tier(t, dir, 'asia', '003-asia.yml', (leaf) => [
    ...seedTls('asia')(leaf),
    ['<dtr-url>', dtrHost],
    ['/certs/dtr-ca.pem', originCa.certPath],
  ]);
  const china = await tier(t, dir, 'china', '003-china.yml', (leaf) => [
    ...seedTls('china')(leaf),
    ['<dtr-url>', dtrHost],
    ['<asia-cache-url>', new URL(asia.url).host],
    ['/certs/asia-cache-ca.pem', asia.ca.certPath],
    ['/certs/dtr-ca.pem', originCa.certPath],
  ]);

  // The users in China pull from the China cache: register it and select it (docs/protocol.md §7).
  const api = new DtrApi(mock.url, originCa.cert);
  t.after(() => api.close());
  await api.registerContentCache(ADMIN, 'region-china', china.url);
  await api.selectContentCache(ADMIN, 'alice', 'region-china');

  const img = await createOciImage(join(dir, 'img'), {
    layers: [24 << 20, 2 << 20, 100_000],
    seed: 'e2e-chain',
    tag: 'v1',
  });
  const ref = `docker://localhost:${mock.port}/library/app:v1`;
  // skopeo trusts one directory of CAs for the whole pull: the origin's and China's.
  const certDir = await caCertDir(originCa.certPath, join(dir, 'certs'));
  await writeFile(join(certDir, 'china.crt'), china.ca.cert);
  const skopeo = (...args: string[]) => runTool('skopeo', ['--insecure-policy', ...args], 120_000);
  const push = await skopeo(
    'copy',
    '--preserve-digests',
    '--dest-cert-dir',
    certDir,
    '--dest-creds',
    'alice:alice-pw',
    `oci:${img.dir}:v1`,
    ref,
  );
  assert.equal(push.code, 0, push.out);
  mock.resetStats();

  const out = join(dir, 'out');
  const pull = await skopeo(
    'copy',
    '--preserve-digests',
    '--src-cert-dir',
    certDir,
    '--src-creds',
    'alice:alice-pw',
    ref,
    `oci:${out}:v1`,
  );
  assert.equal(pull.code, 0, pull.out);
  const got = await readLayoutImage(out, 'v1');
  assert.equal(got.manifestDigest, img.manifestDigest);
  assert.deepEqual(got.layerDigests, img.layerDigests);
  const blobs = [img.configDigest, ...img.layerDigests];
  assert.deepEqual(await badBlobs(out, blobs), []);
  for (const d of blobs) {
    const g = mock.stats().blobs[d]?.get;
    assert.equal(g?.redirected, 1, `the origin redirected ${d} to China`);
    assert.equal(g?.served, 1, `the origin served ${d} once (to Asia)`);
    await waitFor(
      5_000,
      `${d} published in both tiers`,
      () => fillsPublished(china.lines, d) === 1 && fillsPublished(asia.lines, d) === 1,
    );
  }

  // The 2.3+ plain-list form (seed 002, the swarm deployment), as another tier under Asia.
  const list = await tier(t, dir, 'list', '002-swarm.yml', (leaf) => [
    ['0.0.0.0:443', '127.0.0.1:0'],
    ['<cache-url>', 'localhost'],
    ['/run/secrets/cache.cert.pem', leaf.certPath],
    ['/run/secrets/cache.key.pem', leaf.keyPath],
    ['https://<dtr-url>:<dtr-port>', asia.url],
    ['/run/secrets/dtr.cert.pem', asia.ca.certPath],
  ]);
  const agent = agentFor(list.ca.cert, true);
  t.after(() => agent.destroy());
  const layer = img.layerDigests[1]!;
  const token = await mock.mintRedirectToken({ sub: 'alice', name: 'library/app', digest: layer });
  const r = await fetchBlob(agent, `${list.url}/v2/library/app/blobs/${layer}?token=${token}`);
  assert.equal(r.status, 200);
  assert.equal(`sha256:${r.sha256}`, layer);
  assert.equal(mock.stats().blobs[layer]?.get.served, 1, 'Asia already had it: the origin is not asked again');
  await waitFor(5_000, 'Asia served it as a hit', () =>
    asia.lines.some((l) => l.msg === 'request' && l.digest === layer && l.outcome === 'hit'),
  );
});
