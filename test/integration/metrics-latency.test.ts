// The latency histograms of /metrics: how long requests take by route and method, and how
// long a blob's client waits for its first body byte by outcome. Real requests through a
// real cache (one process, then a node of two whose /metrics adds both up), then a scrape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnCache } from '../helpers/cache.js';
import { waitFor, within } from '../helpers/deadline.js';
import { fetchBlob } from '../helpers/http.js';
import { pinConnections, servingPids } from '../helpers/node-probe.js';
import { scrape, type Histogram, type Scrape } from '../helpers/prom.js';
import { originConfig, startStack } from '../helpers/stack.js';

const DEBUG = '  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n';
const DURATION = 'dtr_cache_request_duration_seconds';
const FIRST_BYTE = 'dtr_cache_blob_first_byte_seconds';

/** A histogram series as Prometheus expects it: cumulative buckets, +Inf last and equal to the count. */
function assertWellFormed(h: Histogram, what: string): void {
  assert.ok(h.buckets.length > 1, `${what}: buckets exposed`);
  h.buckets.reduce(([lePrev, nPrev], [le, n]) => {
    assert.ok(le > lePrev, `${what}: bounds ascend`);
    assert.ok(n >= nPrev, `${what}: counts are cumulative (le=${le}: ${n} < ${nPrev})`);
    return [le, n];
  });
  assert.deepEqual(h.buckets.at(-1), [Infinity, h.count], `${what}: the +Inf bucket is the count`);
  assert.ok((h.sum ?? 0) > 0, `${what}: time was observed`);
}

const blobGets = (m: Scrape) => m.histogram(DURATION, { route: 'blob', method: 'GET' });

test('request duration by route and method; first byte by outcome: hit, miss, joined (HEAD has none)', async (t) => {
  const s = await startStack(t, { extraHttp: DEBUG });
  const metricsUrl = `${s.cache.debugUrl!}/metrics`;
  const blob = s.origin.add(randomBytes(200_000));
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));

  // A miss held at the origin after its first bytes, and a client that joins it.
  const gate = s.origin.gate(blob.digest, 50_000);
  const miss = fetchBlob(s.h2, url);
  await within(10_000, 'the origin sent the first bytes', gate.reached);
  const joined = fetchBlob(s.h1, url);
  await waitFor(
    10_000,
    'two clients on the fill',
    async () => (await scrape(metricsUrl)).value('dtr_cache_fill_waiters') === 2,
  );
  gate.open();
  for (const r of await within(10_000, 'the collapsed transfers', Promise.all([miss, joined])))
    assert.equal(r.status, 200);
  await waitFor(10_000, 'the fill settled', () => s.cache.ctx.inflight.size === 0);
  for (const agent of [s.h1, s.h2]) assert.equal((await fetchBlob(agent, url)).status, 200);
  assert.equal((await fetchBlob(s.h1, url, { method: 'HEAD' })).status, 200);
  assert.equal((await fetchBlob(s.h1, `${s.cache.url}/nowhere`)).status, 404);
  assert.equal((await fetchBlob(s.h2, `${s.cache.url}/v2/`)).status, 200);

  const m = await waitFor(10_000, 'every request observed', async () => {
    const x = await scrape(metricsUrl);
    return x.value(`${DURATION}_count`, { route: 'base', method: 'GET' }) === 1 ? x : undefined;
  });
  const gets = blobGets(m);
  assert.equal(gets.count, 4, 'the miss, the joined client and two hits');
  assertWellFormed(gets, 'blob GET');
  assert.deepEqual([gets.buckets[0]?.[0], gets.buckets.at(-2)?.[0]], [0.001, 600], 'a millisecond to ten minutes');
  for (const [route, method] of [
    ['blob', 'HEAD'],
    ['other', 'GET'],
    ['base', 'GET'],
  ] as const) {
    const h = m.histogram(DURATION, { route, method });
    assert.equal(h.count, 1, `${route} ${method}`);
    assertWellFormed(h, `${route} ${method}`);
  }

  // The HEAD hit sent no body: it has no first byte.
  const firstBytes = { hit: 2, miss: 1, joined: 1 };
  for (const [outcome, count] of Object.entries(firstBytes)) {
    const h = m.histogram(FIRST_BYTE, { outcome });
    assert.equal(h.count, count, outcome);
    assertWellFormed(h, `first byte of ${outcome}`);
  }
  assert.equal(m.sum(`${FIRST_BYTE}_count`), 4, 'no other outcome');
  assert.ok((m.sum(`${FIRST_BYTE}_sum`) ?? Infinity) <= (gets.sum ?? 0), 'a first byte comes before the end');
});

test('a node of two processes: /metrics adds up the histograms of both', async (t) => {
  const { ca, origin, cfg } = await originConfig(t, { extraHttp: `  processes: 2\n${DEBUG}` });
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const debugPort = Number(cache.lines.find((l) => l['msg'] === 'debug server listening')?.['port']);
  const metricsUrl = `http://127.0.0.1:${debugPort}/metrics`;
  const pids = await servingPids(cache.lines, 2);
  // (Each connection pinned to a process made a blob request of its own: a 401, no body.)
  const [onA, onB] = await pinConnections(t, cache.url, ca.cert, cache.lines, pids, 1);
  const a = onA?.[0];
  const b = onB?.[0];
  if (a === undefined || b === undefined) throw new Error('a connection on each process');

  const blob = origin.add(randomBytes(100_000));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  const get = async (c: typeof a) => {
    const res = await c.request({ path, method: 'GET' });
    assert.equal(res.statusCode, 200);
    assert.equal((await res.body.arrayBuffer()).byteLength, blob.bytes.length);
  };
  await get(a);
  await waitFor(
    10_000,
    'the miss published',
    async () => (await scrape(metricsUrl)).value('dtr_cache_stored_blobs') === 1,
  );
  for (const c of [a, b, b, a]) await get(c);

  // Every blob GET either process logged: the probes and these five, from both processes.
  const lines = () =>
    cache.lines.filter((l) => l['msg'] === 'request' && l['route'] === 'blob' && l['method'] === 'GET');
  await waitFor(5_000, 'the request lines', () => lines().filter((l) => l['digest'] === blob.digest).length === 5);
  const served = lines().filter((l) => l['digest'] === blob.digest);
  assert.deepEqual(
    pids.map((pid) => served.filter((l) => l['pid'] === pid).length),
    [3, 2],
    'the blob served by both processes',
  );
  const m = await scrape(metricsUrl);
  const gets = blobGets(m);
  assert.equal(gets.count, lines().length, 'every blob GET of both processes');
  assertWellFormed(gets, 'blob GET of the node');
  const counted = ['200', '401']
    .map((status) => m.value('dtr_cache_requests_total', { route: 'blob', method: 'GET', status }) ?? 0)
    .reduce((x, y) => x + y);
  assert.equal(gets.count, counted, 'as many as requests_total counts');
  // The miss and the hits, on both processes: five first bytes in all.
  assert.equal(m.value(`${FIRST_BYTE}_count`, { outcome: 'miss' }), 1);
  assert.equal(m.sum(`${FIRST_BYTE}_count`), 5);
  assertWellFormed(m.histogram(FIRST_BYTE, { outcome: 'hit' }), 'first byte of hits of the node');
});
