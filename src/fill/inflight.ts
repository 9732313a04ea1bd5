// Miss collapse (docs/architecture.md): one Fill per digest, in a map that forgets the fill
// when it settles, on success and failure alike, so failures are never cached.
import { Fill, type FillDeps } from './fill.js';
import type { BlobFetch } from './fetch.js';
import type { FillClient } from './readers.js';

export class Inflight {
  readonly #fills = new Map<string, Fill>();
  readonly #deps: FillDeps;

  constructor(deps: FillDeps) {
    this.#deps = deps;
  }

  get size(): number {
    return this.#fills.size;
  }

  fills(): IterableIterator<Fill> {
    return this.#fills.values();
  }

  has(digest: string): boolean {
    return this.#fills.has(digest);
  }

  /** A credential from another process's client of this blob, for the fill running here. */
  offer(digest: string, client: FillClient): void {
    this.#fills.get(digest)?.offer(client);
  }

  /** The fill for this blob: the running one (joined) or a new one (started). */
  join(fetch: BlobFetch, client: FillClient): { fill: Fill; joined: boolean } {
    const key = fetch.digest.value;
    const running = this.#fills.get(key);
    // A fill streaming through memory (disk full) cannot start a newcomer at offset 0: the
    // newcomer gets a fill of its own, which tries the disk again.
    if (running !== undefined && running.joinable) {
      running.joins++;
      return { fill: running, joined: true };
    }
    // A failed fill still letting go of its spool: the new one claims it after that.
    const fill = new Fill(this.#deps, fetch, client, running?.failing === true ? running.settled : undefined);
    this.#fills.set(key, fill);
    void fill.settled.then(() => {
      if (this.#fills.get(key) === fill) this.#fills.delete(key);
    });
    return { fill, joined: false };
  }
}
