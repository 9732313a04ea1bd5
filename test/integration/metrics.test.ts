// Observability: real requests through a real cache, then a real scrape of the
// debug server's Prometheus text, asserting concrete values; and /debug/health.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startStack } from '../helpers/stack.js';
import { fetchBlob } from '../helpers/http.js';
import { scrape } from '../helpers/prom.js';
import { waitFor, within } from '../helpers/deadline.js';

const DEBUG = (path: string) =>
  `  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n      path: ${path}\n`;

test('metrics: requests, hits/misses/joins and bytes, upstream, collapse, digest failures, store, event loop; health', async (t) => {
  const s = await startStack(t, { extraHttp: DEBUG('/prom') });
  const debugUrl = s.cache.debugUrl;
  assert.ok(debugUrl !== null, 'the debug server runs');
  const metricsUrl = `${debugUrl}/prom`;
  const host = s.origin.url;

  const a = s.origin.add(randomBytes(300_000));
  const c = s.origin.add(randomBytes(50_000));
  s.origin.corrupt.add(c.digest);
  const aUrl = s.blobUrl('team/app', a.digest, await s.origin.mint('team/app', a.digest));
  const cUrl = s.blobUrl('team/app', c.digest, await s.origin.mint('team/app', c.digest));

  // One miss held at the origin, two clients collapse into it.
  const gate = s.origin.gate(a.digest, 100_000);
  const first = fetchBlob(s.h2, aUrl);
  await within(10_000, 'origin sent the first bytes', gate.reached);
  const joiners = [fetchBlob(s.h2, aUrl), fetchBlob(s.h1, aUrl)];
  const during = await waitFor(10_000, 'three clients on the fill', async () => {
    const m = await scrape(metricsUrl);
    return m.value('dtr_cache_fill_waiters') === 3 ? m : undefined;
  });
  assert.equal(during.value('dtr_cache_fills_in_flight'), 1);
  gate.open();
  for (const r of await within(10_000, 'collapsed transfers', Promise.all([first, ...joiners]))) {
    assert.equal(r.status, 200);
    assert.equal(`sha256:${r.sha256}`, a.digest);
  }
  // Publication follows the clients' last byte: until then a request joins the fill.
  await waitFor(10_000, 'the fill settled', () => s.cache.ctx.inflight.size === 0);
  const hit = await fetchBlob(s.h1, aUrl);
  assert.equal(hit.status, 200);
  const bad = await fetchBlob(s.h1, cUrl);
  assert.notEqual(bad.error, null, 'the corrupt blob ends in a reset');
  assert.equal((await fetchBlob(s.h1, `${s.cache.url}/nowhere`)).status, 404);
  assert.equal((await fetchBlob(s.h2, `${s.cache.url}/v2/`)).status, 200);

  // The event-loop delay since the previous scrape: block the loop (the cache runs in this process).
  await scrape(metricsUrl);
  // The histogram's first tick after a reset only starts its clock (Node's ELD), so let it tick.
  await new Promise((r) => setTimeout(r, 50));
  const until = Date.now() + 150;
  while (Date.now() < until) {
    /* busy: a 150 ms event-loop stall */
  }

  const m = await waitFor(10_000, 'all request lines counted', async () => {
    const x = await scrape(metricsUrl);
    return x.value('dtr_cache_responses_broken_total', { route: 'blob' }) === 1 ? x : undefined;
  });
  const sa = a.bytes.length;
  assert.equal(
    m.value('dtr_cache_requests_total', { route: 'blob', method: 'GET', status: '200' }),
    5,
    'the corrupt one too: its 200 headers were sent',
  );
  assert.equal(m.value('dtr_cache_requests_total', { route: 'other', method: 'GET', status: '404' }), 1);
  assert.equal(m.value('dtr_cache_requests_total', { route: 'base', method: 'GET', status: '200' }), 1);
  assert.equal(m.value('dtr_cache_blob_requests_total', { outcome: 'miss' }), 2, 'a and the corrupt c');
  assert.equal(m.value('dtr_cache_blob_requests_total', { outcome: 'joined' }), 2);
  assert.equal(m.value('dtr_cache_blob_requests_total', { outcome: 'hit' }), 1);
  // The corrupt blob's client was sent every byte but the last, held back for the verdict.
  assert.equal(m.value('dtr_cache_blob_bytes_served_total', { outcome: 'miss' }), sa + c.bytes.length - 1);
  assert.equal(m.value('dtr_cache_blob_bytes_served_total', { outcome: 'joined' }), 2 * sa);
  assert.equal(m.value('dtr_cache_blob_bytes_served_total', { outcome: 'hit' }), sa);
  assert.equal(m.value('dtr_cache_upstream_requests_total', { host, outcome: '2xx' }), 2);
  assert.equal(m.value('dtr_cache_upstream_bytes_total', { host }), sa + c.bytes.length);
  assert.equal(m.value('dtr_cache_fills_total', { result: 'published' }), 1);
  assert.equal(m.value('dtr_cache_fills_total', { result: 'digest-mismatch' }), 1);
  assert.equal(m.value('dtr_cache_digest_failures_total'), 1);
  assert.equal(m.value('dtr_cache_collapse_saved_bytes_total'), 2 * sa);
  assert.equal(m.value('dtr_cache_fill_clients_count'), 2);
  assert.equal(m.value('dtr_cache_fill_clients_sum'), 4, '3 clients on a, 1 on c');
  assert.equal(m.value('dtr_cache_fills_in_flight'), 0);
  assert.equal(m.value('dtr_cache_fill_waiters'), 0);
  assert.equal(m.value('dtr_cache_stored_bytes'), sa);
  assert.equal(m.value('dtr_cache_stored_blobs'), 1);
  assert.equal(m.value('dtr_cache_worker_queue_depth'), 0);
  const lagMax = m.value('nodejs_eventloop_lag_max_seconds') ?? 0;
  assert.ok(lagMax >= 0.1 && lagMax < 5, `event-loop max ${lagMax}s shows the 150 ms stall`);
  assert.ok((m.value('nodejs_eventloop_lag_p99_seconds') ?? -1) >= 0);
  assert.ok((m.value('process_resident_memory_bytes') ?? 0) > 10 << 20);

  // Only the configured path serves metrics.
  assert.equal((await request(`${debugUrl}/metrics`)).statusCode, 404);

  const health = await request(`${debugUrl}/debug/health`);
  assert.equal(health.statusCode, 200);
  const body = (await health.body.json()) as {
    status: string;
    checks: {
      store: { ok: boolean };
      keys: { ok: boolean; count: number };
      draining: boolean;
      upstreams: Array<{ url: string; ok: boolean | null }>;
    };
  };
  assert.equal(body.status, 'ok');
  assert.equal(body.checks.store.ok, true);
  assert.deepEqual([body.checks.keys.ok, body.checks.keys.count], [true, 1]);
  assert.equal(body.checks.draining, false);
  // The upstream's last result is the corrupt fill: bytes that failed the digest check count
  // against the host that sent them (it is avoided for a while).
  assert.deepEqual(
    body.checks.upstreams.map((u) => [u.url, u.ok]),
    [[host, false]],
  );
  assert.match((body.checks.upstreams[0] as { detail?: string }).detail ?? '', /digest check/);
});

test('metrics: evictions by reason, with bytes, and the store gauges follow', async (t) => {
  const s = await startStack(t, { extraHttp: DEBUG('/metrics'), blobttl: '1s' });
  const metricsUrl = `${s.cache.debugUrl!}/metrics`;
  const blob = s.origin.add(randomBytes(40_000));
  const r = await fetchBlob(s.h1, s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest)));
  assert.equal(r.status, 200);
  // Published just after the client's last byte (the digest releases it; the write follows).
  await waitFor(10_000, 'stored', async () => (await scrape(metricsUrl)).value('dtr_cache_stored_blobs') === 1);
  const m = await waitFor(10_000, 'the expiry sweep', async () => {
    const x = await scrape(metricsUrl);
    return x.value('dtr_cache_evictions_total', { reason: 'expired' }) === 1 ? x : undefined;
  });
  assert.equal(m.value('dtr_cache_evicted_bytes_total', { reason: 'expired' }), 40_000);
  assert.equal(m.value('dtr_cache_stored_blobs'), 0);
  assert.equal(m.value('dtr_cache_stored_bytes'), 0);
});

test('log.accesslog.disabled: no request line, the request still counted in the metrics', async (t) => {
  const s = await startStack(t, { extraHttp: DEBUG('/metrics'), accessLog: false });
  const blob = s.origin.add(randomBytes(10_000));
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  for (const agent of [s.h1, s.h2]) assert.equal((await fetchBlob(agent, url)).status, 200);
  assert.equal((await fetchBlob(s.h1, `${s.cache.url}/nowhere`)).status, 404);
  const m = await scrape(`${s.cache.debugUrl}/metrics`);
  assert.equal(m.value('dtr_cache_requests_total', { route: 'blob', method: 'GET', status: '200' }), 2);
  assert.equal(m.value('dtr_cache_requests_total', { route: 'other', method: 'GET', status: '404' }), 1);
  // The fill's line comes just after its client's last byte: the other lines are written.
  await waitFor(10_000, 'the fill line', async () =>
    (await s.cache.logLines()).some((l) => l.msg === 'fill published' && l.digest === blob.digest),
  );
  const lines = await s.cache.logLines();
  assert.equal(lines.filter((l) => l.msg === 'request').length, 0, 'no access log');
});
