// Composition root: config → log → store → pool → upstreams → keys → server. The only
// module that wires others together, so each can be tested on its own.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { realmFor } from './auth/challenge.js';
import { defaultJwksUrl, fileJwksLoader, urlJwksLoader, type JwksHttpGet } from './auth/jwks-source.js';
import { KeySet, type JwksLoader, type KeySetOptions } from './auth/keyset.js';
import { TokenVerifier } from './auth/token.js';
import type { Config } from './config/types.js';
import { Inflight } from './fill/inflight.js';
import { createLogger, flushLogger } from './log/log.js';
import { Health } from './metrics/health.js';
import { Metrics } from './metrics/metrics.js';
import { MirrorService } from './mirror/service.js';
import { WorkerPool } from './pool.js';
import { startDebugServer, type DebugServer } from './server/debug-server.js';
import { refusalReporter } from './server/guards.js';
import { createRouter } from './server/router.js';
import { createCacheServer, type CacheServer } from './server/server.js';
import { readTls } from './server/tls.js';
import type { AppContext } from './server/context.js';
import { BlobStore } from './store/blob-store.js';
import { Layout } from './store/layout.js';
import { Evictor } from './store/eviction.js';
import { SpoolDir } from './store/spool.js';
import { UpstreamChain } from './upstream/chain.js';
import { loadUpstreamTrust } from './upstream/trust.js';

export interface RunningCache {
  readonly config: Config;
  readonly url: string;
  readonly port: number;
  readonly ctx: AppContext;
  readonly pool: WorkerPool;
  readonly server: CacheServer;
  /** http://host:port of the debug server (/debug/health, /metrics), or null when http.debug.addr is unset. */
  readonly debugUrl: string | null;
  /** Re-reads the TLS certificate and key, and the key set (SIGHUP). */
  reload(): Promise<void>;
  /** Graceful stop: no new requests, transfers finish up to http.draintimeout. */
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Timings of the trusted key set (tests shorten them); defaults in auth/keyset.ts. */
  keys?: Omit<KeySetOptions, 'log' | 'now'>;
  /** Fault injection for tests: the spool worker waits this long between verdict and fsync. */
  publishDelayMs?: number;
}

export async function startCache(config: Config, opts: StartOptions = {}): Promise<RunningCache> {
  const log = opts.log ?? createLogger(config.log);
  const layout = new Layout(config.storage.rootDirectory);
  const store = new BlobStore(layout, { ttlMs: config.downstream.blobTtlMs });
  const spools = new SpoolDir(layout, config.downstream.replicas);
  const removedSpools = await spools.sweep();
  const scanStarted = Date.now();
  const scanned = await store.scan();
  log.info(
    { blobs: scanned.count, bytes: scanned.bytes, ms: Date.now() - scanStarted, removedSpools, root: layout.root },
    'store indexed',
  );

  const secureContext = await loadUpstreamTrust(config.downstream.cas);
  const t = config.downstream.timeouts;
  const hostOpts = {
    secureContext,
    connectTimeoutMs: t.connectMs,
    headersTimeoutMs: t.headersMs,
    bodyIdleTimeoutMs: t.bodyIdleMs,
  };
  const chain = new UpstreamChain(config.downstream.upstreams, { ...hostOpts, viaName: viaName(config), log });
  const pool = new WorkerPool({ maxQueue: config.downstream.workerQueue });

  const jwksAgent = new Agent({
    connect: { secureContext, timeout: t.connectMs },
    headersTimeout: t.headersMs,
    bodyTimeout: t.bodyIdleMs,
  });
  const keys = new KeySet(jwksLoader(config, chain, jwksAgent), { ...opts.keys, log });
  // A pure mirror (no downstream upstreams) verifies no redirect tokens: no keys to load.
  const dtr = chain.all.length > 0;
  if (dtr) await keys.start();
  const originBase = config.downstream.upstreams.origin ?? chain.hosts[0]?.url ?? 'https://dtr-mode-off.invalid';
  const verifier = new TokenVerifier({
    keySet: keys,
    realm: realmFor(originBase),
    service: new URL(originBase).host,
    issuer: config.downstream.issuer,
  });

  // The evictor needs the inflight map (busy digests); fills tell the evictor about publishes.
  let evictor: Evictor | null = null;
  // Metrics only when something scrapes them (http.debug.prometheus.enabled).
  const metrics: Metrics | null = config.http.debug?.prometheus
    ? new Metrics({ blobs: () => store, fills: () => fillStats(inflight), workerQueue: () => pool.queueSize })
    : null;
  metrics?.watchUpstreams(chain.all.map((h) => h.url));
  const inflight: Inflight = new Inflight({
    spools,
    pool,
    store,
    log,
    disk: { full: false },
    onPublished: () => evictor?.afterPublish(),
    ...(metrics === null ? {} : { hooks: metrics.fillHooks }),
    publishDelayMs: opts.publishDelayMs ?? publishDelayFromEnv(),
  });
  const mirror = await MirrorService.start(config, { store, inflight, log });
  if (config.storage.deleteEnabled) {
    const onEvict =
      metrics === null
        ? {}
        : { onEvict: (reason: string, entry: { size: number }) => metrics.evicted(reason, entry.size) };
    evictor = new Evictor(store, {
      ttlMs: config.downstream.blobTtlMs,
      maxSize: config.downstream.maxSize,
      busy: (d) => inflight.has(d),
      log,
      ...onEvict,
      ...(mirror === null ? {} : { protect: () => mirror.retention.protect() }),
    });
    evictor.start();
  }
  mirror?.retention.start();
  const ctx: AppContext = {
    store,
    inflight,
    chain,
    verifier,
    keys,
    log,
    ...(metrics === null ? {} : { metrics }),
    ...(mirror === null ? {} : { mirror }),
  };
  const tls = await readTls(config);
  const server = createCacheServer(
    config.http.limits,
    tls,
    createRouter(ctx),
    refusalReporter(log, (reason) => metrics?.refused(reason)),
  );
  const bound = await server.listen(config.http.host, config.http.port);
  const scheme = tls === null ? 'http' : 'https';
  const url = `${scheme}://localhost:${bound.port}`;
  log.info(
    { addr: bound.host, port: bound.port, tls: tls !== null, upstreams: chain.all.map((h) => h.url) },
    'dtr-cache listening',
  );

  const health = new Health({
    probeDir: dirname(layout.spoolDir),
    keys: dtr ? keys : null,
    upstreams: () => [...chain.all, ...(mirror?.mirrors.map((m) => m.upstream.host) ?? [])],
  });
  let debug: DebugServer | null = null;
  if (config.http.debug !== null) {
    const d = config.http.debug;
    debug = await startDebugServer(d.host, d.port, {
      health: () => health.report(),
      metrics: metrics === null ? null : { path: d.prometheusPath, render: () => metrics.render() },
      log,
    });
    log.info(
      { addr: debug.host, port: debug.port, metrics: metrics === null ? null : d.prometheusPath },
      'debug server listening',
    );
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    url,
    port: bound.port,
    ctx,
    pool,
    server,
    debugUrl:
      debug === null ? null : `http://${debug.host.includes(':') ? `[${debug.host}]` : debug.host}:${debug.port}`,
    async reload() {
      // A broken pair throws here, before anything is replaced: the old certificate stays.
      const material = await readTls(config);
      if (material !== null) server.setTls(material);
      // The certificate is in place whatever the origin says; a failed key refresh keeps the old keys.
      await keys
        .refresh()
        .catch((err: unknown) =>
          log.warn(
            { err: err instanceof Error ? err.message : String(err) },
            'key set refresh failed on reload; keeping the current keys',
          ),
        );
      log.info({ tls: material !== null, keys: keys.size }, 'reloaded TLS certificate and key set');
    },
    close() {
      closing ??= (async () => {
        health.draining = true;
        log.info({ fills: inflight.size, deadlineMs: config.http.drainTimeoutMs }, 'draining');
        await server.close(config.http.drainTimeoutMs);
        evictor?.stop();
        await mirror?.close();
        // Fills still running are abandoned: nothing unverified is ever published.
        keys.close();
        await chain.close();
        await jwksAgent.close();
        await pool.close();
        await debug?.close();
        metrics?.close();
        log.info('stopped');
        await flushLogger(log);
      })();
      return closing;
    },
  };
}

function fillStats(inflight: Inflight): { inFlight: number; waiters: number } {
  let waiters = 0;
  for (const fill of inflight.fills()) waiters += fill.waiters;
  return { inFlight: inflight.size, waiters };
}

/** A name for `Via` that is unique per process, so a request that comes back is recognised. */
function viaName(config: Config): string {
  const host = config.http.publicUrl !== null ? new URL(config.http.publicUrl).host : hostname();
  return `${host.replace(/[^A-Za-z0-9.:_-]/g, '-')}~${randomBytes(4).toString('hex')}`;
}

/**
 * Where trusted keys come from: `jwks` (a file or URL), or else the upstreams' own
 * /.well-known/jwks.json, first answer wins: a tier with no route to the origin takes the
 * keys its upstream cache trusts (PROTOCOL §2).
 */
function jwksLoader(config: Config, chain: UpstreamChain, agent: Agent): JwksLoader {
  const get: JwksHttpGet = async (url) => {
    const res = await request(url, { dispatcher: agent, headers: { accept: 'application/json' } });
    return { statusCode: res.statusCode, body: await res.body.text() };
  };
  const source = config.downstream.jwks;
  if (source !== null) return source.startsWith('/') ? fileJwksLoader(source) : urlJwksLoader(source, get);
  const loaders = chain.all.map((h) => urlJwksLoader(defaultJwksUrl(h.url), get));
  return async () => {
    let lastErr: unknown = new Error('no upstream configured');
    for (const load of loaders) {
      try {
        return await load();
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  };
}

/**
 * A fault-injection hook for tests (a crash between a client's last byte and publication):
 * DTR_CACHE_TEST_PUBLISH_DELAY_MS makes the spool worker wait that long before its fsync.
 */
function publishDelayFromEnv(): number {
  const ms = Number(process.env['DTR_CACHE_TEST_PUBLISH_DELAY_MS'] ?? 0);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}
