// Paths under rootdirectory. Blobs use distribution's layout, so an existing registry
// volume reads as a warm cache:  docker/registry/v2/blobs/<alg>/<first two hex>/<hex>/data
// Spool files live under the same root (same filesystem), so publishing is one atomic rename.
import { join } from 'node:path';
import type { Digest } from './digest.js';

export class Layout {
  readonly root: string;
  readonly blobsDir: string;
  readonly spoolDir: string;

  constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, 'docker', 'registry', 'v2', 'blobs');
    this.spoolDir = join(root, 'docker', 'registry', 'v2', '_dtr-cache', 'spool');
  }

  blobData(d: Digest): string {
    return join(this.blobsDir, d.algorithm, d.hex.slice(0, 2), d.hex, 'data');
  }

  /** One spool per digest: replicas sharing the root find each other's fill by name. */
  spool(d: Digest): string {
    return join(this.spoolDir, `${d.algorithm}-${d.hex}`);
  }
}
