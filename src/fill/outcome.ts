// How a fill ends: one value per fill, reported once (logs, metrics), so every place that
// counts outcomes names the same set.
import { gatewayError } from '../errors/upstream.js';
import type { SpoolResult } from '../../workers/types.js';

export type FillOutcome =
  /** Verified, made durable and published: the next request is a hit. */
  | 'published'
  /** A replica sharing the root published it while this fill followed its spool. */
  | 'published-by-replica'
  /** Verified and served, but not kept: the disk was full or failed. */
  | 'not-stored'
  | 'digest-mismatch'
  | 'size-mismatch'
  /** No upstream could serve it, or one refused it (a relayed 4xx). */
  | 'upstream'
  /** Stopped with nobody left to serve and nothing it could keep. */
  | 'aborted'
  /** A local failure: the spool, the worker. */
  | 'io';

export const FILL_OUTCOMES: readonly FillOutcome[] = [
  'published',
  'published-by-replica',
  'not-stored',
  'digest-mismatch',
  'size-mismatch',
  'upstream',
  'aborted',
  'io',
];

/** The client-facing error of a spool task that failed. */
export function spoolFailure(result: Exclude<SpoolResult, { ok: true }>): Error {
  switch (result.reason) {
    case 'digest-mismatch':
      return gatewayError('status', `upstream bytes do not match the digest (got ${result.actualHex.slice(0, 16)}…)`);
    case 'size-mismatch':
      return gatewayError('status', `upstream sent ${result.size} bytes, expected ${result.expectedSize}`);
    case 'aborted':
      return gatewayError('reset', 'fill aborted');
    case 'io':
      return gatewayError('status', `spool write failed: ${result.code} ${result.message}`);
    case 'not-stored':
      return gatewayError('status', `upstream bytes do not match the digest (disk write failed too: ${result.code})`);
  }
}
