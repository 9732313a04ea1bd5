// The clients of one fill: each joins before or after the first bytes, reads from its own
// position, and leaves when it likes. Here each becomes a BlobSource over the fill's bytes;
// the positions tell the fill which bytes held only in memory nobody needs any more.
import type { BlobSource } from './source.js';
import type { Signal } from './signal.js';

/** A client of a fill; `token`/`exp` is its credential (the newest is used for retries). */
export interface FillClient {
  token: string;
  /** The token's `exp`, seconds since epoch. */
  exp: number;
  /** The repository the client asked under, which its token is for (a retry's path names it). */
  name: string;
}

/** The fill as its readers see it. */
export interface FillBytes {
  readonly size: number;
  /** Exclusive end of the bytes readable now. */
  arrived(): number;
  verified(): boolean;
  failure(): Error | null;
  read(buf: Buffer, position: number, length: number): Promise<number>;
  /** Notified whenever arrived(), verified() or failure() changes. */
  readonly progress: Signal;
}

export interface ReaderEvents {
  /** A reader moved on or left: memory behind the slowest may be dropped. */
  moved(): void;
  /** A reader released its source (after its response ended). */
  released(): Promise<void>;
}

export class Readers {
  readonly #clients = new Set<FillClient>();
  readonly #positions = new Map<FillClient, number>();
  /** Clients cut off (`cutAt`): their next look at the fill fails with this error. */
  readonly #cut = new Map<FillClient, Error>();
  readonly #events: ReaderEvents;
  #offered: FillClient | null = null;

  constructor(events: ReaderEvents) {
    this.#events = events;
  }

  /** Clients waiting for the fill's headers or reading it. */
  get count(): number {
    return this.#clients.size;
  }

  add(client: FillClient): void {
    this.#clients.add(client);
  }

  remove(client: FillClient): void {
    this.#clients.delete(client);
    this.#positions.delete(client);
    this.#events.moved();
  }

  /**
   * A credential of this blob's clients in another process of the node, which follow this
   * fill: its retries may need it when every token here has expired.
   */
  offer(client: FillClient): void {
    if (this.#offered === null || client.exp > this.#offered.exp) this.#offered = client;
  }

  /** The client with the newest credential among those still here (or offered), or `fallback`. */
  newest(fallback: FillClient): FillClient {
    let best = this.#offered !== null && this.#offered.exp > fallback.exp ? this.#offered : fallback;
    for (const c of this.#clients) if (c.exp > best.exp) best = c;
    return best;
  }

  /** The lowest position any reader still needs (`limit` when none reads). */
  slowest(limit: number): number {
    let low = limit;
    for (const pos of this.#positions.values()) low = Math.min(low, pos);
    return low;
  }

  /**
   * Cuts off every reader at `position`: it holds nothing from now on, and its response
   * fails with `err` (a reset, never a clean end) the next time it looks at the fill.
   * Returns how many were cut.
   */
  cutAt(position: number, err: Error): number {
    let n = 0;
    for (const [client, pos] of this.#positions) {
      if (pos !== position) continue;
      this.#positions.delete(client);
      this.#cut.set(client, err);
      n++;
    }
    if (n > 0) this.#events.moved();
    return n;
  }

  /** The furthest position between `from` and `to` that a reader has reached (null: none there). */
  fastestBetween(from: number, to: number): number | null {
    let high: number | null = null;
    for (const pos of this.#positions.values())
      if (pos >= from && pos <= to && (high === null || pos > high)) high = pos;
    return high;
  }

  source(client: FillClient, bytes: FillBytes): BlobSource {
    this.#positions.set(client, 0);
    let released = false;
    return {
      size: bytes.size,
      read: async (buf, position, length) => {
        const got = await bytes.read(buf, position, length);
        if (this.#positions.has(client)) this.#positions.set(client, position + got);
        this.#events.moved();
        return got;
      },
      startingAt: (position) => {
        if ((this.#positions.get(client) ?? 0) >= position) return;
        this.#positions.set(client, position);
        this.#events.moved();
      },
      doneReading: () => {
        if (this.#positions.delete(client)) this.#events.moved();
      },
      available: () => bytes.arrived(),
      verified: () => bytes.verified(),
      failure: () => this.#cut.get(client) ?? bytes.failure(),
      waitForMore: () => bytes.progress.wait(),
      release: async () => {
        if (released) return;
        released = true;
        this.#cut.delete(client);
        this.remove(client);
        await this.#events.released();
      },
    };
  }
}
