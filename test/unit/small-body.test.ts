// Blobs buffered whole (fill/small-blob.ts): the body is hashed as it arrives, readers see
// only what has arrived, and the bodies in flight never hold more than their budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { reserveSmallBody, setBufferedFillBudget, SmallBody, SMALL_BLOB_MAX } from '../../src/fill/small-blob.js';

test('SmallBody: hashed chunk by chunk as it arrives; a read sees only the bytes arrived', async () => {
  const bytes = randomBytes(300_000);
  const body = new SmallBody(bytes.length, 'sha256');
  body.write(bytes.subarray(0, 100_000));
  const buf = Buffer.alloc(200_000);
  assert.equal(await body.read(buf, 90_000, 50_000), 10_000, 'only up to what arrived');
  assert.deepEqual(buf.subarray(0, 10_000), bytes.subarray(90_000, 100_000));
  for (let at = 100_000; at < bytes.length; at += 16_384) body.write(bytes.subarray(at, at + 16_384));
  assert.equal(body.arrived(), bytes.length);
  assert.equal(body.hex(), createHash('sha256').update(bytes).digest('hex'));
  assert.deepEqual(body.bytes, bytes);
});

test('reserveSmallBody: at most SMALL_BLOB_MAX a blob, and the budget of bodies in flight', () => {
  setBufferedFillBudget(3 * SMALL_BLOB_MAX);
  try {
    assert.equal(reserveSmallBody(SMALL_BLOB_MAX + 1), null, 'too large for this path');
    const a = reserveSmallBody(SMALL_BLOB_MAX);
    const b = reserveSmallBody(SMALL_BLOB_MAX);
    const c = reserveSmallBody(SMALL_BLOB_MAX);
    assert.ok(a !== null && b !== null && c !== null);
    assert.equal(reserveSmallBody(1), null, 'the budget is spent');
    a();
    a();
    const d = reserveSmallBody(SMALL_BLOB_MAX);
    assert.ok(d !== null, 'a release gives its bytes back, once');
    assert.equal(reserveSmallBody(1), null, 'a second release of the same body gave nothing back');
    for (const release of [b, c, d]) release();
    assert.ok(reserveSmallBody(0) !== null, 'an empty blob takes this path too');
  } finally {
    setBufferedFillBudget(32 << 20);
  }
});
