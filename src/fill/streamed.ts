// Large blobs: the download writes into the ring, a worker hashes and appends each region to
// the spool's data file, and readers read recent bytes from memory and older ones from the
// file (stream-store.ts). The worker's verdict comes as soon as the last byte is hashed; its
// result, after the fsync and the publication.
import type { FileHandle } from 'node:fs/promises';
import { messageOf } from '../errors/inspect.js';
import type { SpoolResult } from '../../workers/types.js';
import type { BodyContext } from './deps.js';
import { spoolWriteFailed, unlessDiskFull } from './disk-full.js';
import type { Download } from './download.js';
import { FillFailure, spoolFailure, type FillOutcome } from './outcome.js';
import { SpoolRing } from './ring.js';
import { StreamStore } from './stream-store.js';
import { followedMarker } from '../store/spool.js';

/** Bytes in flight between upstream and the worker, per fill (the ring). */
const RING_SIZE = 4 << 20;

export interface StreamedFill extends BodyContext {
  /** A handle the fill closes once its last reader has gone. */
  keep(handle: FileHandle): void;
  /** The worker finished a region. */
  progress(): void;
  /** The worker's first failed write: bytes from `offset` on are in memory only. */
  writeFailed(offset: number, store: StreamStore): void;
  /** The furthest reader position between `from` and `to`: the ring keeps it in memory. */
  fastestReader(from: number, to: number): number | null;
}

/** How the fill ended: the worker's outcome, or the download stopped (the fill says why). */
export type StreamedResult = { kind: 'spooled'; outcome: FillOutcome } | { kind: 'stopped'; err: unknown };

/**
 * Streams the rest of the blob from `startOffset` (a continuation's first bytes are in
 * `prefix`, the file of the writer it continues).
 */
export async function streamToWorker(
  fill: StreamedFill,
  download: Download,
  startOffset: number,
  prefix: FileHandle | null,
): Promise<StreamedResult> {
  const { deps, digest, spool } = fill;
  // No data file when the disk cannot take one: the bytes then stream through memory. (Opened
  // before the ring exists: a failure here has nothing else to undo.)
  const dataPath =
    spool === null ? null : await unlessDiskFull(deps, digest, () => spool.dataFile().then(() => spool.dataPath));
  const file = dataPath === null || spool === null ? null : await spool.takeReader();
  if (file !== null) fill.keep(file);
  const ring = new SpoolRing(Math.min(RING_SIZE, fill.size - startOffset), startOffset, {
    progress: () => fill.progress(),
    writeFailed: (offset, code) => {
      fill.writeFailed(offset, store);
      spoolWriteFailed(deps, digest, code);
      fill.progress();
    },
    verdict: (ok) => {
      if (!ok) return;
      fill.verified();
      spool?.setVerified().catch(() => undefined);
    },
    fastestReader: (from, to) => fill.fastestReader(from, to),
  });
  const store = new StreamStore(ring, file, prefix === null ? null : { file: prefix, end: startOffset });
  let result: Promise<SpoolResult>;
  try {
    result = deps.pool.spool({
      dataPath,
      finalPath: fill.finalPath,
      algorithm: digest.algorithm,
      expectedHex: digest.hex,
      prefixFd: prefix?.fd ?? null,
      startOffset,
      ring: ring.buffer,
      port: ring.workerPort,
      publishDelayMs: deps.publishDelayMs ?? 0,
      directWrites: deps.directWrites,
      followedMarker: dataPath === null ? null : followedMarker(dataPath),
    });
  } catch (err) {
    ring.close();
    throw err;
  }
  // A lost worker (crash, pool closed) fails the fill, not the process.
  const spooled = result.catch((err: unknown): SpoolResult => ({
    ok: false,
    reason: 'io',
    code: 'EWORKER',
    message: messageOf(err),
  }));
  fill.opened(store);
  try {
    if (download.received < fill.size) await download.run(fill.sink(store));
    ring.end(fill.size);
  } catch (err) {
    ring.abort();
    await spooled;
    return { kind: 'stopped', err };
  }
  return { kind: 'spooled', outcome: afterSpool(fill, await spooled, download) };
}

function afterSpool(fill: StreamedFill, result: SpoolResult, download: Download): FillOutcome {
  // The verdict also came as a ring message, but on another channel: the result may arrive first.
  if (result.ok) {
    fill.verified();
    fill.deps.store.add(fill.digest, fill.size);
    // Another writer of the same blob (a replica that took our stalled spool over) was first.
    return result.published ? 'published' : 'published-by-replica';
  }
  if (result.reason === 'not-stored' && result.digestMatches) {
    fill.verified();
    return 'not-stored';
  }
  if (result.reason === 'digest-mismatch') download.blameBadBytes(result.actualHex);
  const outcome = result.reason === 'not-stored' ? 'digest-mismatch' : result.reason;
  throw new FillFailure(outcome, spoolFailure(result));
}
