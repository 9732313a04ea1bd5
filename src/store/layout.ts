// Paths under rootdirectory. Blobs use distribution's layout, so an existing registry
// volume reads as a warm cache:  docker/registry/v2/blobs/<alg>/<first two hex>/<hex>/data
// Spool files live under the same root (same filesystem), so publishing is one atomic rename.
import { join } from 'node:path';
import type { Digest } from './digest.js';

export class Layout {
  readonly root: string;
  readonly blobsDir: string;
  readonly spoolDir: string;
  /** Evicted or quarantined files wait here before deletion (readers elsewhere may hold them). */
  readonly trashDir: string;

  constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, 'docker', 'registry', 'v2', 'blobs');
    this.spoolDir = join(root, 'docker', 'registry', 'v2', '_dtr-cache', 'spool');
    this.trashDir = join(root, 'docker', 'registry', 'v2', '_dtr-cache', 'trash');
  }

  blobData(d: Digest): string {
    return join(this.blobsDir, d.algorithm, d.hex.slice(0, 2), d.hex, 'data');
  }

  /** A trash name that sorts by time: `<alg>-<hex>-<ms>`. */
  trash(d: Digest, now: number): string {
    return join(this.trashDir, `${d.algorithm}-${d.hex}-${now}`);
  }

  /**
   * A digest's spool claim: replicas sharing the root find each other's fill by this name.
   * Each writer's data file sits beside it as `<claim>.<writer>` (store/spool.ts).
   */
  spool(d: Digest): string {
    return join(this.spoolDir, `${d.algorithm}-${d.hex}`);
  }
}
