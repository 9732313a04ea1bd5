// The validated, frozen configuration. `load.ts` builds it from a Docker Registry
// config.yml (plus REGISTRY_* environment overrides); nothing else constructs it.
import type { Secret } from './secret.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** One upstream as docs/protocol.md §4 describes it, normalised from either schema. */
export interface UpstreamsConfig {
  /** Hosts tried round robin (2.2: upstreamhosts; 2.3+: the plain list). Absolute URLs, no trailing slash. */
  readonly hosts: readonly string[];
  /** 2.2 form only: the origin, tried when no upstream host answers (or none is configured). */
  readonly origin: string | null;
}

/** Where a mirror's upstream password comes from; read at start, never kept in the config or logged. */
export type PasswordSource =
  { readonly kind: 'value'; readonly secret: Secret } | { readonly kind: 'file'; readonly path: string };

/** One mirrored registry: distribution's `proxy` section, or an entry of our `mirrors` list. */
export interface MirrorConfig {
  /** The registry clients name with containerd's `?ns=` (docker.io, ghcr.io, host:port), lower case. */
  readonly registry: string;
  /** The upstream's base URL (normalised, no trailing slash). */
  readonly remoteUrl: string;
  readonly username: string | null;
  readonly password: PasswordSource | null;
  /** Mirrored content and records are kept this long after their last pull; null = forever. */
  readonly ttlMs: number | null;
  /** A tag is served without asking the upstream for this long after it was last checked. */
  readonly tagTtlMs: number;
  /** Origins allowed to issue this upstream's tokens, besides remoteurl's own. */
  readonly realms: readonly string[];
  /** PEM CA files trusted for this upstream (and its realms), besides the system roots. */
  readonly cas: readonly string[];
  /** Serves requests that carry no `?ns=` (podman, skopeo, Docker's registry-mirrors). */
  readonly isDefault: boolean;
  /** Docker Hub: a one-component name means `library/<name>`. */
  readonly dockerHub: boolean;
  /** The key path of its section, for messages. */
  readonly keyPath: string;
}

export interface Config {
  readonly version: string;
  readonly log: {
    readonly level: LogLevel;
    readonly formatter: 'json' | 'text';
    /** One `request` line per request (distribution's `log.accesslog.disabled`, inverted). */
    readonly accessLog: boolean;
    /** log.fields: added to every log line (the access log's too). */
    readonly fields: Readonly<Record<string, LogFieldValue>>;
  };
  readonly storage: {
    readonly deleteEnabled: boolean;
    readonly rootDirectory: string;
  };
  readonly http: {
    /** Listen host ('' = all interfaces, as Go reads ":5000") and port. */
    readonly host: string;
    readonly port: number;
    /** http.host: this cache's externally reachable URL, or null. */
    readonly publicUrl: string | null;
    readonly secret: string | null;
    readonly tls: {
      readonly certificate: string;
      readonly key: string;
      /** http.tls.clientcas: PEM CA files; non-empty = every client must show a certificate one of them signed. */
      readonly clientCas: readonly string[];
    } | null;
    /** http.tls.minimumtls and http.tls.ciphersuites, resolved (defaults when unset or without TLS). */
    readonly tlsPolicy: {
      readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
      /** OpenSSL names of the TLS 1.2 suites allowed, in preference order; empty with TLSv1.3. */
      readonly tls12Ciphers: readonly string[];
    };
    /** http.headers: name and values added to every response of the main listener; the cache's own win. */
    readonly headers: ReadonlyArray<readonly [name: string, values: readonly string[]]>;
    /** Serving processes on the port (our extension): a count, or 'auto' = os.availableParallelism(). */
    readonly processes: number | 'auto';
    readonly debug: {
      readonly host: string;
      readonly port: number;
      readonly prometheus: boolean;
      readonly prometheusPath: string;
    } | null;
    /** Hostile-client limits and graceful stop (our extensions under http.limits / http.draintimeout). */
    readonly limits: {
      readonly maxHeaderSize: number;
      readonly headersTimeoutMs: number;
      readonly requestTimeoutMs: number;
      readonly idleTimeoutMs: number;
      readonly maxConcurrentStreams: number;
      readonly maxConnectionsPerIp: number;
      /** HTTP/2 streams a client may reset per second on one connection (CVE-2023-44487 rapid reset). */
      readonly maxResetsPerSecond: number;
    };
    readonly drainTimeoutMs: number;
  };
  /**
   * DTR mode: the `downstream` middleware. Its `upstreams` are empty (hosts [] and origin null)
   * when the node is a pure mirror; its store options (maxsize, timeouts …) apply to both modes.
   */
  readonly downstream: {
    /** Where these options are in the file (`middleware.registry[0].options`), for start-up messages. */
    readonly keyPath: string;
    /** null = never expire (blobttl unset). */
    readonly blobTtlMs: number | null;
    readonly upstreams: UpstreamsConfig;
    /** Absolute paths of PEM CA files trusted for upstream TLS, besides the system roots. */
    readonly cas: readonly string[];
    /** Where trusted keys come from: an https URL, an absolute file path, or null = <first upstream>/.well-known/jwks.json. */
    readonly jwks: string | null;
    readonly issuer: string | null;
    /** Byte cap on stored blobs; null = no cap. */
    readonly maxSize: number | null;
    readonly timeouts: {
      readonly connectMs: number;
      readonly headersMs: number;
      readonly bodyIdleMs: number;
    };
    /** Bound on queued worker tasks before the node answers 429. */
    readonly workerQueue: number;
    /** Whole blocks of spool data go to disk with O_DIRECT where the filesystem takes it (docs/architecture.md §4); off by default. */
    readonly directWrites: boolean;
    /** Replicas sharing the root: how often a writer refreshes its spool record, and how long a silent one is judged dead. */
    readonly replicas: { readonly beatMs: number; readonly staleMs: number };
  };
  /** Mirror mode (issue 15): `proxy` first when set, then `mirrors`; empty when the node only serves DTR. */
  readonly mirrors: readonly MirrorConfig[];
}

/** A `log.fields` value: what YAML holds, as JSON carries it (null: a key set to nothing). */
export type LogFieldValue = string | number | boolean | null | LogFieldValue[] | { [name: string]: LogFieldValue };
