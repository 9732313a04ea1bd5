// `npm run demo`: the whole flow on one machine, with nothing to set up. A DTR mock
// playing a far-away origin and a cache node (both their own processes, TLS with a CA
// made for the run), an image pushed, the cache registered and selected through the
// origin's API, then two pulls through the 307 redirect: the first fills the cache, the
// second is served by it. Prints what happened and exits 0, or non-zero with the reason.
//   node dist/bench/demo.js [--client auto|skopeo|registry-client] [--json]
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnCacheProcess, writeCacheConfig } from '../testkit/cache-process.js';
import { DtrApi, type Credentials } from '../testkit/dtr-api.js';
import { createOciImage, type OciImage } from '../testkit/image.js';
import { badBlobs, readLayoutImage } from '../testkit/oci-layout.js';
import { createTestCa } from '../testkit/pki.js';
import { RegistryClient } from '../testkit/registry-client.js';
import { startService, type ServiceProcess } from '../testkit/service-process.js';
import { formatBytes, formatMs, textTable } from './lib/text-table.js';
import { caCertDir, hasTool, runTool } from '../testkit/tools.js';
import { stackOf } from '../src/errors/inspect.js';

const MiB = 1024 * 1024;
const REPO = 'demo/app';
const TAG = 'v1';
const LAYERS = [24 * MiB, 12 * MiB, 4 * MiB, 512 * 1024];
/** A far-away DTR: added latency per request and a bandwidth cap per connection. */
const LATENCY_MS = 40;
const BANDWIDTH = 12 * MiB;
const MOCK_MAIN = new URL('./dtr-mock/main.js', import.meta.url).pathname;

type Client = 'skopeo' | 'registry-client';

class DemoFailure extends Error {}

export interface PullReport {
  pull: number;
  client: Client;
  ms: number;
  /** Config + layer bytes the client received. */
  bytes: number;
  blobs: number;
  /** Blob GETs the origin answered with a 307 to the cache. */
  redirected: number;
  /** Blob GETs the origin served with bytes (to the cache), and how many bytes. */
  originServed: number;
  originBytes: number;
  /** Outcomes of the cache's blob GETs, from its request log. */
  misses: number;
  hits: number;
  /** Fills the cache verified and published (one upstream fetch each). */
  fills: number;
}

interface Running {
  work: string;
  certDir: string;
  caPem: string;
  mock: ServiceProcess;
  cache: ServiceProcess;
  api: DtrApi;
  user: Credentials;
  image: OciImage;
}

const out = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

async function step<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  process.stdout.write(`  ${label} … `);
  const v = await fn();
  out(`done (${formatMs(performance.now() - t0)})`);
  return v;
}

async function pushImage(r: Omit<Running, 'image'>, image: OciImage, client: Client): Promise<void> {
  if (client === 'skopeo') {
    const res = await runTool('skopeo', [
      '--insecure-policy',
      'copy',
      '--preserve-digests',
      '--dest-cert-dir',
      r.certDir,
      '--dest-creds',
      `${r.user.user}:${r.user.password}`,
      `oci:${image.dir}:${TAG}`,
      `docker://localhost:${r.mock.port}/${REPO}:${TAG}`,
    ]);
    if (res.code !== 0) throw new DemoFailure(`skopeo push failed:\n${res.out}`);
    return;
  }
  const c = new RegistryClient({ baseUrl: r.mock.url, ca: r.caPem, username: r.user.user, password: r.user.password });
  try {
    await c.pushImage(image.dir, REPO, TAG);
  } finally {
    await c.close();
  }
}

async function pullImage(r: Running, client: Client, dest: string): Promise<void> {
  if (client === 'skopeo') {
    // --preserve-digests: store the layers as they came, so digests can be compared.
    const res = await runTool('skopeo', [
      '--insecure-policy',
      'copy',
      '--preserve-digests',
      '--src-cert-dir',
      r.certDir,
      '--src-creds',
      `${r.user.user}:${r.user.password}`,
      `docker://localhost:${r.mock.port}/${REPO}:${TAG}`,
      `oci:${dest}:${TAG}`,
    ]);
    if (res.code !== 0) throw new DemoFailure(`skopeo pull failed:\n${res.out}`);
    return;
  }
  const c = new RegistryClient({ baseUrl: r.mock.url, ca: r.caPem, username: r.user.user, password: r.user.password });
  try {
    await c.pullImage(REPO, TAG, dest);
  } finally {
    await c.close();
  }
}

const blobGets = (lines: Array<Record<string, unknown>>, digest: string): Array<Record<string, unknown>> =>
  lines.filter(
    (l) => l['msg'] === 'request' && l['route'] === 'blob' && l['method'] === 'GET' && l['digest'] === digest,
  );
const published = (lines: Array<Record<string, unknown>>, digest: string): boolean =>
  lines.some((l) => l['msg'] === 'fill published' && l['digest'] === digest);

/** The cache logs a request when it ends, a moment after the client has its bytes: wait for them. */
async function cacheLinesSince(
  cache: ServiceProcess,
  from: number,
  blobs: string[],
): Promise<Array<Record<string, unknown>>> {
  const end = Date.now() + 5000;
  for (;;) {
    const lines = cache.lines.slice(from);
    const complete = blobs.every((d) => {
      const gets = blobGets(lines, d);
      return gets.length > 0 && (!gets.some((l) => l['outcome'] === 'miss') || published(lines, d));
    });
    if (complete || Date.now() > end) return lines;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function pullOnce(r: Running, n: number, client: Client): Promise<PullReport> {
  const blobs = [r.image.configDigest, ...r.image.layerDigests];
  const before = await r.api.mockStats();
  const from = r.cache.lines.length;
  const dest = join(r.work, `pull-${n}`);
  const t0 = performance.now();
  await pullImage(r, client, dest);
  const ms = performance.now() - t0;

  const got = await readLayoutImage(dest, TAG);
  if (got.manifestDigest !== r.image.manifestDigest)
    throw new DemoFailure(`pull ${n}: manifest ${got.manifestDigest}, pushed ${r.image.manifestDigest}`);
  const gotBlobs = [got.configDigest, ...got.layerDigests];
  if (gotBlobs.join() !== blobs.join())
    throw new DemoFailure(`pull ${n}: blobs ${gotBlobs.join(', ')} differ from the pushed ${blobs.join(', ')}`);
  const bad = await badBlobs(dest, blobs);
  if (bad.length > 0) throw new DemoFailure(`pull ${n}: blob files do not match their digests: ${bad.join(', ')}`);

  const lines = await cacheLinesSince(r.cache, from, blobs);
  const after = await r.api.mockStats();
  const delta = (d: string, f: (s: NonNullable<(typeof after.blobs)[string]>) => number): number =>
    (after.blobs[d] === undefined ? 0 : f(after.blobs[d])) - (before.blobs[d] === undefined ? 0 : f(before.blobs[d]));
  const sum = (f: (d: string) => number): number => blobs.reduce((a, d) => a + f(d), 0);
  const outcomes = blobs.flatMap((d) => blobGets(lines, d).map((l) => l['outcome']));
  return {
    pull: n,
    client,
    ms,
    bytes: got.blobBytes,
    blobs: blobs.length,
    redirected: sum((d) => delta(d, (s) => s.get.redirected)),
    originServed: sum((d) => delta(d, (s) => s.get.served)),
    originBytes: sum((d) => delta(d, (s) => s.bytesSent)),
    misses: outcomes.filter((o) => o === 'miss' || o === 'joined').length,
    hits: outcomes.filter((o) => o === 'hit').length,
    fills: blobs.filter((d) => published(lines, d)).length,
  };
}

/** What the demo promises; a broken promise is a failure, not a footnote. */
function check(pulls: PullReport[]): void {
  const [first, second] = pulls;
  if (first === undefined || second === undefined) throw new DemoFailure('expected two pulls');
  for (const p of pulls) {
    if (p.redirected !== p.blobs)
      throw new DemoFailure(
        `pull ${p.pull}: the origin redirected ${p.redirected} of ${p.blobs} blob GETs to the cache`,
      );
  }
  if (first.fills !== first.blobs || first.originServed !== first.blobs) {
    throw new DemoFailure(
      `pull 1: the cache published ${first.fills} fills and the origin served ${first.originServed} blobs; expected ${first.blobs} each`,
    );
  }
  if (second.originServed !== 0 || second.hits !== second.blobs) {
    throw new DemoFailure(
      `pull 2 was not served wholly by the cache: ${second.hits} hits of ${second.blobs}, origin served ${second.originServed} blobs`,
    );
  }
}

function report(pulls: PullReport[]): void {
  out(
    textTable(
      ['pull', 'client', 'time', 'bytes', 'redirected (307)', 'cache misses', 'cache hits', 'origin -> cache'],
      pulls.map((p) => [
        String(p.pull),
        p.client,
        formatMs(p.ms),
        formatBytes(p.bytes),
        `${p.redirected}/${p.blobs}`,
        String(p.misses),
        String(p.hits),
        `${p.originServed} blobs, ${formatBytes(p.originBytes)}`,
      ]),
    ),
  );
  const [first, second] = pulls;
  if (first === undefined || second === undefined) return;
  out();
  out(
    `The first pull filled the cache: ${first.fills} upstream fetches at the origin, ${formatBytes(first.originBytes)}.`,
  );
  out(
    `The second pull came from the cache alone, ${(first.ms / second.ms).toFixed(1)}x faster; the origin only answered manifests and redirects.`,
  );
}

async function run(work: string, client: Client, json: boolean, stops: Array<() => Promise<unknown>>): Promise<void> {
  out(`dtr-cache demo (client: ${client}; work dir ${work})`);
  const user: Credentials = { user: 'demo', password: randomBytes(9).toString('base64url') };
  const admin: Credentials = { user: 'admin', password: randomBytes(9).toString('base64url') };
  const { ca, mockLeaf, cacheLeaf } = await step('making a CA and certificates for localhost', async () => {
    const ca = await createTestCa('dtr-cache demo CA', await mkdtemp(join(work, 'pki-')));
    return { ca, mockLeaf: await ca.issue('dtr-mock'), cacheLeaf: await ca.issue('dtr-cache') };
  });
  const certDir = await caCertDir(ca.certPath, join(work, 'certs'));
  const usersFile = join(work, 'users.json');
  await writeFile(
    usersFile,
    JSON.stringify({ [user.user]: { password: user.password, repos: { [REPO]: ['pull', 'push'] } } }),
  );

  const mock = await step('starting the DTR mock', async () => {
    const m = await startService({
      name: 'dtr-mock',
      command: process.execPath,
      args: [
        MOCK_MAIN,
        '--port',
        '0',
        '--cert',
        mockLeaf.certPath,
        '--key',
        mockLeaf.keyPath,
        '--storage',
        join(work, 'origin'),
        '--users',
        usersFile,
        '--admin',
        `${admin.user}:${admin.password}`,
      ],
      ready: (l) => (l['event'] === 'listening' ? { port: Number(l['port']), url: String(l['url']) } : undefined),
    });
    stops.push(() => m.stop());
    return m;
  });
  const api = new DtrApi(mock.url, ca.cert);
  stops.push(() => api.close());
  const cache = await step('starting the cache (dtr-cache serve)', async () => {
    const cfg = await writeCacheConfig(join(work, 'cache'), {
      upstreams: [mock.url],
      cas: [ca.certPath],
      tls: cacheLeaf,
      logLevel: 'info',
    });
    const c = await spawnCacheProcess(cfg.path);
    stops.push(() => c.stop());
    return c;
  });
  out(`    origin ${mock.url}, cache ${cache.url}`);

  const image = await step(`generating ${REPO}:${TAG} (${LAYERS.length} layers)`, () =>
    createOciImage(join(work, 'image'), { layers: LAYERS, tag: TAG }),
  );
  const base = { work, certDir, caPem: ca.cert, mock, cache, api, user };
  await step(`pushing it to the origin with ${client}`, () => pushImage(base, image, client));
  await step('registering the cache with the origin and selecting it for the user', async () => {
    await api.registerContentCache(admin, 'demo-cache', cache.url);
    await api.selectContentCache(user, user.user, 'demo-cache');
  });
  await step(
    `making the origin far away (+${LATENCY_MS} ms per request, ${formatBytes(BANDWIDTH)}/s per connection)`,
    () => api.configureMock(admin, { latencyMs: LATENCY_MS, bandwidth: BANDWIDTH }),
  );

  const r: Running = { ...base, image };
  const pulls: PullReport[] = [];
  for (const n of [1, 2]) pulls.push(await step(`pull ${n} through the redirect`, () => pullOnce(r, n, client)));
  out();
  out(
    `image ${REPO}:${TAG} ${image.manifestDigest.slice(0, 19)}…: config + ${image.layerDigests.length} layers, ${formatBytes(image.sizes.reduce((a, b) => a + b, 0) + image.configSize)}; both pulls verified against the pushed digests`,
  );
  out();
  report(pulls);
  check(pulls);
  if (json) out(JSON.stringify({ ok: true, image: { manifest: image.manifestDigest, blobs: pulls[0]?.blobs }, pulls }));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { client: { type: 'string', default: 'auto' }, json: { type: 'boolean', default: false } },
  });
  if (!['auto', 'skopeo', 'registry-client'].includes(values.client))
    throw new DemoFailure('--client is auto, skopeo or registry-client');
  const client: Client =
    values.client === 'auto' ? ((await hasTool('skopeo')) ? 'skopeo' : 'registry-client') : (values.client as Client);
  if (client === 'skopeo' && !(await hasTool('skopeo')))
    throw new DemoFailure('skopeo is not installed (apt-get install -y skopeo), or use --client registry-client');
  const work = await mkdtemp(join(tmpdir(), 'dtr-cache-demo-'));
  const stops: Array<() => Promise<unknown>> = [];
  const cleanup = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
    await rm(work, { recursive: true, force: true });
  };
  const interrupted = (signal: NodeJS.Signals): void => {
    out(`\n${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await run(work, client, values.json, stops);
    return 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const msg = err instanceof DemoFailure ? err.message : stackOf(err);
    process.stderr.write(`\ndemo failed: ${msg}\n`);
    process.exitCode = 1;
  },
);
