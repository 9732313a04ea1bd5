// What the handlers need, wired once by main.ts.
import type { Logger } from 'pino';
import type { KeySet } from '../auth/keyset.js';
import type { AccessLog } from '../log/access-log.js';
import type { TokenVerifier } from '../auth/token.js';
import type { Inflight } from '../fill/inflight.js';
import type { MirrorService } from '../mirror/service.js';
import type { BlobStore } from '../store/blob-store.js';
import type { UpstreamChain } from '../upstream/chain.js';

export interface AppContext {
  store: BlobStore;
  inflight: Inflight;
  chain: UpstreamChain;
  verifier: TokenVerifier;
  keys: KeySet;
  log: Logger;
  /** One `request` line per request; null with `log.accesslog.disabled: true`. */
  accessLog: AccessLog | null;
  /** Request metrics (src/metrics), when http.debug.prometheus is enabled. */
  metrics?: RequestMetrics;
  /** Mirror mode (src/mirror), when `proxy` or `mirrors` is configured. */
  mirror?: MirrorService;
}

export interface RequestMetrics {
  /**
   * `failed`: the request ended in an error (after its headers, when status < 400).
   * `seconds`: from its arrival to its end; `firstByte`: to its first body byte, if any.
   */
  request(
    route: RequestRecord['route'],
    method: string | undefined,
    status: number,
    outcome: RequestRecord['outcome'],
    bytes: number,
    failed: boolean,
    seconds: number,
    firstByte: number | undefined,
  ): void;
}

/** What one request did, for its log line (and metrics). */
export interface RequestRecord {
  route: 'blob' | 'manifest' | 'referrers' | 'tags' | 'base' | 'jwks' | 'other';
  /** The mirrored registry that served it (mirror mode). */
  registry?: string;
  repo?: string;
  digest?: string;
  /** `revalidated`: a tag checked upstream and unchanged; `stale`: served without the upstream (mirror mode). */
  outcome?: 'hit' | 'miss' | 'joined' | 'head-upstream' | 'not-modified' | 'revalidated' | 'stale' | 'error';
  bytes: number;
  /** When the client's socket took the first body byte of a blob (process.hrtime.bigint()). */
  firstByteAt?: bigint;
  error?: string;
}
