// Descriptors and results of the worker tasks. Errors lose their class when they
// cross threads, so every task returns a typed union instead of throwing.
import type { MessagePort } from 'node:worker_threads';

export type HashAlgorithm = 'sha256' | 'sha512';

/** Appends the bytes a fill receives to its spool, hashing them, then verifies and publishes. */
export interface SpoolTask {
  /**
   * The spool file, already created (exclusively) by the main thread; null when the disk
   * could not take even that: the task then only hashes (the bytes stream through).
   */
  spoolPath: string | null;
  /** Where the verified blob is renamed to. */
  finalPath: string;
  algorithm: HashAlgorithm;
  expectedHex: string;
  /** Bytes already in the spool (a take-over resumes after them); normally 0. */
  startOffset: number;
  /**
   * The fill's byte ring, shared with the main thread: the main thread copies upstream
   * bytes in and names the region in a `chunk` message; the region is not reused until the
   * worker has reported it `written`. One fixed ring per fill means no per-chunk allocation
   * on either thread, and the ring size bounds the bytes between upstream and disk.
   */
  ring: SharedArrayBuffer;
  /** Receives SpoolMessage from the main thread; sends SpoolProgress back. */
  port: MessagePort;
}

/** Main thread → worker, in order. A chunk names a region of the ring (never wrapping). */
export type SpoolMessage =
  { type: 'chunk'; at: number; length: number } | { type: 'end'; expectedSize: number | null } | { type: 'abort' };

/** Worker → main thread: bytes durably appended so far (readable by others via the page cache). */
export type SpoolProgress =
  | { type: 'written'; offset: number }
  /** Bytes hashed but not stored: after a write failed, the task hashes on so the digest is still checked. */
  | { type: 'hashed'; offset: number }
  /** The first write failure: bytes up to `offset` are on disk, none after. */
  | { type: 'write-failed'; offset: number; code: string; message: string };

export type SpoolResult =
  | { ok: true; size: number; published: string }
  | { ok: false; reason: 'digest-mismatch'; size: number; actualHex: string }
  | { ok: false; reason: 'size-mismatch'; size: number; expectedSize: number }
  | { ok: false; reason: 'aborted'; size: number }
  /** Nothing was published because writes failed; `digestMatches` says whether the bytes were good. */
  | { ok: false; reason: 'not-stored'; size: number; digestMatches: boolean; code: string }
  | { ok: false; reason: 'io'; code: string; message: string };

/** Re-hashes a stored file: used by scrub and by the take-over of a stale spool. */
export interface HashFileTask {
  path: string;
  algorithm: HashAlgorithm;
  /** Hash only the first `length` bytes; null = the whole file. */
  length: number | null;
}

export type HashFileResult = { ok: true; hex: string; size: number } | { ok: false; code: string; message: string };
