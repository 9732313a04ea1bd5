// Shared reads near the end of a followed file: readers at the frontier cost one file read
// per block between them, each gets exactly the file's bytes and never one past what is
// available, and readers far behind read the file themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FrontierReads } from '../../src/fill/frontier-reads.js';

const MiB = 1 << 20;

/** A file of `size` random bytes, read through a counted readAt. */
function file(size: number) {
  const bytes = randomBytes(size);
  const calls: { pos: number; length: number }[] = [];
  const reads = new FrontierReads(async (buf, pos, length) => {
    calls.push({ pos, length });
    await new Promise((r) => setImmediate(r));
    return bytes.copy(buf, 0, pos, Math.min(bytes.length, pos + length));
  });
  return { bytes, calls, reads };
}

test('frontier reads: sixteen readers of the same new bytes cost one file read', async () => {
  const { bytes, calls, reads } = file(8 * MiB);
  const available = 3 * MiB + 4096;
  const bufs = Array.from({ length: 16 }, () => Buffer.alloc(512 << 10));
  const got = await Promise.all(bufs.map((b) => reads.read(b, 3 * MiB, b.length, available)));
  assert.deepEqual(got, Array(16).fill(4096), 'each read ends at the bytes available');
  for (const b of bufs) assert.deepEqual(b.subarray(0, 4096), bytes.subarray(3 * MiB, 3 * MiB + 4096));
  assert.deepEqual(calls, [{ pos: 3 * MiB, length: 4096 }]);

  // More arrives: the block is read on from where it stopped, once for all readers.
  const more = 3 * MiB + 300_000;
  const again = await Promise.all(bufs.map((b) => reads.read(b, 3 * MiB + 4096, b.length, more)));
  assert.deepEqual(again, Array(16).fill(300_000 - 4096));
  for (const b of bufs) assert.deepEqual(b.subarray(0, 300_000 - 4096), bytes.subarray(3 * MiB + 4096, more));
  assert.deepEqual(calls.slice(1), [{ pos: 3 * MiB + 4096, length: 300_000 - 4096 }]);
});

test('frontier reads: a read stops at its block’s end and the next block is read once', async () => {
  const { bytes, calls, reads } = file(8 * MiB);
  const buf = Buffer.alloc(512 << 10);
  const at = 2 * MiB - 1000;
  assert.equal(await reads.read(buf, at, buf.length, 3.5 * MiB), 1000);
  assert.deepEqual(buf.subarray(0, 1000), bytes.subarray(at, 2 * MiB));
  assert.equal(await reads.read(buf, 2 * MiB, buf.length, 3.5 * MiB), buf.length);
  assert.deepEqual(buf, bytes.subarray(2 * MiB, 2 * MiB + buf.length));
  assert.equal(await reads.read(buf, 2 * MiB + buf.length, buf.length, 3.5 * MiB), buf.length);
  assert.deepEqual(
    calls.map((c) => c.pos),
    [1 * MiB, 2 * MiB],
    'one read per block, each from its start',
  );
  assert.ok(reads.bytesHeld <= 3 * MiB);
});

test('frontier reads: a reader far behind the frontier reads the file itself, and holds no block', async () => {
  const { bytes, calls, reads } = file(16 * MiB);
  const buf = Buffer.alloc(256 << 10);
  for (let i = 0; i < 3; i++) {
    assert.equal(await reads.read(buf, i * buf.length, buf.length, 16 * MiB), buf.length);
    assert.deepEqual(buf, bytes.subarray(i * buf.length, (i + 1) * buf.length));
  }
  assert.equal(calls.length, 3);
  assert.deepEqual(
    calls.map((c) => c.length),
    [buf.length, buf.length, buf.length],
  );
  assert.equal(reads.bytesHeld, 0);
});

test('frontier reads: a file shorter than said ends the wait with a direct read, not a loop', async () => {
  const { calls, reads } = file(MiB);
  const buf = Buffer.alloc(4096);
  assert.equal(await reads.read(buf, MiB, buf.length, MiB + 4096), 0);
  assert.ok(calls.length <= 2);
});
