// Concurrent requests for one key share one piece of work (one upstream exchange for a tag,
// one for a manifest digest): a map entry removed when the work settles, on success and on
// failure alike, so failures are never remembered.
export class SingleFlight<V> {
  readonly #running = new Map<string, Promise<V>>();

  get size(): number {
    return this.#running.size;
  }

  /** The running work for `key`, or `work()` started now; `joined` tells which. */
  run(key: string, work: () => Promise<V>): { promise: Promise<V>; joined: boolean } {
    const running = this.#running.get(key);
    if (running !== undefined) return { promise: running, joined: true };
    const promise = work().finally(() => {
      if (this.#running.get(key) === promise) this.#running.delete(key);
    });
    this.#running.set(key, promise);
    return { promise, joined: false };
  }
}
