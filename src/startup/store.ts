// Opening the store: spools of dead writers removed, then the index rebuilt from disk.
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { BlobStore } from '../store/blob-store.js';
import { Layout } from '../store/layout.js';
import { SpoolDir } from '../store/spool.js';

export interface OpenStoreOptions {
  smallBlobBytes: number;
  /**
   * null: remove dead spools here. A number: the node's supervisor already did, before any
   * serving process ran (a process replaced later must not remove a spool another process
   * is about to take over); it is only reported.
   */
  removedSpools: number | null;
}

export async function openStore(config: Config, log: Logger, opts: OpenStoreOptions): Promise<BlobStore> {
  const layout = new Layout(config.storage.rootDirectory);
  const store = new BlobStore(layout, { ttlMs: config.downstream.blobTtlMs, smallBlobBytes: opts.smallBlobBytes });
  const removedSpools = opts.removedSpools ?? (await new SpoolDir(layout, config.downstream.replicas).sweep());
  const started = Date.now();
  const scanned = await store.scan();
  log.info(
    { blobs: scanned.count, bytes: scanned.bytes, ms: Date.now() - started, removedSpools, root: layout.root },
    'store indexed',
  );
  return store;
}

/** The supervisor's clean-up before it starts the serving processes. */
export function removeDeadSpoolsAtStart(config: Config): Promise<number> {
  return new SpoolDir(new Layout(config.storage.rootDirectory), config.downstream.replicas).sweep();
}
