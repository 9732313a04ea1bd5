// The pool of fill ring memory: buffers come in power-of-two classes, a buffer given back is
// the next one taken of its class, and the pool keeps no more than its bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RingBuffers } from '../../src/fill/ring-buffers.js';

test('ring buffers: power-of-two classes from 64 KiB; a buffer given back is reused; the pool is bounded', () => {
  const pool = new RingBuffers(8 << 20);
  const a = pool.take(4 << 20);
  assert.equal(a.byteLength, 4 << 20);
  assert.equal(pool.take(3_000_000).byteLength, 4 << 20, 'rounded up to its class');
  assert.equal(pool.take(1).byteLength, 64 << 10, 'the smallest class');
  assert.equal(pool.created, 3);

  pool.give(a);
  assert.equal(pool.pooled, 4 << 20);
  assert.equal(pool.take(4 << 20), a, 'the same buffer again');
  assert.equal(pool.take(1 << 20).byteLength, 1 << 20, 'another class is not served from it');
  assert.equal(pool.created, 4);
  assert.equal(pool.pooled, 0);

  // Over the bound, a buffer given back is left to the garbage collector.
  pool.give(new SharedArrayBuffer(4 << 20));
  pool.give(new SharedArrayBuffer(4 << 20));
  pool.give(new SharedArrayBuffer(4 << 20));
  assert.equal(pool.pooled, 8 << 20);
  // A buffer of no class is never pooled.
  pool.give(new SharedArrayBuffer(100_000));
  assert.equal(pool.pooled, 8 << 20);
});
