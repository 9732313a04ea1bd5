// The memory of fill rings, reused. Each large fill needs a shared buffer for its ring (up to
// 4 MiB). Allocated afresh per fill, the dead ones pile up faster than the garbage collector
// frees them: a node doing a fill every second or so grew by gigabytes. A finished fill gives
// its buffer back, and the next one of the same size class takes it.

/** Size classes are powers of two from here up. */
const MIN_CLASS = 64 << 10;

export class RingBuffers {
  readonly #free = new Map<number, SharedArrayBuffer[]>();
  readonly #maxPooled: number;
  #pooled = 0;
  /** Buffers allocated since start (the rest were reused). */
  created = 0;

  /** `maxPooled`: bytes kept for reuse at most; buffers given back beyond it are left to the GC. */
  constructor(maxPooled: number) {
    this.#maxPooled = maxPooled;
  }

  /** Bytes held for reuse now. */
  get pooled(): number {
    return this.#pooled;
  }

  /** A buffer of at least `bytes`: the power of two at or above it (64 KiB at least). */
  take(bytes: number): SharedArrayBuffer {
    const size = sizeClass(bytes);
    const reused = this.#free.get(size)?.pop();
    if (reused !== undefined) {
      this.#pooled -= size;
      return reused;
    }
    this.created++;
    return new SharedArrayBuffer(size);
  }

  /** The buffer's last user is done with it (the worker, and every reader of its ring). */
  give(buffer: SharedArrayBuffer): void {
    const size = buffer.byteLength;
    if (size !== sizeClass(size) || this.#pooled + size > this.#maxPooled) return;
    const list = this.#free.get(size) ?? [];
    list.push(buffer);
    this.#free.set(size, list);
    this.#pooled += size;
  }
}

function sizeClass(bytes: number): number {
  let size = MIN_CLASS;
  while (size < bytes) size *= 2;
  return size;
}

/** One pool per process: enough for a burst of concurrent fills to reuse each other's rings. */
export const ringBuffers = new RingBuffers(64 << 20);
