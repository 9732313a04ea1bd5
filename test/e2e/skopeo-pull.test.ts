// skopeo, a real registry client, end to end: push a multi-layer image to the
// DTR mock, register a cache and select it through the origin's API, pull through the
// 307 redirect (docs/protocol.md §1), then pull again from the cache alone; and a user with
// no pull right gets nothing from either. Both servers on TLS with a fresh test CA.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { createOciImage } from '../../testkit/image.js';
import { badBlobs, readLayoutImage } from '../../testkit/oci-layout.js';
import { RegistryClient } from '../../testkit/registry-client.js';
import { runTool } from '../../testkit/tools.js';
import { waitFor } from '../helpers/deadline.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { fillsPublished, originGets, outcomes, requireTool, startE2eStack } from './e2e-stack.js';

const MiB = 1024 * 1024;
const REPO = 'library/app';

test('skopeo pulls every blob through the cache, then from the cache alone; no pull right, no bytes', async (t) => {
  if (!(await requireTool(t, 'skopeo', true))) return;
  const s = await startE2eStack(
    t,
    'skopeo',
    {
      alice: { password: 'alice-pw', repos: { [REPO]: ['pull', 'push'] } },
      // eve may pull another repository only; she has the cache selected too, so a
      // wrong redirect would show.
      eve: { password: 'eve-pw', repos: { 'other/app': ['pull'] } },
    },
    ['alice', 'eve'],
  );
  // --preserve-digests: skopeo would otherwise gzip the uncompressed layers as it writes
  // them (to the registry, or to the oci: layout), and digests could not be compared.
  const skopeo = (...args: string[]) => runTool('skopeo', ['--insecure-policy', ...args], 120_000);
  const pull = (creds: string, dest: string) =>
    skopeo('copy', '--preserve-digests', '--src-cert-dir', s.certDir, '--src-creds', creds, ref, `oci:${dest}:v1`);
  const ref = `docker://localhost:${s.mock.port}/${REPO}:v1`;

  // 1–2. A 3-layer image, one layer of 64 MiB, pushed with skopeo.
  const img = await createOciImage(join(s.dir, 'img'), {
    layers: [64 * MiB, 3 * MiB, 200_000],
    seed: 'e2e-skopeo',
    tag: 'v1',
  });
  assert.ok(img.sizes[0]! >= 64 * MiB);
  const push = await skopeo(
    'copy',
    '--preserve-digests',
    '--dest-cert-dir',
    s.certDir,
    '--dest-creds',
    'alice:alice-pw',
    `oci:${img.dir}:v1`,
    ref,
  );
  assert.equal(push.code, 0, push.out);
  const blobs = [img.configDigest, ...img.layerDigests];
  s.mock.resetStats();

  // 4. First pull: each blob GET at the origin answers 307 to the cache, which fills once.
  const out1 = join(s.dir, 'out1');
  const pull1 = await pull('alice:alice-pw', out1);
  assert.equal(pull1.code, 0, pull1.out);
  const got1 = await readLayoutImage(out1, 'v1');
  assert.equal(got1.manifestDigest, img.manifestDigest);
  assert.equal(got1.configDigest, img.configDigest);
  assert.deepEqual(got1.layerDigests, img.layerDigests);
  assert.deepEqual(await badBlobs(out1, blobs), []);

  const after1 = originGets(s.mock, blobs);
  t.diagnostic(
    `pull 1 (through the cache) ${Math.round(pull1.ms)} ms; origin GETs ${JSON.stringify([...after1.values()])}`,
  );
  for (const d of blobs) {
    assert.equal(after1.get(d)!.redirected, 1, `origin redirected ${d} once`);
    assert.equal(after1.get(d)!.served, 1, `origin served ${d} once, to the cache`);
  }
  // Only the cache fetched bytes: every served blob GET at the origin carried a redirect token.
  const served = s.mock.stats().log.filter((e) => e.method === 'GET' && e.path.includes('/blobs/') && e.status === 200);
  assert.equal(served.length, blobs.length);
  const lines1 = await waitFor(10_000, 'a published fill per blob in the cache log', async () => {
    const lines = await s.cache.logLines();
    return blobs.every((d) => fillsPublished(lines, d) === 1) ? lines : undefined;
  });
  for (const d of blobs) {
    assert.deepEqual(
      outcomes(lines1, d).filter((o) => o !== 'hit'),
      ['miss'],
      `one miss for ${d}`,
    );
  }
  const fetchedBytes = s.mock.stats().totals.bytesSent;
  assert.ok(fetchedBytes >= img.sizes.reduce((a, b) => a + b, 0), `origin sent ${fetchedBytes} bytes`);

  // 5. Second pull into a new destination: wholly from the cache.
  const seen = lines1.length;
  const out2 = join(s.dir, 'out2');
  const pull2 = await pull('alice:alice-pw', out2);
  assert.equal(pull2.code, 0, pull2.out);
  const got2 = await readLayoutImage(out2, 'v1');
  assert.equal(got2.manifestDigest, img.manifestDigest);
  assert.deepEqual([got2.configDigest, ...got2.layerDigests], blobs);
  assert.deepEqual(await badBlobs(out2, blobs), []);
  const after2 = originGets(s.mock, blobs);
  t.diagnostic(`pull 2 (cache hits) ${Math.round(pull2.ms)} ms; origin GETs ${JSON.stringify([...after2.values()])}`);
  for (const d of blobs) {
    assert.equal(after2.get(d)!.served, 1, `origin served ${d} no more`);
    assert.equal(after2.get(d)!.redirected, 2, `second pull of ${d} was redirected`);
  }
  assert.equal(s.mock.stats().totals.bytesSent, fetchedBytes);
  const lines2 = await waitFor(10_000, 'a hit per blob in the cache log', async () => {
    const lines = (await s.cache.logLines()).slice(seen);
    return blobs.every((d) => outcomes(lines, d).includes('hit')) ? lines : undefined;
  });
  for (const d of blobs) {
    assert.ok(
      outcomes(lines2, d).every((o) => o === 'hit'),
      `only hits for ${d}: ${outcomes(lines2, d).join(',')}`,
    );
    assert.equal(fillsPublished(lines2, d), 0);
  }

  // 6. eve has no pull right on the repository: nothing from the mock, nothing from the cache.
  const before = s.mock.stats().totals;
  const linesBefore = (await s.cache.logLines()).length;
  const denied = await pull('eve:eve-pw', join(s.dir, 'eve'));
  assert.notEqual(denied.code, 0, 'skopeo must fail for eve');
  assert.match(denied.out, /unauthori[sz]ed|denied|401|403/i, denied.out);
  // A blob GET straight at the origin with eve's own registry token: refused, not redirected.
  const eve = new RegistryClient({ baseUrl: s.mock.url, ca: s.ca.cert, username: 'eve', password: 'eve-pw' });
  t.after(() => eve.close());
  await assert.rejects(
    eve.fetchBlob(REPO, { digest: img.layerDigests[1]! }, join(s.dir, 'eve-blob')),
    (err: Error & { status?: number }) => err.status === 401 || err.status === 403,
  );
  const after = s.mock.stats().totals;
  assert.equal(after.blobGet.redirected, before.blobGet.redirected, 'no redirect issued for eve');
  assert.equal(after.blobGet.served, before.blobGet.served);
  assert.ok(!s.mock.stats().log.some((e) => e.user === 'eve' && e.status === 307));

  // At the cache: a genuine redirect token, but for the repository eve may pull.
  const wrongRepo = await s.mock.mintRedirectToken({ sub: 'eve', name: 'other/app', digest: img.layerDigests[1]! });
  const noPull = await s.mock.mintRedirectToken({
    sub: 'eve',
    name: REPO,
    digest: img.layerDigests[1]!,
    actions: ['push'],
  });
  const agent = agentFor(s.ca.cert, true);
  t.after(() => agent.close());
  // A token naming another repository is not this URL's (401); a push-only one is refused (403).
  const cases = [
    ['a token for other/app', wrongRepo, [401]],
    ['a push-only token', noPull, [403]],
    ['no token', undefined, [401]],
  ] as const;
  for (const [what, token, statuses] of cases) {
    const res = await fetchBlob(
      agent,
      `${s.cache.url}/v2/${REPO}/blobs/${img.layerDigests[1]!}${token === undefined ? '' : `?token=${token}`}`,
    );
    assert.ok((statuses as readonly number[]).includes(res.status), `cache answered ${res.status} with ${what}`);
    const code = (JSON.parse(res.body.toString()) as { errors: { code: string }[] }).errors[0]?.code;
    assert.equal(code, res.status === 401 ? 'UNAUTHORIZED' : 'DENIED', what);
  }
  const linesAfter = (await s.cache.logLines()).slice(linesBefore);
  assert.ok(
    !linesAfter.some((l) => l['outcome'] === 'hit' || l['outcome'] === 'miss' || l['msg'] === 'fill published'),
    'the cache served nothing to eve',
  );
  assert.equal(s.mock.stats().totals.blobGet.served, before.blobGet.served, 'the cache fetched nothing for eve');
});
