// The ring between upstream and the spool worker, driven from the worker's side of its
// channel by the test: regions named in order and never wrapping, the bytes in them, reads
// from memory at absolute offsets, backpressure and its release, and `end` after the bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { MessagePort } from 'node:worker_threads';
import { SpoolRing, type RingEvents } from '../../src/fill/ring.js';
import type { SpoolMessage, SpoolProgress } from '../../workers/types.js';
import { waitFor, within } from '../helpers/deadline.js';

/** The worker's end: collects messages, and answers as a worker would. */
function workerSide(port: MessagePort) {
  const inbox: SpoolMessage[] = [];
  let wake: (() => void) | null = null;
  port.on('message', (m: SpoolMessage) => {
    inbox.push(m);
    wake?.();
  });
  return {
    inbox,
    async next(): Promise<SpoolMessage> {
      while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
      return inbox.shift()!;
    },
    reply(msg: SpoolProgress): void {
      port.postMessage(msg);
    },
  };
}

function ringWith(capacity: number, start = 0, fastestReader?: RingEvents['fastestReader']) {
  const seen = { progress: 0, failed: [] as Array<[number, string]>, verdicts: [] as boolean[] };
  const events: RingEvents = {
    progress: () => void seen.progress++,
    writeFailed: (offset, code) => void seen.failed.push([offset, code]),
    verdict: (ok) => void seen.verdicts.push(ok),
    ...(fastestReader === undefined ? {} : { fastestReader }),
  };
  const ring = new SpoolRing(capacity, start, events);
  const worker = workerSide(ring.workerPort);
  return { ring, worker, seen, view: Buffer.from(ring.buffer) };
}

test('ring: regions in order, never wrapping, holding the bytes pushed; reads from memory at absolute offsets', async (t) => {
  const { ring, worker, view } = ringWith(1000, 5000);
  t.after(() => {
    ring.close();
    ring.workerPort.close();
  });
  const bytes = randomBytes(2500);
  // The worker's side: takes each region, keeps its bytes, reports it done and written.
  let rebuilt = Buffer.alloc(0);
  const consumed = (async () => {
    let done = 5000;
    while (rebuilt.length < bytes.length) {
      const m = await worker.next();
      if (m.type !== 'chunk') assert.fail(`unexpected ${m.type}`);
      assert.ok(m.at + m.length <= 1000, 'a region never wraps');
      rebuilt = Buffer.concat([rebuilt, view.subarray(m.at, m.at + m.length)]);
      done += m.length;
      worker.reply({ type: 'progress', done, written: done });
    }
  })();
  for (let at = 0; at < bytes.length; at += 300) {
    ring.push(bytes.subarray(at, at + 300));
    // A byte received is readable at once, from pending or from the ring, before the worker has it.
    const out = Buffer.alloc(300);
    const n = ring.read(out, 5000 + at, 300);
    assert.ok(n > 0, `offset ${at} readable at once`);
    assert.deepEqual(out.subarray(0, n), bytes.subarray(at, at + n));
    await new Promise((r) => setImmediate(r));
  }
  await within(2_000, 'every region', consumed);
  assert.deepEqual(rebuilt, bytes, 'the regions carry the bytes in order');
  assert.equal(ring.received, 7500);
  await waitFor(2_000, 'written', () => ring.written === 7500);
  // The last ring's worth of bytes is still in memory; older ones are not (they are read from disk).
  const tail = Buffer.alloc(1000);
  assert.equal(ring.read(tail, 6500, 1000), 1000);
  assert.deepEqual(tail, bytes.subarray(1500));
  assert.equal(ring.read(Buffer.alloc(10), 5000, 10), 0, 'below the window: not in memory');
  assert.equal(ring.memoryStart, 6500);
});

test('ring: push asks for a pause past one ring of pending bytes, and drains when the worker catches up', async (t) => {
  const { ring, worker } = ringWith(1000);
  t.after(() => {
    ring.close();
    ring.workerPort.close();
  });
  let more = true;
  let pushed = 0;
  while (more) {
    more = ring.push(randomBytes(400));
    pushed += 400;
  }
  assert.ok(pushed > 1000 && pushed <= 2400, `paused after ${pushed} bytes`);
  assert.equal(ring.hasRoom, false);
  let drained = false;
  ring.onDrain(() => (drained = true));
  // The worker finishes regions; as they free, pending bytes move in, and room returns.
  let done = 0;
  while (!drained) {
    const m = await within(2_000, 'a chunk', worker.next());
    if (m.type !== 'chunk') assert.fail(`unexpected ${m.type}`);
    done += m.length;
    worker.reply({ type: 'progress', done, written: done });
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(ring.hasRoom);
});

test('ring: end reaches the worker after every pending byte; the verdict and a failed write are reported', async (t) => {
  const { ring, worker, seen } = ringWith(1000);
  t.after(() => {
    ring.close();
    ring.workerPort.close();
  });
  ring.push(randomBytes(1500));
  ring.end(1500);
  let done = 0;
  for (;;) {
    const m = await within(2_000, 'a message', worker.next());
    if (m.type === 'end') {
      assert.equal(m.expectedSize, 1500);
      assert.equal(done, 1500, 'end came after every byte');
      break;
    }
    if (m.type !== 'chunk') assert.fail(`unexpected ${m.type}`);
    done += m.length;
    worker.reply({ type: 'progress', done, written: Math.min(done, 700) });
  }
  worker.reply({ type: 'write-failed', offset: 700, code: 'ENOSPC', message: 'no space' });
  worker.reply({ type: 'verdict', ok: true, size: 1500, actualHex: 'x' });
  await waitFor(2_000, 'the verdict', () => seen.verdicts.length > 0);
  assert.deepEqual(seen.failed, [[700, 'ENOSPC']]);
  assert.deepEqual(seen.verdicts, [true]);
  assert.ok(seen.progress > 0);
  // The bytes the disk refused are handed over from memory, in order.
  const handed = Buffer.concat(ring.copyFrom(700));
  assert.equal(handed.length, 800);
});

test('ring: end follows the last region at once, without waiting for the worker to report it done', async (t) => {
  // A worker holds a region shorter than its write batch until the end comes (or a pause):
  // the end, which brings the verdict that releases every client's last byte, must not wait
  // for a progress message about that region.
  const { ring, worker } = ringWith(1000);
  t.after(() => {
    ring.close();
    ring.workerPort.close();
  });
  ring.push(randomBytes(600));
  ring.end(600);
  const first = await within(2_000, 'the region', worker.next());
  assert.equal(first.type, 'chunk');
  const second = await within(2_000, 'the end, with no progress reported', worker.next());
  assert.equal(second.type, 'end');
});

test('ring: bytes the fastest reader in the window has not read are not overwritten; its reads free the space', async (t) => {
  // One reader, at `reader`; the ring asks where it is within its window.
  let reader = 0;
  const asked: Array<[number, number]> = [];
  const { ring, worker } = ringWith(1000, 0, (from, to) => {
    asked.push([from, to]);
    return reader >= from && reader <= to ? reader : null;
  });
  t.after(() => {
    ring.close();
    ring.workerPort.close();
  });
  const bytes = randomBytes(1500);
  // The worker keeps up at once: only the reader can hold the ring back.
  const acks = (async () => {
    let done = 0;
    for (;;) {
      const m = await worker.next();
      if (m.type !== 'chunk') return;
      done += m.length;
      worker.reply({ type: 'progress', done, written: done });
    }
  })();
  ring.push(bytes.subarray(0, 1000));
  await waitFor(
    2_000,
    'the first ring of bytes with the worker',
    () => worker.inbox.length === 0 && ring.written === 1000,
  );
  ring.push(bytes.subarray(1000));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  // The reader is at 0: nothing of the second push may go into the ring over bytes it still needs.
  assert.equal(ring.memoryStart, 0, 'the window still starts at the reader');
  const out = Buffer.alloc(1500);
  assert.equal(ring.read(out, 0, 1000), 1000, 'the reader reads its bytes from memory, though the worker wrote them');
  assert.deepEqual(out.subarray(0, 1000), bytes.subarray(0, 1000));
  assert.ok(asked.length > 0, 'the ring asked for the reader');
  // The reader moves on by 300 bytes: 300 bytes of ring space are free, and no more.
  reader = 300;
  ring.readerMoved();
  await waitFor(2_000, 'the space the reader left used', () => ring.memoryStart === 300);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(ring.memoryStart, 300, 'the last 200 bytes wait for more room');
  assert.equal(ring.read(out, 300, 1200), 1000, 'a ring of bytes from the reader on');
  assert.equal(ring.read(out.subarray(1000), 1300, 200), 200, 'and the rest, still pending');
  assert.deepEqual(out.subarray(0, 1200), bytes.subarray(300, 1500));
  // No reader in the window (it left): the ring is paced by the worker alone.
  reader = -1;
  ring.readerMoved();
  await waitFor(2_000, 'every byte through the ring', () => ring.written === 1500);
  ring.end(1500);
  await within(2_000, 'the end', acks);
});
