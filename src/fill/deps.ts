// What a fill needs from the rest of the cache, handed in by whoever starts fills (inflight.ts).
import type { Logger } from 'pino';
import type { WorkerPool } from '../pool.js';
import type { BlobStore } from '../store/blob-store.js';
import type { Digest } from '../store/digest.js';
import type { OwnedSpool, SpoolDir } from '../store/spool.js';
import type { ByteSink } from './download.js';
import type { FillOutcome } from './outcome.js';
import type { FillBytes, FillClient } from './readers.js';

export interface FillDeps {
  pool: WorkerPool;
  store: BlobStore;
  spools: SpoolDir;
  log: Logger;
  /** After a blob is published (eviction checks the size cap here). */
  onPublished?: (digest: Digest, size: number) => void;
  /** A write met a full disk (eviction empties its trash). */
  onDiskFull?: () => void;
  /** Observers (metrics); `upstreamBytes` runs per chunk, so both must be cheap. */
  hooks?: FillHooks;
  /** Shared by all fills, so a full disk is logged once per episode, not per fill or chunk. */
  disk: { full: boolean };
  /** Whole blocks of spool data go to disk with O_DIRECT where the filesystem takes it. */
  directWrites: boolean;
  /**
   * In a node of several processes: a credential of a client following another process's
   * download, for that process's retries (Fill.offer there; cluster/member.ts carries it).
   */
  shareCredential?: (digest: Digest, client: FillClient) => void;
  /** A fault-injection hook for tests: the worker (or the small-blob path) waits this long between verdict and fsync. */
  publishDelayMs?: number;
}

/** What the small-blob and the streamed paths get from their fill. */
export interface BodyContext {
  deps: FillDeps;
  digest: Digest;
  size: number;
  finalPath: string;
  /** Null: the disk could not take a spool, and the bytes are served without being kept. */
  spool: OwnedSpool | null;
  /** The fill's readers read through `bytes` from now on (their headers go out). */
  opened(bytes: Pick<FillBytes, 'arrived' | 'read'>): void;
  /** The download's sink over `sink`: the fill wakes its readers as bytes arrive. */
  sink(sink: ByteSink): ByteSink;
  /** The digest and size verified: every client's last byte may go. */
  verified(): void;
}

export interface FillHooks {
  upstreamBytes(host: string, bytes: number): void;
  settled(s: { outcome: FillOutcome; size: number; joins: number }): void;
}
