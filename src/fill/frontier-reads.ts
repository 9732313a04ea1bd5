// Reads of a file that another process is still writing, shared by the readers near its
// end. A follower's clients (replica.ts) all wait at the frontier and each wake-up sends
// every one of them to the same new bytes: one positional read per block then serves them
// all from memory, instead of one system call and one page-cache copy per client
// (bench/NOTES.md, "One read for a follower's clients"). Readers further back read the
// file themselves, so a slow client never makes the blocks churn.

/** Reads `length` bytes at `position` into `buf` (from 0); resolves with the count read. */
export type ReadAt = (buf: Buffer, position: number, length: number) => Promise<number>;

const BLOCK = 1 << 20;
/** How far behind the bytes available a read may start and still use the shared blocks. */
const WINDOW = 2 << 20;
/** Enough blocks to cover the window whatever its alignment. */
const MAX_BLOCKS = WINDOW / BLOCK + 1;

interface Block {
  start: number;
  readonly buf: Buffer;
  /** Bytes of the block read so far, from `start`. */
  valid: number;
  /** The read that is extending `valid`, if one is under way. */
  loading: Promise<void> | null;
  /** Set when the block is given to another offset: a reader holding it must look again. */
  retired: boolean;
  lastUse: number;
}

export class FrontierReads {
  readonly #readAt: ReadAt;
  readonly #blocks: Block[] = [];
  #uses = 0;

  constructor(readAt: ReadAt) {
    this.#readAt = readAt;
  }

  /** Bytes held in blocks now (tests, memory accounting). */
  get bytesHeld(): number {
    return this.#blocks.length * BLOCK;
  }

  /**
   * Copies up to `length` bytes at `pos` into `buf`, never past `available` (the bytes the
   * writer has put in the file); a short read ends at a block's end.
   */
  async read(buf: Buffer, pos: number, length: number, available: number): Promise<number> {
    const want = Math.min(length, available - pos);
    if (want <= 0) return 0;
    if (pos < available - WINDOW) return this.#readAt(buf, pos, want);
    for (;;) {
      const block = this.#blockFor(pos - (pos % BLOCK));
      if (block === null) return this.#readAt(buf, pos, want);
      block.lastUse = ++this.#uses;
      if (block.start + block.valid > pos) {
        const from = pos - block.start;
        return block.buf.copy(buf, 0, from, Math.min(block.valid, from + want));
      }
      const before = block.valid;
      if (block.loading === null) block.loading = this.#extend(block, Math.min(block.start + BLOCK, available));
      await block.loading;
      // No progress (the file held less than `available` said): read it directly.
      if (block.retired || block.valid === before) return this.#readAt(buf, pos, want);
    }
  }

  /** Frees the blocks (the follower is done). */
  clear(): void {
    for (const b of this.#blocks) b.retired = true;
    this.#blocks.length = 0;
  }

  /** Reads the block on from what it holds, up to `end`; a reader then looks again. */
  async #extend(block: Block, end: number): Promise<void> {
    const at = block.start + block.valid;
    try {
      const got = await this.#readAt(block.buf.subarray(block.valid), at, end - at);
      if (!block.retired && got > 0) block.valid += got;
    } finally {
      block.loading = null;
    }
    // A read that returned nothing (the file is shorter than `available` said): readers go to
    // the file themselves rather than wait here again.
    if (block.start + block.valid <= at) this.#retire(block);
  }

  /** The block for `start`: held, new while there is room, or the least used idle one reused. */
  #blockFor(start: number): Block | null {
    const held = this.#blocks.find((b) => b.start === start);
    if (held !== undefined) return held;
    if (this.#blocks.length < MAX_BLOCKS) {
      const block: Block = {
        start,
        buf: Buffer.allocUnsafeSlow(BLOCK),
        valid: 0,
        loading: null,
        retired: false,
        lastUse: 0,
      };
      this.#blocks.push(block);
      return block;
    }
    let idle: Block | null = null;
    for (const b of this.#blocks) if (b.loading === null && (idle === null || b.lastUse < idle.lastUse)) idle = b;
    if (idle === null) return null;
    this.#retire(idle);
    const block: Block = { ...idle, start, valid: 0, loading: null, retired: false };
    this.#blocks.push(block);
    return block;
  }

  #retire(block: Block): void {
    block.retired = true;
    const i = this.#blocks.indexOf(block);
    if (i >= 0) this.#blocks.splice(i, 1);
  }
}
