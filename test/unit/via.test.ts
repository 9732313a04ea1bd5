// The Via a request carries upstream: the received entries and our hop, the oldest entries
// dropped whole once the field is long.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardedVia } from '../../src/upstream/via.js';

test('our hop is added to what the client sent', () => {
  assert.equal(forwardedVia(undefined, 'edge~1'), '1.1 edge~1');
  assert.equal(forwardedVia('', 'edge~1'), '1.1 edge~1');
  assert.equal(forwardedVia('1.1 a, 2 b', 'edge~1'), '1.1 a, 2 b, 1.1 edge~1');
});

test('a long Via keeps its newest whole entries, at most 4 KiB of them', () => {
  const hops = Array.from({ length: 2_000 }, (_, i) => `1.1 hop${i}`);
  const out = forwardedVia(hops.join(', '), 'edge~1');
  const entries = out.split(', ');
  assert.ok(out.length <= 4096 + ', 1.1 edge~1'.length);
  assert.equal(entries.at(-1), '1.1 edge~1');
  assert.deepEqual(entries.slice(0, -1), hops.slice(hops.length - entries.length + 1));
  assert.ok(entries.length > 300);
  // One entry longer than the whole budget: only our hop goes on.
  assert.equal(forwardedVia(`1.1 ${'x'.repeat(5000)}`, 'edge~1'), '1.1 edge~1');
});
