// The range parser against the RFC 9110 reference model (range-model.ts), in process: the
// same Range headers the front-door fuzzer sends, thousands per second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRange } from '../../src/server/range.js';
import { selectRanges } from './range-model.js';
import { rangeHeader } from './range-arb.js';
import { budget, runProperty } from './budget.js';

test('fuzz: parseRange selects what RFC 9110 §14 selects', async (t) => {
  const sizes = fc.oneof(fc.constantFrom(0, 1, 2, 100, 65_537), fc.nat({ max: 1 << 20 }));
  const property = fc.property(
    sizes.chain((size) => fc.tuple(fc.constant(size), rangeHeader(size))),
    ([size, header]) => {
      const got = parseRange(header, size);
      const want = selectRanges(header, size);
      const asModel =
        got.kind === 'ranges' ? { kind: 'ranges', spans: got.ranges.map(({ start, end }) => ({ start, end })) } : got;
      assert.deepEqual(asModel, want, `Range ${JSON.stringify(header)} on ${size} bytes`);
    },
  );
  await runProperty(t, 'range', property, budget(2));
});
