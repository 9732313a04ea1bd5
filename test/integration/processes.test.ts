// A node of two serving processes (http.processes: 2), as users run it (`dtr-cache serve`):
// connections land on both; a cold blob asked through both is fetched once and every
// client gets every byte; /metrics adds both processes up; SIGHUP swaps the certificate in
// both; a process killed with -9 is replaced while the other serves; SIGTERM drains both
// and exits 0. Then: TLS sessions resume on whichever process a client reaches, and the
// per-IP connection limit holds for the node.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Client } from 'undici';
import { createTestCa, type Leaf, type TestCa } from '../../testkit/pki.js';
import { spawnCache, writeConfig, type CacheProcess } from '../helpers/cache.js';
import { waitFor, within } from '../helpers/deadline.js';
import { first, pair, pinConnections, servingPids, tlsProbe } from '../helpers/node-probe.js';
import { TestOrigin } from '../helpers/origin.js';
import { scrape } from '../helpers/prom.js';
import { smallDisk } from '../helpers/small-disk.js';

const DEBUG = '  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n';

interface Node {
  ca: TestCa;
  origin: TestOrigin;
  cache: CacheProcess;
  tlsDir: string;
  metricsUrl: string;
}

async function startNode(t: TestContext, extraHttp: string, root?: string): Promise<Node> {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  // The certificate lives where a test can replace it (SIGHUP).
  const first = await ca.issue('cache-a');
  const tlsDir = await mkdtemp(join(tmpdir(), 'dtr-cache-tls-'));
  t.after(() => rm(tlsDir, { recursive: true, force: true }));
  const live: Leaf = { ...first, certPath: join(tlsDir, 'cache.cert.pem'), keyPath: join(tlsDir, 'cache.key.pem') };
  await Promise.all([copyFile(first.certPath, live.certPath), copyFile(first.keyPath, live.keyPath)]);
  const cfg = await writeConfig({
    upstreams: [origin.url],
    cas: [ca.certPath],
    tls: live,
    extraHttp: `  processes: 2\n${extraHttp}`,
    ...(root === undefined ? {} : { root }),
  });
  t.after(() => rm(cfg.dir, { recursive: true, force: true }));
  // Two whatever REGISTRY_HTTP_PROCESSES the suite runs with (npm run test:one-process).
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const debug = cache.lines.find((l) => l['msg'] === 'debug server listening');
  return { ca, origin, cache, tlsDir, metricsUrl: `http://127.0.0.1:${Number(debug?.['port'])}/metrics` };
}

interface Transfer {
  /** Body bytes received so far. */
  received(): number;
  done: Promise<{ status: number; sha256: string; bytes: number }>;
}

/** A GET whose progress can be watched while it runs. */
function startGet(client: Client, path: string): Transfer {
  let bytes = 0;
  const done = (async () => {
    const res = await client.request({ path, method: 'GET' });
    const hash = createHash('sha256');
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { status: res.statusCode, sha256: `sha256:${hash.digest('hex')}`, bytes };
  })();
  return { received: () => bytes, done };
}

const get = (client: Client, path: string) => startGet(client, path).done;

/** Whether a TCP connection to the port on loopback is refused (nothing listens). */
function refused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

function exitOf(p: CacheProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null) resolve(p.child.exitCode);
    else p.child.once('exit', (code) => resolve(code));
  });
}

test('http.processes 2: both serve, one upstream GET, merged /metrics, SIGHUP in both, kill -9 replaced, SIGTERM drains both', async (t) => {
  const { ca, origin, cache, tlsDir, metricsUrl } = await startNode(t, DEBUG);
  const [a, b] = pair(await servingPids(cache.lines, 2));
  assert.ok(![a, b].includes(cache.child.pid ?? 0), 'the supervisor serves no request itself');

  // Connections land on both processes.
  const [onA, onB] = (await pinConnections(t, cache.url, ca.cert, cache.lines, [a, b], 2)).map(pair);
  if (onA === undefined || onB === undefined) throw new Error('two processes');

  // One cold blob asked through both processes at once: one upstream GET, every byte everywhere.
  const blob = origin.add(randomBytes(8 << 20));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = origin.gate(blob.digest, 1 << 20);
  const transfers = [startGet(onA[0], path)];
  await within(10_000, 'the origin sent the first MiB', gate.reached);
  transfers.push(startGet(onA[1], path), startGet(onB[0], path), startGet(onB[1], path));
  // Every client, on either process, is streamed bytes while the origin still holds the rest.
  await waitFor(10_000, 'every client receiving the first MiB', () => transfers.every((x) => x.received() > 0));
  gate.open();
  for (const r of await within(30_000, 'four clients of the cold blob', Promise.all(transfers.map((x) => x.done)))) {
    assert.equal(r.status, 200);
    assert.equal(r.bytes, blob.bytes.length);
    assert.equal(r.sha256, blob.digest);
  }
  assert.equal(origin.count(origin.gets, blob.digest), 1, 'one upstream GET for the node');
  // (A process's log lines reach its stdout a little after the answers.)
  const servedBlob = (pid: number) =>
    cache.lines.filter((l) => l['msg'] === 'request' && l['digest'] === blob.digest && l['pid'] === pid).length;
  await waitFor(5_000, 'the request lines', () => servedBlob(a) + servedBlob(b) === 4);
  assert.deepEqual([servedBlob(a), servedBlob(b)], [2, 2]);

  // Hits on both processes; /metrics counts them all.
  const before = (await scrape(metricsUrl)).value('dtr_cache_blob_requests_total', { outcome: 'hit' }) ?? 0;
  for (const c of [onA[0], onA[0], onA[1], onB[0]]) assert.equal((await get(c, path)).status, 200);
  const hitsBy = (pid: number) =>
    cache.lines.filter((l) => l['msg'] === 'request' && l['outcome'] === 'hit' && l['pid'] === pid).length;
  await waitFor(5_000, 'the hit lines', () => hitsBy(a) + hitsBy(b) === 4);
  assert.deepEqual([hitsBy(a), hitsBy(b)], [3, 1]);
  const m = await scrape(metricsUrl);
  assert.equal((m.value('dtr_cache_blob_requests_total', { outcome: 'hit' }) ?? 0) - before, 4, 'hits of both');
  assert.equal(m.value('dtr_cache_processes'), 2);
  assert.equal(m.value('dtr_cache_upstream_requests_total', { host: origin.url, outcome: '2xx' }), 1);

  // SIGHUP: a new certificate, read once, served by both processes.
  const next = await ca.issue('cache-b');
  await Promise.all([
    writeFile(join(tlsDir, 'cache.cert.pem'), next.cert),
    writeFile(join(tlsDir, 'cache.key.pem'), next.key),
  ]);
  const reloads = () => cache.lines.filter((l) => l['msg'] === 'reloaded TLS certificate and key set').length;
  cache.child.kill('SIGHUP');
  await waitFor(10_000, 'the node reloaded', () => reloads() === 1);
  assert.equal(cache.lines.find((l) => l['msg'] === 'reloaded TLS certificate and key set')?.['processes'], 2);
  const fingerprints = new Map<number, Set<string>>();
  for (let i = 0; i < 64 && fingerprints.size < 2; i++) {
    const p = await tlsProbe(cache.port, ca.cert, cache.lines);
    fingerprints.set(p.pid, (fingerprints.get(p.pid) ?? new Set()).add(p.fingerprint));
  }
  const want = new X509Certificate(next.cert).fingerprint256;
  assert.deepEqual(
    [...fingerprints].map(([pid, fps]) => [pid, [...fps]]).sort(),
    [
      [a, [want]],
      [b, [want]],
    ].sort(),
  );
  assert.equal((await get(onA[0], '/v2/')).status, 200, 'connections opened before the reload still work');

  // kill -9 one process: the other keeps serving; the dead one is logged and replaced.
  process.kill(a, 'SIGKILL');
  await waitFor(10_000, 'the death logged', () =>
    cache.lines.some(
      // Logged by the supervisor (its own pid, as every line has) about the serving process.
      (l) =>
        l['msg'] === 'serving process exited' &&
        l['servingPid'] === a &&
        l['pid'] === cache.child.pid &&
        l['signal'] === 'SIGKILL',
    ),
  );
  assert.equal((await get(onB[0], path)).sha256, blob.digest, 'the other process serves on');
  const c = first((await servingPids(cache.lines, 2, [a])).filter((p) => p !== b));
  const [onB2, onC] = (await pinConnections(t, cache.url, ca.cert, cache.lines, [b, c], 1)).map(first);
  if (onB2 === undefined || onC === undefined) throw new Error('two processes');
  assert.equal((await get(onC, path)).sha256, blob.digest, 'the replacement serves hits');
  const afterKill = await scrape(metricsUrl);
  assert.equal(afterKill.value('dtr_cache_process_restarts_total'), 1);
  // The node's counters never go down: the dead process's hits, as of its last answer, stay
  // counted, beside the two hits since (one each on the survivor and the replacement).
  assert.equal(
    afterKill.value('dtr_cache_blob_requests_total', { outcome: 'hit' }),
    (m.value('dtr_cache_blob_requests_total', { outcome: 'hit' }) ?? 0) + 2,
  );

  // SIGTERM: a transfer in flight on each process finishes; both stop; the node exits 0.
  const slow = origin.add(randomBytes(4 << 20));
  const slowPath = `/v2/team/app/blobs/${slow.digest}?token=${await origin.mint('team/app', slow.digest)}`;
  const slowGate = origin.gate(slow.digest, 1 << 20);
  const slowTransfers = [startGet(onB2, slowPath)];
  await within(10_000, 'the origin sent the first MiB', slowGate.reached);
  slowTransfers.push(startGet(onC, slowPath));
  await waitFor(10_000, 'both processes streaming the slow blob', () => slowTransfers.every((x) => x.received() > 0));
  const exited = exitOf(cache);
  cache.child.kill('SIGTERM');
  await waitFor(10_000, 'new connections refused', async () => (await refused(cache.port)) || undefined);
  slowGate.open();
  for (const r of await within(20_000, 'the transfers in flight', Promise.all(slowTransfers.map((x) => x.done)))) {
    assert.equal(r.status, 200);
    assert.equal(r.sha256, slow.digest);
  }
  assert.equal(await within(30_000, 'the node exits', exited), 0);
  for (const pid of [b, c]) assert.ok(cache.lines.some((l) => l['pid'] === pid && l['msg'] === 'stopped'));
  assert.ok(cache.lines.some((l) => l['pid'] === cache.child.pid && l['msg'] === 'stopped'));
});

test('a stampede on both processes: 32 clients of a cold blob, one upstream GET, every byte to each, streamed as it arrives', async (t) => {
  const { ca, origin, cache } = await startNode(t, '');
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const [onA, onB] = await pinConnections(t, cache.url, ca.cert, cache.lines, [a, b], 16);
  if (onA === undefined || onB === undefined) throw new Error('two processes');
  const blob = origin.add(randomBytes(32 << 20));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = origin.gate(blob.digest, 4 << 20);
  const transfers = [startGet(first(onA), path)];
  await within(10_000, 'the origin sent the first 4 MiB', gate.reached);
  for (const c of [...onA.slice(1), ...onB]) transfers.push(startGet(c, path));
  await waitFor(20_000, 'all 32 clients receiving', () => transfers.every((x) => x.received() > 0));
  gate.open();
  const results = await within(120_000, '32 clients', Promise.all(transfers.map((x) => x.done)));
  assert.deepEqual(
    results.filter((r) => r.status !== 200 || r.bytes !== blob.bytes.length || r.sha256 !== blob.digest),
    [],
  );
  assert.equal(origin.count(origin.gets, blob.digest), 1, 'one upstream GET for the node');
  const served = (pid: number) =>
    cache.lines.filter((l) => l['msg'] === 'request' && l['digest'] === blob.digest && l['pid'] === pid).length;
  await waitFor(5_000, 'the request lines', () => served(a) + served(b) === 32);
  assert.deepEqual([served(a), served(b)], [16, 16]);
});

// The writer's own client has a token about to expire; a client on the other process, which
// follows the writer's spool, has a fresh one. The transfer breaks after the first token
// expired: the writer's retry must carry the follower's token, and both clients finish.
test("a retry after the writer's clients' tokens expired uses a fresh token from the other process's clients", async (t) => {
  const { ca, origin, cache } = await startNode(t, '');
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const [onA, onB] = (await pinConnections(t, cache.url, ca.cert, cache.lines, [a, b], 1)).map(first);
  if (onA === undefined || onB === undefined) throw new Error('two processes');
  const blob = origin.add(randomBytes(6 << 20));
  // Good for about three more seconds, with the 60 s of leeway the cache and the origin allow.
  const expiring = await origin.mint('team/app', blob.digest, { exp: Math.floor(Date.now() / 1000) - 57 });
  const fresh = await origin.mint('team/app', blob.digest, { ttlSec: 600 });
  const gate = origin.gate(blob.digest, 1 << 20);
  const atA = startGet(onA, `/v2/team/app/blobs/${blob.digest}?token=${expiring}`);
  await within(10_000, 'the origin sent the first MiB', gate.reached);
  const atB = startGet(onB, `/v2/team/app/blobs/${blob.digest}?token=${fresh}`);
  await waitFor(10_000, 'the follower streaming', () => atB.received() > 0);
  const expired = (JSON.parse(Buffer.from(expiring.split('.')[1] ?? '', 'base64url').toString()) as { exp: number })
    .exp;
  await waitFor(10_000, "the writer's token expired, leeway included", () => Date.now() / 1000 > expired + 61);
  gate.cut();
  const [ra, rb] = await within(30_000, 'both clients', Promise.all([atA.done, atB.done]));
  for (const r of [ra, rb]) {
    assert.equal(r.status, 200);
    assert.equal(r.sha256, blob.digest);
  }
  const gets = origin.seen.filter((r) => r.method === 'GET' && r.path.endsWith(blob.digest));
  assert.equal(gets.length, 2, 'the first GET, then one resume');
  assert.equal(gets[0]?.headers.authorization, `Bearer ${expiring}`);
  assert.equal(gets[1]?.headers.authorization, `Bearer ${fresh}`, "the resume carried the follower's token");
  assert.equal(gets[1]?.headers.range, `bytes=${1 << 20}-`);
});

test('kill -9 of the supervisor: its serving processes say why and stop at once; the port is free again', async (t) => {
  const { cache } = await startNode(t, '');
  const pids = await servingPids(cache.lines, 2);
  cache.child.kill('SIGKILL');
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitFor(10_000, 'both serving processes gone', () => pids.every((p) => !alive(p)));
  await waitFor(5_000, 'each said why', () =>
    pids.every((pid) =>
      cache.lines.some((l) => l['pid'] === pid && l['msg'] === 'the supervisor is gone: stopping at once'),
    ),
  );
  assert.ok(await refused(cache.port), 'nothing listens on the port');
});

// A fill that hits a full disk streams through memory without caching; in one process every
// client joins that fill. Here the writer is in one process and two clients are on the
// other, which follows the writer's spool: when the writer lets go of the spool, the
// follower's clients are reset instead of being served (a second upstream GET would do).
test('disk full on a node of two processes: the clients of both processes get every byte', async (t) => {
  const mnt = await smallDisk(t);
  if (mnt === null) return;
  const { ca, origin, cache } = await startNode(t, '', join(mnt, 'registry'));
  const [a, b] = pair(await servingPids(cache.lines, 2));
  const [onA, onB] = (await pinConnections(t, cache.url, ca.cert, cache.lines, [a, b], 2)).map(pair);
  if (onA === undefined || onB === undefined) throw new Error('two processes');
  // Larger than the whole disk.
  const blob = origin.add(randomBytes(20 << 20));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const gate = origin.gate(blob.digest, 1 << 20);
  const transfers = [startGet(onA[0], path)];
  await within(10_000, 'the origin sent the first MiB', gate.reached);
  transfers.push(startGet(onA[1], path), startGet(onB[0], path), startGet(onB[1], path));
  await waitFor(10_000, 'every client receiving', () => transfers.every((x) => x.received() > 0));
  gate.open();
  const results = await within(
    60_000,
    'four clients',
    Promise.all(transfers.map((x) => x.done.catch((e: Error) => e))),
  );
  assert.deepEqual(
    results.map((r) => (r instanceof Error ? r.message : [r.status, r.bytes, r.sha256 === blob.digest])),
    Array.from({ length: 4 }, () => [200, blob.bytes.length, true]),
  );
});

test('TLS sessions resume whichever process the client reaches (shared ticket keys)', async (t) => {
  const { ca, cache } = await startNode(t, '');
  const pids = await servingPids(cache.lines, 2);
  let session = (await tlsProbe(cache.port, ca.cert, cache.lines)).session;
  const resumedOn = new Set<number>();
  for (let i = 0; i < 64 && resumedOn.size < 2; i++) {
    const p = await tlsProbe(cache.port, ca.cert, cache.lines, session);
    assert.equal(p.status, 401);
    assert.equal(p.reused, true, `connection ${i} (process ${p.pid}) resumed its session`);
    resumedOn.add(p.pid);
    session = p.session ?? session;
  }
  assert.deepEqual([...resumedOn].sort(), [...pids].sort());
});

/** A TLS connection that got an answer to a request and stays open; false when it was closed unanswered. */
function holdConnection(t: TestContext, port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port, ca, ALPNProtocols: ['http/1.1'] });
    t.after(() => s.destroy());
    s.once('secureConnect', () => s.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    s.once('data', () => resolve(true));
    s.once('error', () => resolve(false));
    s.once('close', () => resolve(false));
  });
}

/** A new TCP connection that the server closes (it sends nothing: an admitted one would stay open). */
function closedByServer(t: TestContext, port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    t.after(() => s.destroy());
    s.on('error', () => undefined);
    s.once('close', () => resolve());
  });
}

test('the per-IP connection limit holds for the node, not per process', async (t) => {
  const { ca, cache, metricsUrl } = await startNode(t, `${DEBUG}  limits:\n    maxconnectionsperip: 4\n`);
  const pids = await servingPids(cache.lines, 2);
  // One connection held on each process, then two more anywhere: four for the node, at
  // most three on either process. (A connection closed meanwhile may take a moment to be
  // counted out, so a refused attempt here is tried again.)
  await pinConnections(t, cache.url, ca.cert, cache.lines, pids, 1);
  const held: boolean[] = [];
  for (let i = 0; i < 20 && held.length < 2; i++) if (await holdConnection(t, cache.port, ca.cert)) held.push(true);
  assert.equal(held.length, 2);
  const refusedBefore = (await scrape(metricsUrl)).value('dtr_cache_refused_total', { reason: 'per-ip' }) ?? 0;
  // Each process is under the limit on its own; the node is at it: every new connection is
  // closed by the server, whichever process it reaches (an admitted one would stay open).
  await within(
    10_000,
    'six connections over the node limit closed',
    Promise.all(Array.from({ length: 6 }, () => closedByServer(t, cache.port))),
  );
  const refused = (await scrape(metricsUrl)).value('dtr_cache_refused_total', { reason: 'per-ip' }) ?? 0;
  assert.equal(refused - refusedBefore, 6);
});
