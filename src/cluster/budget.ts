// What one serving process may use when a node runs several: the node's budgets divided,
// so that N processes cost what one did, not N times it.
import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.js';
import { SMALL_BLOBS_TOTAL } from '../store/blob-store.js';

/**
 * Read buffers of the node's responses (large blobs are sent from them) hold at most this
 * much in all, whatever the client count (server/send-blob.ts).
 */
export const READ_BUFFERS_TOTAL = 8 << 20;

/**
 * Blobs filled through memory (fill/small-blob.ts) hold at most this much in all while their
 * fills last; a blob that finds it spent takes the worker path instead.
 */
export const BUFFERED_FILLS_TOTAL = 32 << 20;

export interface ProcessBudget {
  /** piscina threads (hashing, spool writes) in this process: about cores / processes in all. */
  readonly threads: number;
  /** Memory for small blobs' contents in this process: the node's budget divided. */
  readonly smallBlobBytes: number;
  /** Read buffers of this process's responses: the node's budget divided. */
  readonly readBufferBytes: number;
  /** Bodies of this process's fills buffered whole: the node's budget divided. */
  readonly bufferedFillBytes: number;
}

/** The configured process count: `auto` is one per core the process may run on. */
export function resolveProcesses(config: Config, cores = availableParallelism()): number {
  return config.http.processes === 'auto' ? cores : config.http.processes;
}

/**
 * Worker threads across the node add up to about the core count: each process's main thread
 * takes a core's share, and the rest of its share goes to its pool, at least one thread
 * (fills need one) and at most four (tasks are async: many fills share a thread, and each
 * thread costs ~9 MiB RSS). One process gets cores - 1; one process per core, 1 each.
 */
export function processBudget(processes: number, cores = availableParallelism()): ProcessBudget {
  return {
    threads: Math.max(1, Math.min(4, Math.floor(cores / processes) - 1)),
    smallBlobBytes: Math.floor(SMALL_BLOBS_TOTAL / processes),
    readBufferBytes: Math.floor(READ_BUFFERS_TOTAL / processes),
    bufferedFillBytes: Math.floor(BUFFERED_FILLS_TOTAL / processes),
  };
}
