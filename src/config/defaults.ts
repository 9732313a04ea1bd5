// Every default, in one place, written as a user would write it in config.yml: the loader
// sends a missing key's default through the same parser as a present one, and a test holds
// config.example.yml to this object. Keys mirror the YAML tree; `downstream` stands for the
// options of the `middleware.registry` entry named downstream; `proxy` holds the defaults of
// the proxy section and of each mirrors entry.
// Keys with no default (http.host, http.secret, http.tls, http.debug.addr, blobttl, cas,
// jwks, issuer, maxsize) are simply unset and mean "off" / "none" (see types.ts).

export const DEFAULTS = {
  log: {
    level: 'info',
    // JSON is pino's native output; distribution's default is text, which we also accept.
    formatter: 'json',
    accesslog: { disabled: false },
  },
  storage: {
    delete: { enabled: false },
    filesystem: { rootdirectory: '/var/lib/registry' },
  },
  http: {
    addr: ':5000',
    // One serving process per available core (os.availableParallelism()); 1 = no supervisor.
    processes: 'auto',
    draintimeout: '30s',
    debug: { prometheus: { enabled: false, path: '/metrics' } },
    limits: {
      maxheadersize: 16384,
      headerstimeout: '10s',
      requesttimeout: '30s',
      idletimeout: '60s',
      maxconcurrentstreams: 100,
      maxconnectionsperip: 256,
      maxresetspersecond: 100,
    },
  },
  downstream: {
    timeouts: { connect: '10s', headers: '30s', bodyidle: '30s' },
    workerqueue: 256,
    directwrites: false,
    replicas: { heartbeat: '2s', stale: '30s' },
  },
  // Mirror mode: the `proxy` section and each `mirrors` entry. ttl is distribution's default
  // (7 days; 0 = never); tagttl is ours (HEAD revalidation at most once a minute per tag).
  proxy: {
    ttl: '168h',
    tagttl: '60s',
  },
} as const;
