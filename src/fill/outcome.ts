// How a fill ends: one value per fill, reported once (logs, metrics), so every place that
// counts outcomes names the same set.
import type { Logger } from 'pino';
import { DtrCacheError } from '../errors/base.js';
import { messageOf } from '../errors/inspect.js';
import { RegistryError } from '../errors/registry.js';
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

/**
 * A failure with its outcome: `error` is what clients get (a registry error, as a rule),
 * the outcome what is counted and logged.
 */
export class FillFailure extends DtrCacheError<'FILL_FAILED'> {
  readonly outcome: FillOutcome;
  readonly error: Error;
  constructor(outcome: FillOutcome, cause: unknown) {
    super('FILL_FAILED', messageOf(cause), { cause });
    this.outcome = outcome;
    this.error = cause instanceof Error ? cause : this;
  }

  /** Any error a fill met, with its outcome: a registry error is the upstream's, anything else ours. */
  static of(err: unknown): FillFailure {
    return err instanceof FillFailure ? err : new FillFailure(err instanceof RegistryError ? 'upstream' : 'io', err);
  }
}

export function isPublished(outcome: FillOutcome): boolean {
  return outcome === 'published' || outcome === 'published-by-replica';
}

/** The fill's one log line: info when published or refused by the client's fault, else warn or error. */
/**
 * How a fill's bytes went: buffered whole (small-blob.ts), through the ring and the worker
 * (streamed.ts), or read from another process's download (replica.ts); null before any.
 */
export type FillPath = 'memory' | 'worker' | 'replica' | null;

export function logSettled(
  log: Logger,
  fields: {
    digest: string;
    size: number;
    outcome: FillOutcome;
    joins: number;
    ms: number;
    route: unknown;
    through: FillPath;
  },
  error: Error | null,
): void {
  const published = isPublished(fields.outcome);
  const clientError = error instanceof RegistryError && error.status < 500;
  // Stopped because every client left: nothing to alert on.
  const aborted = fields.outcome === 'aborted';
  const level = published || clientError || aborted ? 'info' : error === null ? 'warn' : 'error';
  const msg = published
    ? 'fill published'
    : fields.outcome === 'not-stored'
      ? 'fill streamed through without caching'
      : aborted
        ? 'fill stopped: every client left'
        : 'fill failed';
  log[level]({ ...fields, ...(error === null ? {} : { err: error }) }, msg);
}
