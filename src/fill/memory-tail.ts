// The bytes of a fill that could not go to disk (ENOSPC): kept in memory from `start` on,
// and dropped as soon as every reader has passed them. Readers below `start` read the
// spool file; the two together are the whole blob.
export class MemoryTail {
  #chunks: Buffer[] = [];
  /** Absolute offset of #chunks[0]. */
  #start: number;
  #bytes = 0;

  constructor(start: number) {
    this.#start = start;
  }

  get start(): number {
    return this.#start;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /** Copies bytes from absolute `pos` into `buf`; returns how many (0 when `pos` is not held). */
  read(buf: Buffer, pos: number, length: number): number {
    let at = this.#start;
    let copied = 0;
    for (const chunk of this.#chunks) {
      const end = at + chunk.length;
      if (pos + copied < end && copied < length) {
        const from = pos + copied - at;
        if (from < 0) return copied;
        copied += chunk.copy(buf, copied, from, Math.min(chunk.length, from + (length - copied)));
      }
      at = end;
      if (copied === length) break;
    }
    return copied;
  }

  /** Drops whole chunks that end at or before `pos` (the slowest reader's position). */
  trim(pos: number): void {
    while (this.#chunks.length > 0 && this.#start + this.#chunks[0]!.length <= pos) {
      const chunk = this.#chunks.shift()!;
      this.#start += chunk.length;
      this.#bytes -= chunk.length;
    }
  }
}
