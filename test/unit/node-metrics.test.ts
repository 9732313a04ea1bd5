// The node's /metrics (src/cluster/node-metrics.ts): counts of a process that exited stay
// in the node's totals from the moment it exited, a scrape under way included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeMetrics } from '../../src/cluster/node-metrics.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { parseMetrics } from '../helpers/prom.js';

test("a process's counters count from its exit on, even for a scrape that renders before the retirement settled", async (t) => {
  const a = new Metrics();
  const b = new Metrics();
  t.after(() => {
    a.close();
    b.close();
  });
  for (let i = 0; i < 3; i++) a.request('blob', 'GET', 200, 'hit', 100, false, 0.01);
  b.request('blob', 'GET', 200, 'hit', 100, false, 0.01);
  const node = new NodeMetrics(() => 2);
  const hits = async (answers: Parameters<NodeMetrics['render']>[0]) =>
    parseMetrics((await node.render(answers)).body).value('dtr_cache_blob_requests_total', { outcome: 'hit' });
  const both = [
    { id: 1, snapshot: await a.snapshot() },
    { id: 2, snapshot: await b.snapshot() },
  ];
  assert.equal(await hits(both), 4);
  // The supervisor retires a process on its 'exit' and does not wait: a scrape whose answers
  // came in meanwhile renders at once (the dead one's answer missing or left out).
  const bNow = await b.snapshot();
  const retired = node.retire(1);
  assert.equal(await hits([{ id: 2, snapshot: bNow }]), 4, 'counters never go down');
  await retired;
  assert.equal(await hits([{ id: 2, snapshot: await b.snapshot() }]), 4);
  // Two processes that exit together (a poison request, the OOM killer): neither is lost.
  const c = new Metrics();
  t.after(() => c.close());
  c.request('blob', 'GET', 200, 'hit', 100, false, 0.01);
  assert.equal(
    await hits([
      { id: 2, snapshot: await b.snapshot() },
      { id: 3, snapshot: await c.snapshot() },
    ]),
    5,
  );
  const both2 = [node.retire(2), node.retire(3)];
  // (The test has no await between the exits and this scrape.)
  assert.equal(await hits([]), 5);
  await Promise.all(both2);
  assert.equal(await hits([]), 5);
  const afterExits = parseMetrics((await node.render([])).body);
  assert.equal(
    afterExits.value('dtr_cache_request_duration_seconds_count', { route: 'blob', method: 'GET' }),
    5,
    'histograms too',
  );
});
