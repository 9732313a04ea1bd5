// Contents of small blobs kept in memory (config blobs, tiny layers): a hit on them costs
// no open/fstat/read/close, which profiling showed to be a third of a 4 KiB hit's CPU.
// Bounded by entry size and total bytes; least recently used go first.
export class SmallBlobCache {
  readonly maxEntry: number;
  readonly #maxTotal: number;
  readonly #map = new Map<string, Buffer>();
  #bytes = 0;

  constructor(maxEntry: number, maxTotal: number) {
    this.maxEntry = maxEntry;
    this.#maxTotal = maxTotal;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get(digest: string): Buffer | undefined {
    const buf = this.#map.get(digest);
    if (buf !== undefined) {
      // Map order is insertion order: re-inserting makes this the most recently used.
      this.#map.delete(digest);
      this.#map.set(digest, buf);
    }
    return buf;
  }

  set(digest: string, buf: Buffer): void {
    if (buf.length > this.maxEntry || this.#map.has(digest)) return;
    this.#map.set(digest, buf);
    this.#bytes += buf.length;
    for (const [oldest, old] of this.#map) {
      if (this.#bytes <= this.#maxTotal) break;
      this.#map.delete(oldest);
      this.#bytes -= old.length;
    }
  }

  delete(digest: string): void {
    const buf = this.#map.get(digest);
    if (buf === undefined) return;
    this.#map.delete(digest);
    this.#bytes -= buf.length;
  }
}
