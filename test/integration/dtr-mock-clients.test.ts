// The DTR mock as a tool, with real clients: plain HTTP with registry-client against an open
// registry, the command line (bench/dtr-mock/main.ts), the OCI image generator of testkit,
// and skopeo pushing and pulling, with and without a cache redirect. Without skopeo that test
// is skipped, except in CI (CI=true), where it fails.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { standInCache } from '../helpers/stand-in-cache.js';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { startDtrMock } from '../../bench/dtr-mock/index.js';
import { createOciImage } from '../../testkit/image.js';
import { RegistryClient } from '../../testkit/registry-client.js';
import { DEADLINE, USERS, ca, leaf, mock, sha256, tmp } from '../helpers/dtr-mock.js';
import { basic, http, selectCache } from '../helpers/dtr-mock-http.js';

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
  const cacheUrl = await standInCache(t, m, cacheLeaf, {
    onRequest: (req) => {
      if (req.headers.authorization !== undefined) crossHostAuth++;
    },
    onServed: () => served++,
  });
  await selectCache(m, 'carol', 'near', cacheUrl);
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
