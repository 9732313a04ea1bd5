// Miss collapse (DESIGN.md style §7): one Fill per digest, in a map that forgets the
// fill when it settles, on success and failure alike, so failures are never cached.
import type { Digest } from '../store/digest.js';
import { Fill, type FillClient, type FillDeps } from './fill.js';

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

  /** The fill for this digest: the running one (joined) or a new one (started). */
  join(name: string, digest: Digest, client: FillClient, via: string | undefined): { fill: Fill; joined: boolean } {
    const running = this.#fills.get(digest.value);
    // A fill streaming through memory (disk full) cannot start a newcomer at offset 0: the
    // newcomer gets a fill of its own, which tries the disk again.
    if (running !== undefined && running.joinable) {
      running.joins++;
      return { fill: running, joined: true };
    }
    const fill = new Fill(this.#deps, name, digest, client, via);
    this.#fills.set(digest.value, fill);
    void fill.settled.then(() => {
      if (this.#fills.get(digest.value) === fill) this.#fills.delete(digest.value);
    });
    return { fill, joined: false };
  }
}
