// Counters and a bounded request log of the mock origin, for tests and benchmarks.

export interface BlobCounts {
  /** Answered 307 to a content cache. */
  redirected: number;
  /** Answered with the blob (200/206/304). */
  served: number;
  /** Answered with an error, or cut off by a fault. */
  failed: number;
}

export interface BlobStats {
  get: BlobCounts;
  head: BlobCounts;
  /** Body bytes written for this blob. */
  bytesSent: number;
}

export interface LogEntry {
  /** Epoch milliseconds at the end of the request. */
  ts: number;
  method: string;
  /** Path only: no query string, so no token. */
  path: string;
  range: string | null;
  /** 0 when the socket was destroyed before a status went out. */
  status: number;
  user: string | null;
}

export interface StatsSnapshot {
  blobs: Record<string, BlobStats>;
  totals: {
    requests: number;
    blobGet: BlobCounts;
    blobHead: BlobCounts;
    bytesSent: number;
  };
  log: LogEntry[];
}

const zero = (): BlobCounts => ({ redirected: 0, served: 0, failed: 0 });

export type BlobOutcome = keyof BlobCounts;

export class Stats {
  private blobs = new Map<string, BlobStats>();
  private log: LogEntry[] = [];
  private requests = 0;

  constructor(private readonly logLimit: number) {}

  private entry(digest: string): BlobStats {
    let e = this.blobs.get(digest);
    if (e === undefined) {
      e = { get: zero(), head: zero(), bytesSent: 0 };
      this.blobs.set(digest, e);
    }
    return e;
  }

  blob(digest: string, method: string, outcome: BlobOutcome): void {
    const e = this.entry(digest);
    (method === 'HEAD' ? e.head : e.get)[outcome] += 1;
  }

  bytes(digest: string, n: number): void {
    this.entry(digest).bytesSent += n;
  }

  request(entry: LogEntry): void {
    this.requests += 1;
    this.log.push(entry);
    if (this.log.length > this.logLimit) this.log.splice(0, this.log.length - this.logLimit);
  }

  reset(): void {
    this.blobs = new Map();
    this.log = [];
    this.requests = 0;
  }

  snapshot(): StatsSnapshot {
    const blobGet = zero();
    const blobHead = zero();
    let bytesSent = 0;
    const blobs: Record<string, BlobStats> = {};
    for (const [d, e] of this.blobs) {
      blobs[d] = { get: { ...e.get }, head: { ...e.head }, bytesSent: e.bytesSent };
      for (const k of ['redirected', 'served', 'failed'] as const) {
        blobGet[k] += e.get[k];
        blobHead[k] += e.head[k];
      }
      bytesSent += e.bytesSent;
    }
    return {
      blobs,
      totals: { requests: this.requests, blobGet, blobHead, bytesSent },
      log: this.log.map((l) => ({ ...l })),
    };
  }
}
