// Contents of small blobs kept in memory (config blobs, tiny layers): a hit on them costs
// no open/fstat/read/close, which profiling showed to be a third of a 4 KiB hit's CPU.
// Bounded by entry size and total bytes; least recently used go first (lru-cache).
import { LRUCache } from 'lru-cache';

export class SmallBlobCache {
  readonly maxEntry: number;
  readonly #lru: LRUCache<string, Buffer>;

  constructor(maxEntry: number, maxTotal: number) {
    this.maxEntry = maxEntry;
    this.#lru = new LRUCache<string, Buffer>({
      maxSize: maxTotal,
      maxEntrySize: maxEntry,
      // lru-cache wants a positive size: an empty blob counts as one byte.
      sizeCalculation: (buf) => Math.max(1, buf.length),
    });
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }

  /** The bytes, which become the most recently used. */
  get(digest: string): Buffer | undefined {
    return this.#lru.get(digest);
  }

  /** Keeps a copy unless it is too large or one is kept already (blobs never change). */
  set(digest: string, buf: Buffer): void {
    if (buf.length > this.maxEntry || this.#lru.has(digest)) return;
    this.#lru.set(digest, buf);
  }

  delete(digest: string): void {
    this.#lru.delete(digest);
  }
}
