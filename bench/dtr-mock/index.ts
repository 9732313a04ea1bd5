// The DTR mock origin: a small but real registry (push and pull with real
// clients), DTR's content-cache API, and signed 307 redirects to content caches
// (docs/protocol.md). Started in-process by tests, or as a process by main.ts.
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { RegistryTokens, UserDb, type UserSpec } from './auth.js';
import { ContentCaches, type ContentCache } from './caches-api.js';
import type { Knobs, MockContext } from './context.js';
import { Faults, type Fault } from './faults.js';
import { DEFAULT_TTL_SEC, KeyRing, MAX_TTL_SEC, type MintOptions, type SigningAlg } from './keys.js';
import { ManifestIndex } from './manifests.js';
import type { MockConfigPatch, MockControl } from './mock-api.js';
import { seedBlob, seedManifest, seedOciLayout } from './seed.js';
import { createMockServer, type TlsMaterial } from './server.js';
import { Stats, type StatsSnapshot } from './stats.js';
import { DirectoryStorage, MemoryStorage } from './storage.js';

export type { UserSpec, Action } from './auth.js';
export type { ContentCache } from './caches-api.js';
export type { Knobs } from './context.js';
export type { Fault } from './faults.js';
export type { MintOptions, SigningAlg } from './keys.js';
export type { MockConfigPatch } from './mock-api.js';
export type { StatsSnapshot, BlobStats, BlobCounts, LogEntry } from './stats.js';
export type { TlsMaterial } from './server.js';

export interface DtrMockOptions {
  /** Listen address; 127.0.0.1 by default. */
  host?: string;
  /** 0 (any free port) by default. */
  port?: number;
  /** Host name used in `url` and the token realm; `localhost` by default (test certificates cover it). */
  publicHost?: string;
  /** PEM certificate and key: HTTPS. Without: plain HTTP. */
  tls?: TlsMaterial;
  /** 'memory' (default) or a directory that is created when missing. */
  storage?: 'memory' | { dir: string };
  /** Users by name. When none is an admin, `admin`/`admin` is added. */
  users?: Record<string, UserSpec>;
  /** Token `service` and audience; `dtr-mock` by default. */
  service?: string;
  /** `iss` of redirect tokens; `dtr-mock` by default. */
  issuer?: string;
  /** Redirect-token signing algorithm; ES256 by default. */
  alg?: SigningAlg;
  /** How long a rotated-out public key stays published and accepted; 3600 s by default. */
  keepOldKeysSec?: number;
  /** Registry bearer-token lifetime; 900 s by default. */
  registryTokenTtlSec?: number;
  /** Redirect-token lifetime; 300 s by default, at most 1200. */
  redirectTtlSec?: number;
  latencyMs?: number;
  bandwidth?: number | null;
  /** How long an idle client connection is kept open (ms); 5 s by default, as Node's. */
  keepAliveMs?: number;
  /** false: anyone may pull without auth, and nothing is redirected. */
  tokens?: boolean;
  faults?: Record<string, Fault>;
  /** Manifest PUT checks that referenced blobs and manifests exist; true by default. */
  verifyManifestRefs?: boolean;
  /** Request-log entries kept; 1000 by default. */
  logLimit?: number;
  /** Serve the referrers API (OCI distribution 1.1); true by default. */
  referrers?: boolean;
  /**
   * Serve a blob only from a repository it belongs to (pushed there, or referenced by one of
   * its manifests), as distribution does; false by default (the bench's corpus has no manifests).
   */
  scopeBlobs?: boolean;
}

export interface DtrMock {
  /** e.g. `https://localhost:PORT` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly service: string;
  readonly issuer: string;
  close(): Promise<void>;
  stats(): StatsSnapshot;
  resetStats(): void;
  /** New signing keys; old public keys stay published unless `dropOld`. Returns the new kid. */
  rotateKey(opts?: { dropOld?: boolean }): Promise<string>;
  /** The kid new redirect tokens are signed with. */
  currentKid(): string;
  setFaults(digest: string, fault: Fault | null): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  setBandwidth(bytesPerSec: number | null): void;
  setTokens(on: boolean): void;
  configure(patch: MockConfigPatch): void;
  knobs(): Readonly<Knobs>;
  mintRedirectToken(o: MintOptions): Promise<string>;
  /** Stores a blob from bytes or from a file path (streamed). */
  putBlob(name: string, content: Buffer | string): Promise<{ digest: string; size: number }>;
  putManifest(
    name: string,
    reference: string,
    manifest: Buffer | string | object,
    mediaType?: string,
  ): Promise<{ digest: string; size: number }>;
  /** Removes a tag of `name` (its manifest stays by digest); false when there was none. */
  deleteTag(name: string, tag: string): Promise<boolean>;
  /** Copies an OCI image layout (blobs and manifests) into `name`, tagged. */
  putOciLayout(layoutDir: string, name: string, tag?: string): Promise<{ digest: string; tag: string }[]>;
  addUser(name: string, spec: UserSpec): void;
  addContentCache(name: string, host: string): ContentCache;
  setContentCache(user: string, cacheName: string | null): void;
  jwks(): { keys: JWK[] };
}

export async function startDtrMock(opts: DtrMockOptions = {}): Promise<DtrMock> {
  const service = opts.service ?? 'dtr-mock';
  const issuer = opts.issuer ?? 'dtr-mock';
  const users = new UserDb(opts.users ?? {});
  if (!Object.values(opts.users ?? {}).some((u) => u.admin === true))
    users.set('admin', { password: 'admin', admin: true });
  const storage =
    opts.storage === undefined || opts.storage === 'memory'
      ? new MemoryStorage()
      : new DirectoryStorage(opts.storage.dir);
  await storage.init();
  const manifests = new ManifestIndex(storage, storage instanceof DirectoryStorage ? storage.root : undefined);
  await manifests.init();
  const keys = new KeyRing({ alg: opts.alg ?? 'ES256', issuer, keepOldKeysSec: opts.keepOldKeysSec ?? 3600 });
  await keys.init();
  const faults = new Faults();
  for (const [d, f] of Object.entries(opts.faults ?? {})) faults.set(d, f);

  const ctx: MockContext = {
    baseUrl: '',
    service,
    verifyManifestRefs: opts.verifyManifestRefs ?? true,
    referrersApi: opts.referrers ?? true,
    scopeBlobs: opts.scopeBlobs ?? false,
    users,
    tokens: new RegistryTokens(users, { service, issuer, ttlSec: opts.registryTokenTtlSec ?? 900 }),
    keys,
    caches: new ContentCaches(),
    storage,
    manifests,
    uploads: new Map(),
    faults,
    stats: new Stats(opts.logLimit ?? 1000),
    knobs: {
      latencyMs: opts.latencyMs ?? 0,
      bandwidth: opts.bandwidth ?? null,
      tokens: opts.tokens ?? true,
      redirectTtlSec: Math.min(opts.redirectTtlSec ?? DEFAULT_TTL_SEC, MAX_TTL_SEC),
      manifestStatus: null,
    },
  };

  const configure = (p: MockConfigPatch): void => {
    if (p.latencyMs !== undefined) ctx.knobs.latencyMs = p.latencyMs;
    if (p.bandwidth !== undefined) ctx.knobs.bandwidth = p.bandwidth;
    if (p.tokens !== undefined) ctx.knobs.tokens = p.tokens;
    if (p.redirectTtlSec !== undefined) ctx.knobs.redirectTtlSec = Math.min(p.redirectTtlSec, MAX_TTL_SEC);
    if (p.manifestStatus !== undefined) ctx.knobs.manifestStatus = p.manifestStatus;
    if (p.clearFaults === true) faults.clear();
    for (const [d, f] of Object.entries(p.faults ?? {})) faults.set(d, f);
  };
  const control: MockControl = {
    configure,
    stats: () => ctx.stats.snapshot(),
    resetStats: () => ctx.stats.reset(),
    rotateKey: (o) => keys.rotate(o),
    mintRedirectToken: (o) => keys.mint(o),
  };

  const server = createMockServer(ctx, control, opts.tls, opts.keepAliveMs ?? 5_000);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${opts.tls === undefined ? 'http' : 'https'}://${opts.publicHost ?? 'localhost'}:${port}`;
  ctx.baseUrl = url;

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    service,
    issuer,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
    stats: control.stats,
    resetStats: control.resetStats,
    rotateKey: control.rotateKey,
    currentKid: () => keys.currentKid() ?? '',
    setFaults: (d, f) => faults.set(d, f),
    clearFaults: () => faults.clear(),
    setLatency: (ms) => configure({ latencyMs: ms }),
    setBandwidth: (b) => configure({ bandwidth: b }),
    setTokens: (on) => configure({ tokens: on }),
    configure,
    knobs: () => ({ ...ctx.knobs }),
    mintRedirectToken: control.mintRedirectToken,
    putBlob: async (name, content) => {
      const blob = await seedBlob(storage, name, content);
      manifests.noteBlob(name, blob.digest);
      return blob;
    },
    putManifest: (name, ref, m, mediaType) => seedManifest(manifests, name, ref, m, mediaType, ctx.verifyManifestRefs),
    putOciLayout: (dir, name, tag) => seedOciLayout(storage, manifests, dir, name, tag),
    deleteTag: (name, tag) => manifests.untag(name, tag),
    addUser: (name, spec) => users.set(name, spec),
    addContentCache: (name, host) => ctx.caches.add(name, host),
    setContentCache: (user, name) => {
      if (!users.has(user)) throw new Error(`no user ${user}`);
      ctx.caches.select(user, name);
    },
    jwks: () => keys.jwks(),
  };
}
