// Mirror mode's front: which requests are the mirror's, which mirrored registry serves each
// (containerd's `?ns=`, else the default mirror), and the handler for the route. `ns` is only
// ever a key into the configured list: an unknown one is 404 NAME_UNKNOWN and nothing is
// dialled. Beside DTR mode on one port: a blob request with a redirect token (`?token=` or
// a Bearer header) and no `ns` is DTR's.
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { validateName } from '../distribution/name.js';
import { methodNotAllowed, RegistryError } from '../errors/registry.js';
import type { Inflight } from '../fill/inflight.js';
import type { RequestRecord } from '../server/context.js';
import { header, type Req, type ResLike } from '../server/http-types.js';
import type { BlobStore } from '../store/blob-store.js';
import type { UpstreamHost } from '../upstream/host.js';
import { serveMirrorBlob } from './blobs.js';
import { serveManifest } from './manifest-handler.js';
import { Mirror } from './mirror.js';
import { serveListing } from './listings.js';
import { Retention } from './retention.js';

type Route = 'manifests' | 'blobs' | 'referrers' | 'tags';

interface Target {
  name: string;
  route: Route;
  reference: string;
}

export interface MirrorServiceDeps {
  store: BlobStore;
  inflight: Inflight;
  log: Logger;
  now?: () => number;
  /**
   * This node's name in `Via` (startup/via.ts), one for all its serving processes, so that a
   * loop through another process of the node is refused too. A name of its own when absent.
   */
  viaName?: string;
}

export class MirrorService {
  readonly mirrors: readonly Mirror[];
  readonly retention: Retention;
  readonly #byRegistry: ReadonlyMap<string, Mirror>;
  readonly #default: Mirror | null;
  /** DTR mode is on: a redirect-token blob request without `ns` is its. */
  readonly #dtr: boolean;
  readonly #viaName: string;
  readonly #deps: MirrorServiceDeps;
  /** Digests whose running fill the mirror started → `<registry>\0<repo>` (blobs.ts). */
  readonly #started = new Map<string, string>();

  private constructor(mirrors: Mirror[], dtr: boolean, viaName: string, deps: MirrorServiceDeps) {
    this.mirrors = mirrors;
    this.#byRegistry = new Map(mirrors.map((m) => [m.registry, m]));
    this.#default = mirrors.find((m) => m.config.isDefault) ?? null;
    this.#dtr = dtr;
    this.#viaName = viaName;
    this.#deps = deps;
    this.retention = new Retention(mirrors, deps.log);
  }

  /** The mirrors of `config`, or null when it has none. */
  static async start(config: Config, deps: MirrorServiceDeps): Promise<MirrorService | null> {
    if (config.mirrors.length === 0) return null;
    const viaName = deps.viaName ?? `dtr-cache-mirror~${randomBytes(4).toString('hex')}`;
    const dir = join(dirname(deps.store.layout.spoolDir), 'mirror');
    const mirrors = await Promise.all(
      config.mirrors.map((m) =>
        Mirror.open(m, {
          store: deps.store,
          log: deps.log,
          timeouts: config.downstream.timeouts,
          viaName,
          dir,
          ...(deps.now === undefined ? {} : { now: deps.now }),
        }),
      ),
    );
    const up = config.downstream.upstreams;
    const service = new MirrorService(mirrors, up.hosts.length > 0 || up.origin !== null, viaName, deps);
    deps.log.info(
      {
        mirrors: mirrors.map((m) => ({ registry: m.registry, upstream: m.upstream.url, default: m.config.isDefault })),
      },
      'mirror mode on',
    );
    return service;
  }

  /** Each mirror's upstream host (one per mirrored registry). */
  get hosts(): UpstreamHost[] {
    return this.mirrors.map((m) => m.upstream.host);
  }

  /** Whether the request is the mirror's; decided from the path, query and headers alone. */
  claims(path: string, query: URLSearchParams, req: Req): boolean {
    const target = parsePath(path);
    if (target === null) return false;
    if (query.has('ns')) return true;
    if (target.route === 'blobs' && this.#dtr) {
      const auth = header(req.headers, 'authorization') ?? '';
      if (query.has('token') || /^bearer\s/i.test(auth)) return false;
    }
    if (this.#default !== null || !this.#dtr || target.route !== 'blobs') return true;
    const slash = target.name.indexOf('/');
    return slash > 0 && this.#byRegistry.has(target.name.slice(0, slash).toLowerCase());
  }

  async serve(req: Req, res: ResLike, path: string, query: URLSearchParams, rec: RequestRecord): Promise<void> {
    const target = parsePath(path);
    if (target === null) throw new RegistryError('NOT_FOUND');
    rec.route = target.route === 'manifests' ? 'manifest' : target.route === 'blobs' ? 'blob' : target.route;
    const { mirror, name: rawName, prefixed } = this.#mirrorFor(query, target.name);
    rec.registry = mirror.registry;
    const name = validateName(rawName);
    // Docker Hub's official images: `alpine` is `library/alpine` (Docker's registry-mirrors sends the latter).
    const repo = mirror.config.dockerHub && !name.includes('/') ? `library/${name}` : name;
    rec.repo = repo;
    const head = req.method === 'HEAD';
    const listing = target.route === 'referrers' || target.route === 'tags';
    if (req.method !== 'GET' && !(head && !listing)) {
      throw methodNotAllowed(
        listing ? ['GET'] : ['GET', 'HEAD'],
        `${req.method ?? ''} is not supported here: this is a pull-through mirror`,
      );
    }
    const via = header(req.headers, 'via');
    if (via !== undefined && via.split(',').some((hop) => hop.trim().split(/\s+/)[1] === this.#viaName)) {
      this.#deps.log.warn({ registry: mirror.registry, via }, 'request loop: this mirror is already in Via; refusing');
      throw new RegistryError('UNAVAILABLE', {
        status: 508,
        message: 'request loop detected: this mirror already forwarded this request',
      });
    }
    const call = { mirror, repo, reference: target.reference, prefixed, query, req, res, rec };
    switch (target.route) {
      case 'manifests':
        return serveManifest(call);
      case 'referrers':
      case 'tags':
        return serveListing(call, target.route);
      case 'blobs':
        return serveMirrorBlob(
          { store: this.#deps.store, inflight: this.#deps.inflight, started: this.#started },
          call,
        );
    }
  }

  async close(): Promise<void> {
    this.retention.stop();
    await Promise.all(this.mirrors.map((m) => m.close()));
  }

  /**
   * The mirror and the repository name: by `ns`; else by a first path component that is a
   * mirrored registry's name (`/v2/ghcr.io/org/app/…`, for clients that cannot send `ns`:
   * a podman mirror `location = "node/ghcr.io"`); else the default mirror.
   */
  #mirrorFor(query: URLSearchParams, path: string): { mirror: Mirror; name: string; prefixed: boolean } {
    const ns = query.getAll('ns');
    if (ns.length === 0) {
      const slash = path.indexOf('/');
      const prefixed = slash > 0 ? this.#byRegistry.get(path.slice(0, slash).toLowerCase()) : undefined;
      if (prefixed !== undefined) return { mirror: prefixed, name: path.slice(slash + 1), prefixed: true };
      if (this.#default !== null) return { mirror: this.#default, name: path, prefixed: false };
      throw new RegistryError('NAME_UNKNOWN', {
        message: 'no default mirror here: name the registry with ?ns=<registry> or a path prefix',
      });
    }
    const found = ns.length === 1 ? this.#byRegistry.get((ns[0] ?? '').toLowerCase()) : undefined;
    if (found === undefined) {
      throw new RegistryError('NAME_UNKNOWN', {
        message: 'this registry is not mirrored here',
        detail: { ns: ns.map((n) => n.slice(0, 100)) },
      });
    }
    return { mirror: found, name: path, prefixed: false };
  }
}

/** `/v2/<name>/(manifests|blobs|referrers)/<reference>` or `/v2/<name>/tags/list`; null for any other path. */
function parsePath(path: string): Target | null {
  if (!path.startsWith('/v2/')) return null;
  const last = path.lastIndexOf('/');
  const before = path.lastIndexOf('/', last - 1);
  if (before <= 3) return null;
  const route = path.slice(before + 1, last);
  if (route !== 'manifests' && route !== 'blobs' && route !== 'referrers' && route !== 'tags') return null;
  const reference = path.slice(last + 1);
  if (reference === '' || (route === 'tags' && reference !== 'list')) return null;
  return { name: path.slice(4, before), route, reference };
}
