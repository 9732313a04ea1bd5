// One mirrored registry, assembled from its config: the upstream client (with its own CA
// trust and credentials), its repository records on disk, and its manifest source. Blobs go
// through the node's shared fill and store.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config, MirrorConfig } from '../config/types.js';
import type { RequestRecord } from '../server/context.js';
import type { Req, ResLike } from '../server/http-types.js';
import type { BlobStore } from '../store/blob-store.js';
import { loadUpstreamTrust } from '../upstream/trust.js';
import type { Credentials } from './auth.js';
import { ClaimDir } from './claims.js';
import { ManifestContent } from './content.js';
import { ManifestSource, type MirrorParts } from './manifests.js';
import { RepoRecords } from './records.js';
import { SingleFlight } from './single-flight.js';
import { MirrorUpstream } from './upstream.js';

/** One request to a mirrored registry, as the route handlers take it. */
export interface MirrorCall {
  mirror: Mirror;
  /** The repository at the upstream (`library/` added for Docker Hub). */
  repo: string;
  /** The tag or digest of the path. */
  reference: string;
  /** The client named the registry as the path's first component (`/v2/ghcr.io/org/app/…`). */
  prefixed: boolean;
  query: URLSearchParams;
  req: Req;
  res: ResLike;
  rec: RequestRecord;
}

export interface MirrorDeps {
  store: BlobStore;
  log: Logger;
  timeouts: Config['downstream']['timeouts'];
  /** This node's name in `Via` on upstream requests (the loop guard). */
  viaName: string;
  /** `_dtr-cache/mirror` under the root: one directory per registry, and `tmp/`. */
  dir: string;
  now?: () => number;
}

export class Mirror implements MirrorParts {
  readonly config: MirrorConfig;
  readonly upstream: MirrorUpstream;
  readonly records: RepoRecords;
  readonly content: ManifestContent;
  readonly claims: ClaimDir;
  readonly manifests: ManifestSource;
  /** Upstream HEADs confirming a stored blob in a repository, shared by concurrent requests (blobs.ts). */
  readonly blobChecks = new SingleFlight<number | null>();
  readonly log: Logger;
  readonly now: () => number;

  private constructor(config: MirrorConfig, upstream: MirrorUpstream, deps: MirrorDeps) {
    this.config = config;
    this.upstream = upstream;
    this.now = deps.now ?? Date.now;
    this.log = deps.log.child({ registry: config.registry });
    const tmp = join(deps.dir, 'tmp');
    this.records = new RepoRecords(join(deps.dir, 'registries', config.registry), tmp, config.ttlMs, this.now);
    this.content = new ManifestContent(deps.store, tmp);
    this.claims = new ClaimDir(join(deps.dir, 'claims'));
    this.manifests = new ManifestSource(this);
  }

  static async open(config: MirrorConfig, deps: MirrorDeps): Promise<Mirror> {
    const secureContext = await loadUpstreamTrust(config.cas);
    const upstream = new MirrorUpstream({
      remoteUrl: config.remoteUrl,
      realms: config.realms,
      credentials: await readCredentials(config),
      secureContext,
      connectTimeoutMs: deps.timeouts.connectMs,
      headersTimeoutMs: deps.timeouts.headersMs,
      bodyIdleTimeoutMs: deps.timeouts.bodyIdleMs,
      viaName: deps.viaName,
      log: deps.log.child({ registry: config.registry }),
    });
    return new Mirror(config, upstream, deps);
  }

  get registry(): string {
    return this.config.registry;
  }

  async close(): Promise<void> {
    await this.upstream.close();
  }
}

/** The configured user and password; a passwordfile is read now (its trailing newline dropped). */
async function readCredentials(config: MirrorConfig): Promise<Credentials | null> {
  if (config.username === null || config.password === null) return null;
  const src = config.password;
  const password =
    src.kind === 'value' ? src.secret.reveal() : (await readFile(src.path, 'utf8')).replace(/\r?\n$/, '');
  return { username: config.username, password };
}
