// Where a streaming fill's bytes are when the disk fails: the memory tail that takes over,
// driven from the worker's side of the ring by the test.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SpoolRing } from '../../src/fill/ring.js';
import { StreamStore } from '../../src/fill/stream-store.js';
import type { SpoolMessage } from '../../workers/types.js';
import { waitFor, within } from '../helpers/deadline.js';

const RING = 4 << 20;

/** A ring whose events nobody watches, closed after the test. */
function quietRing(t: TestContext, capacity: number): SpoolRing {
  const ring = new SpoolRing(capacity, 0, {
    progress: () => undefined,
    writeFailed: () => undefined,
    verdict: () => undefined,
  });
  t.after(() => {
    ring.close();
    ring.workerPort.close();
  });
  return ring;
}

test('stream store: a disk failing while the upstream is paused drops the tail no reader needs, and the upstream goes on', async (t) => {
  const ring = quietRing(t, RING);
  const done = { offset: 0 };
  ring.workerPort.on('message', (m: SpoolMessage) => {
    if (m.type === 'chunk') done.offset += m.length;
  });
  // A file handle is never read here: every read below is from memory.
  const store = new StreamStore(ring, {} as never, null);
  // A full ring in the worker's hands, and more than a ring pending behind it: the upstream pauses.
  const bytes = randomBytes(RING + RING + (64 << 10));
  assert.equal(store.write(bytes.subarray(0, RING)), true);
  await new Promise((r) => setImmediate(r));
  assert.equal(store.write(bytes.subarray(RING)), false, 'more than a ring pending pauses the upstream');
  let resumed = false;
  store.onDrain(() => (resumed = true));
  // The worker failed its first write. The one reader waits far past what has arrived.
  store.diskFailed(0, 30 << 20);
  assert.equal(store.inMemoryOnly, true);
  // The worker catches up, hashing only, region by region; nothing in the tail is needed.
  ring.workerPort.postMessage({ type: 'write-failed', offset: 0, code: 'ENOSPC', message: 'no space' });
  await within(
    5_000,
    'the worker takes every byte, and the upstream resumes',
    (async () => {
      let acked = 0;
      for (let turn = 0; turn < 1000 && !resumed; turn++) {
        if (done.offset > acked) {
          acked = done.offset;
          ring.workerPort.postMessage({ type: 'progress', done: acked, written: 0 });
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
  );
  // Dropped from the tail (the ring's own window still holds its last bytes).
  const buf = Buffer.alloc(16);
  assert.equal(await store.read(buf, 0, 16), 0, 'bytes below every reader are gone');
});

test('stream store: bytes still in the ring are read from memory even once the worker has written them', async (t) => {
  const ring = quietRing(t, 1 << 20);
  // The worker takes each region and reports it written at once.
  let done = 0;
  ring.workerPort.on('message', (m: SpoolMessage) => {
    if (m.type !== 'chunk') return;
    done += m.length;
    ring.workerPort.postMessage({ type: 'progress', done, written: done });
  });
  // A file that must not be read: any read of it fails the test.
  const file = {
    read: () => assert.fail('read from the file: the bytes were in memory'),
  };
  const store = new StreamStore(ring, file as never, null);
  const bytes = randomBytes(256 << 10);
  store.write(bytes);
  await waitFor(2_000, 'written', () => ring.written === bytes.length);
  const out = Buffer.alloc(bytes.length);
  assert.equal(await store.read(out, 0, bytes.length), bytes.length);
  assert.ok(out.equals(bytes));
});
