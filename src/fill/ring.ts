// The bytes between upstream and the spool worker. Upstream chunks wait in `pending`
// (references, no copy) until they fit in a fixed SharedArrayBuffer ring shared with the
// worker, which hashes and writes each named region, then reports it done so the region can
// be reused. The ring is also the fill's recent memory: readers at the frontier copy their
// bytes from here, so the first bytes reach clients before any disk write or worker reply,
// and the fastest reader never has to read back from the file what it could not keep up with.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { SpoolMessage, SpoolProgress } from '../../workers/types.js';
import { ringBuffers, type RingBuffers } from './ring-buffers.js';

/**
 * How long the ring waits for a reader that has stopped reading before it overwrites that
 * reader's bytes (the reader then reads them from the data file). A client that stalls
 * must not stop the fill: the upstream would sit idle, and nothing would be stored, until the
 * client's idle timeout cut it. A reader that moves, however slowly, still paces the fill.
 */
export const READER_STALL_MS = 1_000;

export interface RingEvents {
  /** The worker finished a region: `written` may have grown, and ring space is free. */
  progress(): void;
  /** The first failed write (disk full): bytes from `offset` on are in no file. */
  writeFailed(offset: number, code: string): void;
  /** The worker's verdict on size and digest, sent before it makes the file durable. */
  verdict(ok: boolean, actualHex: string): void;
  /**
   * The position of the fastest reader between `from` and `to` (null: none there). The ring
   * does not overwrite bytes that reader has yet to read, so it keeps reading from memory:
   * the fill is then paced by its fastest client as well as by the worker.
   */
  fastestReader?(from: number, to: number): number | null;
}

export class SpoolRing {
  readonly buffer: SharedArrayBuffer;
  /** The worker's end of the channel: transferred with the spool task. */
  readonly workerPort: MessagePort;
  readonly #view: Buffer;
  readonly #capacity: number;
  readonly #port: MessagePort;
  readonly #events: RingEvents;
  /** Absolute offsets: received ≥ sent ≥ done ≥ written ≥ start. */
  readonly #start: number;
  #received: number;
  #sent: number;
  #done: number;
  #written: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  #onDrain: (() => void) | null = null;
  /** An `end` posted while bytes were still pending: sent once they have all gone out. */
  #queuedEnd: SpoolMessage | null = null;
  #closed = false;
  readonly #buffers: RingBuffers;
  #recycled = false;
  /** Readers below this offset stalled: the ring no longer keeps bytes for them. */
  #keptFrom = 0;
  #stallTimer: NodeJS.Timeout | null = null;

  /** `buffers`: where the ring's memory comes from, and goes back to on `recycle`. */
  constructor(capacity: number, startOffset: number, events: RingEvents, buffers: RingBuffers = ringBuffers) {
    this.#capacity = Math.max(1, capacity);
    this.#buffers = buffers;
    this.buffer = buffers.take(this.#capacity);
    this.#view = Buffer.from(this.buffer, 0, this.#capacity);
    this.#start = this.#received = this.#sent = this.#done = this.#written = startOffset;
    this.#events = events;
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.workerPort = port2;
    port1.on('message', (msg: SpoolProgress) => this.#onMessage(msg));
  }

  get received(): number {
    return this.#received;
  }

  /** Bytes the worker has put in the data file. */
  get written(): number {
    return this.#written;
  }

  /** Room for more: the bytes waiting for ring space are under half a ring. */
  get hasRoom(): boolean {
    return this.#pendingBytes < this.#capacity / 2;
  }

  /** The lowest offset still readable from memory (ring or pending). */
  get memoryStart(): number {
    return Math.max(this.#start, this.#sent - this.#capacity);
  }

  /**
   * Takes the next upstream chunk. False asks the producer to pause until `onDrain`: the
   * worker is more than a ring behind.
   */
  push(chunk: Buffer): boolean {
    this.#received += chunk.length;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.#scheduleFlush();
    return this.#pendingBytes <= this.#capacity;
  }

  /** Calls `resume` once, when there is room again (see `hasRoom`). */
  onDrain(resume: () => void): void {
    this.#onDrain = resume;
  }

  /**
   * Copies bytes from absolute `pos` that are still in memory; returns how many (0 when
   * `pos` is below the ring's window: those bytes are read from the data file).
   */
  read(buf: Buffer, pos: number, length: number): number {
    if (this.#recycled) return 0;
    if (pos >= this.#sent) return this.#readPending(buf, pos, length);
    if (pos < this.memoryStart) return 0;
    const n = Math.min(length, this.#sent - pos);
    let copied = 0;
    while (copied < n) {
      const at = (pos + copied) % this.#capacity;
      copied += this.#view.copy(buf, copied, at, Math.min(this.#capacity, at + (n - copied)));
    }
    return copied;
  }

  /** The bytes from `from` to what has been received, as chunks (the disk-full hand-over to memory). */
  copyFrom(from: number): Buffer[] {
    const out: Buffer[] = [];
    const inRing = this.#sent - from;
    if (inRing > 0) {
      const buf = Buffer.allocUnsafe(inRing);
      this.read(buf, from, inRing);
      out.push(buf);
    }
    let at = this.#sent;
    for (const chunk of this.#pending) {
      const skip = Math.max(0, from - at);
      if (skip < chunk.length) out.push(chunk.subarray(skip));
      at += chunk.length;
    }
    return out;
  }

  /** Waits until every received byte is with the worker, then tells it the blob is complete. */
  end(expectedSize: number): void {
    this.#post({ type: 'end', expectedSize }, true);
  }

  abort(): void {
    this.#post({ type: 'abort' }, false);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#stallTimer !== null) clearTimeout(this.#stallTimer);
    this.#port.close();
  }

  /**
   * Gives the ring's memory back for the next fill. Only when nothing can read it any more:
   * the worker's task has ended and every reader of the fill has gone. The ring then reads
   * as empty.
   */
  recycle(): void {
    this.close();
    if (this.#recycled) return;
    this.#recycled = true;
    this.#buffers.give(this.buffer);
  }

  #readPending(buf: Buffer, pos: number, length: number): number {
    let at = this.#sent;
    let copied = 0;
    for (const chunk of this.#pending) {
      const end = at + chunk.length;
      if (pos + copied < end) {
        const from = pos + copied - at;
        copied += chunk.copy(buf, copied, from, Math.min(chunk.length, from + (length - copied)));
        if (copied === length) break;
      }
      at = end;
    }
    return copied;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // The chunks of one event-loop turn go to the worker as one region (one message).
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** A reader moved on: ring space it held may be free. */
  readerMoved(): void {
    if (this.#pendingBytes > 0) this.#flush();
  }

  /** Copies pending bytes into the free part of the ring and names each contiguous region. */
  #flush(): void {
    while (this.#pendingBytes > 0 && !this.#closed) {
      const kept = this.#kept();
      const free = this.#capacity - (this.#sent - Math.min(this.#done, kept));
      if (free === 0) {
        if (kept < this.#done) this.#watchStall(kept);
        return;
      }
      const at = this.#sent % this.#capacity;
      const room = Math.min(free, this.#capacity - at);
      let length = 0;
      while (length < room && this.#pending.length > 0) {
        const chunk = this.#pending[0]!;
        const n = Math.min(chunk.length, room - length);
        chunk.copy(this.#view, at + length, 0, n);
        length += n;
        if (n === chunk.length) this.#pending.shift();
        else this.#pending[0] = chunk.subarray(n);
      }
      this.#pendingBytes -= length;
      this.#sent += length;
      this.#port.postMessage({ type: 'chunk', at, length } satisfies SpoolMessage);
    }
    // The end goes right behind the last bytes: the worker's verdict, which releases every
    // client's last byte, must not wait for a progress message that a held batch delays.
    if (this.#queuedEnd !== null && this.#pendingBytes === 0 && !this.#closed) {
      this.#port.postMessage(this.#queuedEnd);
      this.#queuedEnd = null;
    }
    this.#maybeDrain();
  }

  /** An `end` waits for the pending bytes to reach the worker; messages stay in order. */
  #post(msg: SpoolMessage, afterPending: boolean): void {
    if (this.#closed) return;
    if (afterPending && this.#pendingBytes > 0) {
      this.#queuedEnd = msg;
      return;
    }
    this.#port.postMessage(msg);
  }

  #onMessage(msg: SpoolProgress): void {
    switch (msg.type) {
      case 'progress':
        this.#done = msg.done;
        this.#written = msg.written;
        this.#flush();
        this.#events.progress();
        return;
      case 'write-failed':
        this.#events.writeFailed(msg.offset, msg.code);
        return;
      case 'verdict':
        this.#events.verdict(msg.ok, msg.actualHex);
        return;
    }
  }

  /** The lowest offset a reader still needs from the ring (Infinity: none). */
  #kept(): number {
    const from = Math.max(this.memoryStart, this.#keptFrom);
    const reader = this.#events.fastestReader?.(from, this.#sent) ?? null;
    return reader ?? Infinity;
  }

  /**
   * The fill waits for the reader at `at`. If it is still there after READER_STALL_MS, the
   * ring stops keeping bytes for it; a reader that has moved meanwhile is watched afresh.
   */
  #watchStall(at: number): void {
    if (this.#stallTimer !== null) return;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null;
      if (this.#kept() === at) this.#keptFrom = at + 1;
      this.#flush();
    }, READER_STALL_MS);
  }

  #maybeDrain(): void {
    if (this.#onDrain !== null && this.hasRoom) {
      const resume = this.#onDrain;
      this.#onDrain = null;
      resume();
    }
  }
}
