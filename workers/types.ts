// Descriptors and results of the worker tasks. Errors lose their class when they
// cross threads, so every task returns a typed union instead of throwing.
import type { MessagePort } from 'node:worker_threads';

export type HashAlgorithm = 'sha256' | 'sha512';

/**
 * Appends the bytes a fill receives to this writer's own data file, hashing them; at the
 * end reports the verdict at once (clients wait for it), then makes the file durable and
 * publishes it (nobody waits for that but the next request).
 */
export interface SpoolTask {
  /**
   * This writer's data file, created empty and exclusively by the main thread; null when
   * the disk could not take even that: the task then only hashes (bytes stream through).
   */
  dataPath: string | null;
  /** Where the verified blob is published (a hard link, so a second writer finds it taken). */
  finalPath: string;
  algorithm: HashAlgorithm;
  expectedHex: string;
  /**
   * A continuation of another writer's fill (it died, or gave up): the first `startOffset`
   * bytes are read from its data file, open on the main thread as this descriptor (threads
   * share the process's descriptors), hashed and, when there is a data file, copied, before
   * any chunk; so this writer's file and hash cover exactly the bytes its clients got.
   */
  prefixFd: number | null;
  startOffset: number;
  /**
   * The fill's byte ring, shared with the main thread: the main thread copies upstream
   * bytes in and names the region in a `chunk` message; the region is not reused until the
   * worker has reported it done. One fixed ring per fill means no per-chunk allocation on
   * either thread, and the ring size bounds the bytes between upstream and disk.
   */
  ring: SharedArrayBuffer;
  /** Receives SpoolMessage from the main thread; sends SpoolProgress back. */
  port: MessagePort;
  /** A fault-injection hook for tests: wait this long between the verdict and the fsync. */
  publishDelayMs: number;
  /** Whole blocks go to disk with O_DIRECT where the filesystem takes it (spool-file.ts)… */
  directWrites: boolean;
  /**
   * …until this file exists: a reader in another process follows the data file, and would
   * read every direct-written block back from the disk rather than from the page cache.
   */
  followedMarker: string | null;
}

/** Main thread → worker, in order. A chunk names a region of the ring (never wrapping). */
export type SpoolMessage =
  { type: 'chunk'; at: number; length: number } | { type: 'end'; expectedSize: number } | { type: 'abort' };

/** Worker → main thread. */
export type SpoolProgress =
  /** The worker is done with the ring up to `done` (hashed, and written or failed); `written` bytes are in the file. */
  | { type: 'progress'; done: number; written: number }
  /** The first write failure: bytes up to `offset` are in the file, none after; hashing goes on. */
  | { type: 'write-failed'; offset: number; code: string; message: string }
  /** After `end`: whether size and digest hold. Sent before the fsync, so clients need not wait for it. */
  | { type: 'verdict'; ok: boolean; size: number; actualHex: string };

export type SpoolResult =
  /** `published` is false when another writer had published the same blob first. */
  | { ok: true; size: number; published: boolean }
  | { ok: false; reason: 'digest-mismatch'; size: number; actualHex: string }
  | { ok: false; reason: 'size-mismatch'; size: number; expectedSize: number }
  | { ok: false; reason: 'aborted'; size: number }
  /** Nothing was published because the disk failed; `digestMatches` says whether the bytes were good. */
  | { ok: false; reason: 'not-stored'; size: number; digestMatches: boolean; code: string }
  | { ok: false; reason: 'io'; code: string; message: string };

/** Re-hashes a stored file: used by scrub. */
export interface HashFileTask {
  path: string;
  algorithm: HashAlgorithm;
  /** Hash only the first `length` bytes; null = the whole file. */
  length: number | null;
}

export type HashFileResult = { ok: true; hex: string; size: number } | { ok: false; code: string; message: string };
