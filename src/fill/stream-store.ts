// Where a streaming fill's bytes are at any moment: in the data file (below what the worker
// has written), in the ring and pending chunks (recent bytes, read from memory so clients
// never wait for a disk round trip), and, once the disk has failed, in a memory tail kept
// until every reader has passed it. After a take-over, the dead writer's file holds the
// first bytes until the worker has copied them. The store is also the download's sink, and
// holds the upstream back when the worker or the tail falls behind.
import type { FileHandle } from 'node:fs/promises';
import type { ByteSink } from './download.js';
import { MemoryTail } from './memory-tail.js';
import type { SpoolRing } from './ring.js';

/** With the disk full, bytes stream through memory: at most this much per fill. */
const TAIL_LIMIT = 16 << 20;

export class StreamStore implements ByteSink {
  readonly ring: SpoolRing;
  /** Our read handle on this writer's data file (null: no spool, the disk was full from the start). */
  readonly #file: FileHandle | null;
  /** A continuation's source of the first `#prefixEnd` bytes (the fill closes it with its other handles). */
  readonly #prefix: FileHandle | null;
  readonly #prefixEnd: number;
  #tail: MemoryTail | null = null;
  #resume: (() => void) | null = null;

  constructor(ring: SpoolRing, file: FileHandle | null, prefix: { file: FileHandle; end: number } | null) {
    this.ring = ring;
    this.#file = file;
    this.#prefix = prefix?.file ?? null;
    this.#prefixEnd = prefix?.end ?? 0;
    if (file === null) this.#tail = new MemoryTail(ring.received);
  }

  /** True once bytes stream through memory only (the disk failed): late joiners cannot start at 0. */
  get inMemoryOnly(): boolean {
    return this.#tail !== null;
  }

  arrived(): number {
    return this.ring.received;
  }

  async read(buf: Buffer, pos: number, length: number): Promise<number> {
    // The prefix first: its copy into this writer's file may not be done yet.
    if (pos < this.#prefixEnd && this.#prefix !== null) {
      return (await this.#prefix.read(buf, 0, Math.min(length, this.#prefixEnd - pos), pos)).bytesRead;
    }
    // Memory first, even for bytes the worker has written: a reader near the frontier then
    // never pays a file read (bench/NOTES.md, "Where a lone miss spent its CPU").
    const fromMemory = this.ring.read(buf, pos, length);
    if (fromMemory > 0) return fromMemory;
    const written = this.ring.written;
    if (pos < written && this.#file !== null) {
      return (await this.#file.read(buf, 0, Math.min(length, written - pos), pos)).bytesRead;
    }
    return this.#tail?.read(buf, pos, length) ?? 0;
  }

  write(chunk: Buffer): boolean {
    const ringOk = this.ring.push(chunk);
    this.#tail?.push(chunk);
    return ringOk && (this.#tail === null || this.#tail.bytes <= TAIL_LIMIT);
  }

  onDrain(resume: () => void): void {
    this.#resume = resume;
    this.#resumeWhenRoom();
  }

  /**
   * The disk refused a write at `offset`: from there on, bytes live in memory until read.
   * Bytes below `slowest` go at once: a paused upstream would otherwise wait on a tail that
   * no reader needs, and no reader would move to trim it.
   */
  diskFailed(offset: number, slowest: number): void {
    if (this.#tail !== null) return;
    // A continuation's first bytes stay readable in the file it continues.
    const from = Math.max(offset, this.#prefixEnd);
    const tail = new MemoryTail(from);
    for (const chunk of this.ring.copyFrom(from)) tail.push(chunk);
    this.#tail = tail;
    this.trim(slowest);
  }

  /** True while the upstream is paused until readers drain the memory tail (disk full). */
  get waitingOnReaders(): boolean {
    return this.#resume !== null && this.#tail !== null && this.#tail.bytes > TAIL_LIMIT / 2;
  }

  /** Drops memory-tail bytes every reader has passed (`slowest`), and lets the upstream go on. */
  trim(slowest: number): void {
    this.#tail?.trim(slowest);
    this.#resumeWhenRoom();
  }

  /** Resumes a paused upstream once the worker has caught up and readers have drained the tail. */
  #resumeWhenRoom(): void {
    if (this.#resume === null) return;
    if (!this.ring.hasRoom) {
      this.ring.onDrain(() => this.#resumeWhenRoom());
      return;
    }
    // A tail over half its limit waits for readers: trim() comes back here.
    if (this.#tail !== null && this.#tail.bytes > TAIL_LIMIT / 2) return;
    const resume = this.#resume;
    this.#resume = null;
    resume();
  }
}
