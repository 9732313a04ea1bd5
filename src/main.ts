// Composition root of one serving process: config → log → store → upstreams and keys →
// pool → fills → eviction → server → health and debug. The only module that wires others
// together, so each can be tested on its own. A node of several processes runs this in
// each of them (src/cluster/worker.ts), with what the supervisor decides for all in
// `member`; the supervisor itself serves nothing.
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { processBudget, type ProcessBudget } from './cluster/budget.js';
import type { KeySetOptions } from './auth/keyset.js';
import type { Config } from './config/types.js';
import { Inflight } from './fill/inflight.js';
import type { FillClient } from './fill/readers.js';
import { setBufferedFillBudget } from './fill/small-blob.js';
import { AccessLog } from './log/access-log.js';
import { createLogger, flushLogger } from './log/log.js';
import { Health } from './metrics/health.js';
import { Metrics } from './metrics/metrics.js';
import { MirrorService } from './mirror/service.js';
import { WorkerPool } from './pool.js';
import type { AppContext } from './server/context.js';
import { openDebugServer } from './server/debug-server.js';
import { refusalReporter, type ConnectionGate } from './server/guards.js';
import { createRouter } from './server/router.js';
import { setReadBudget } from './server/send-blob.js';
import { createCacheServer, type CacheServer } from './server/server.js';
import { TicketKeys } from './server/ticket-keys.js';
import { readTls, type TlsMaterial } from './server/tls.js';
import { listenFailed } from './startup/errors.js';
import { openStore } from './startup/store.js';
import { connectUpstreams } from './startup/upstreams.js';
import { shareStandings, type HostStanding, type UpstreamHost } from './upstream/host.js';
import { viaName } from './startup/via.js';
import type { Digest } from './store/digest.js';
import { Evictor } from './store/eviction.js';
import type { BlobStore } from './store/blob-store.js';
import { SpoolDir } from './store/spool.js';

/** How long close waits for abandoned fills to release their spools. */
const ABANDON_WAIT_MS = 5_000;

export interface RunningCache {
  readonly config: Config;
  readonly url: string;
  readonly port: number;
  readonly ctx: AppContext;
  readonly pool: WorkerPool;
  readonly server: CacheServer;
  readonly health: Health;
  /** null unless http.debug.prometheus is enabled. */
  readonly metrics: Metrics | null;
  /** http://host:port of the debug server (/debug/health, /metrics), or null when there is none here. */
  readonly debugUrl: string | null;
  /** Every upstream host of this process (DTR mode's chain, then the mirrors'). */
  readonly upstreamHosts: readonly UpstreamHost[];
  /**
   * Swaps in a new TLS certificate and key (read from http.tls, or the pair given) and
   * reloads the key set (SIGHUP). A pair that does not load throws, and the old one stays.
   */
  reload(material?: TlsMaterial): Promise<{ tls: boolean; keys: number }>;
  /** Graceful stop: no new requests; transfers finish, and fills publish, up to http.draintimeout. */
  close(): Promise<void>;
}

/** What a node's supervisor decides for each of its serving processes (src/cluster). */
export interface NodeMember {
  /** The certificate and key, read once by the supervisor so every process serves the same. */
  tls: TlsMaterial | null;
  /** The node's session ticket keys, set by the supervisor at each rotation. */
  tickets: TicketKeys;
  /** The node-wide per-IP connection limit. */
  gate: ConnectionGate;
  /** The port every process binds (SO_REUSEPORT). */
  port: number;
  budget: ProcessBudget;
  /** Dead spools the supervisor removed before the processes started. */
  removedSpools: number;
  /** The node's name in `Via`. */
  via: string;
  /** The key set the node's running processes trust (a replacement's fallback), or null. */
  nodeKeys: unknown;
  /** Tells the other processes about a blob this one published. */
  onPublished(digest: Digest, size: number): void;
  /** Tells them a credential of a client that follows another process's fill (FillDeps). */
  shareCredential(digest: Digest, client: FillClient): void;
  /** Tells them that an upstream host failed or recovered here (upstream/host.ts). */
  shareHostStanding(standing: HostStanding): void;
}

export interface StartOptions {
  log?: Logger;
  member?: NodeMember;
  /** Timings of the trusted key set (tests shorten them); defaults in auth/keyset.ts. */
  keys?: Omit<KeySetOptions, 'log' | 'now'>;
  /** Fault injection for tests: the spool worker waits this long between verdict and fsync. */
  publishDelayMs?: number;
}

export async function startCache(config: Config, opts: StartOptions = {}): Promise<RunningCache> {
  const log = opts.log ?? createLogger(config.log);
  const member = opts.member ?? null;
  const budget = member?.budget ?? processBudget(1);
  setReadBudget(budget.readBufferBytes);
  setBufferedFillBudget(budget.bufferedFillBytes);

  const store = await openStore(config, log, {
    smallBlobBytes: budget.smallBlobBytes,
    removedSpools: member?.removedSpools ?? null,
  });
  // One name for the node: every serving process sends it (DTR fills and mirror requests alike).
  const via = member?.via ?? viaName(config);
  const upstreams = await connectUpstreams(config, log, via, opts.keys ?? {}, member?.nodeKeys ?? null);
  const { chain, keys, verifier } = upstreams;
  const pool = new WorkerPool({ maxQueue: config.downstream.workerQueue, threads: budget.threads });
  // Metrics only when something scrapes them (http.debug.prometheus.enabled).
  const metrics = config.http.debug?.prometheus ? new Metrics() : null;
  metrics?.watchUpstreams(chain.all.map((h) => h.url));

  // Whoever needs to know that a fill published: the evictor (over the cap?) and, in a
  // node of several processes, the others (their indexes); and that the disk is full: the
  // evictor (its trash goes at once).
  const published: Array<(digest: Digest, size: number) => void> = [];
  const diskFull: Array<() => void> = [];
  const inflight = new Inflight({
    spools: new SpoolDir(store.layout, config.downstream.replicas),
    pool,
    store,
    log,
    disk: { full: false },
    directWrites: config.downstream.directWrites,
    onPublished: (digest, size) => published.forEach((tell) => tell(digest, size)),
    onDiskFull: () => diskFull.forEach((tell) => tell()),
    ...(member === null ? {} : { shareCredential: member.shareCredential }),
    ...(metrics === null ? {} : { hooks: metrics.fillHooks }),
    publishDelayMs: opts.publishDelayMs ?? publishDelayFromEnv(),
  });
  const mirror = await MirrorService.start(config, { store, inflight, log, viaName: via });
  // Every upstream of this process, DTR mode's and the mirrors': in a node of several
  // processes, what one learns of a host's health the others adopt (cluster/member.ts).
  const upstreamHosts = [...chain.all, ...(mirror?.hosts ?? [])];
  if (member !== null) shareStandings(upstreamHosts, member.shareHostStanding);
  const evictor = startEvictor(config, store, inflight, metrics, log, mirror);
  mirror?.retention.start();
  if (evictor !== null) {
    published.push(() => evictor.afterPublish());
    diskFull.push(() => evictor.diskFull());
  }
  if (member !== null) published.push(member.onPublished);
  metrics?.collectFrom({ blobs: () => store, fills: () => fillStats(inflight), workerQueue: () => pool.queueSize });

  const ctx: AppContext = {
    store,
    inflight,
    chain,
    verifier,
    keys,
    log,
    accessLog: config.log.accessLog ? new AccessLog(log) : null,
    ...(metrics === null ? {} : { metrics }),
    ...(mirror === null ? {} : { mirror }),
  };
  const material = member === null ? await readTls(config) : member.tls;
  // A node of one process rotates its own ticket keys; a member gets the node's.
  const tickets = member?.tickets ?? new TicketKeys();
  const server = createCacheServer({
    limits: config.http.limits,
    tls: material === null ? null : { material, policy: config.http.tlsPolicy, ticketKeys: tickets.current },
    handler: createRouter(ctx),
    headers: config.http.headers,
    hooks: refusalReporter(log, (reason) => metrics?.refused(reason)),
    ...(member === null ? {} : { gate: member.gate }),
  });
  tickets.onRotate((k) => server.setTicketKeys(k));
  if (member === null) tickets.start();
  const at = { host: config.http.host, port: member?.port ?? config.http.port };
  const bound = await server.listen(at.host, at.port, { reusePort: member !== null }).catch((err: unknown) => {
    throw listenFailed('http.addr', at, err);
  });
  log.info(
    { addr: bound.host, port: bound.port, tls: material !== null, upstreams: chain.all.map((h) => h.url) },
    member === null ? 'dtr-cache listening' : 'serving process listening',
  );

  const health = new Health({
    probeDir: dirname(store.layout.spoolDir),
    // A pure mirror verifies no redirect tokens: no key set to judge.
    keys: chain.all.length > 0 ? keys : null,
    upstreams: () => [...chain.all, ...(mirror?.mirrors.map((m) => m.upstream.host) ?? [])],
  });
  const debug =
    member === null
      ? await openDebugServer(config.http.debug, {
          health: () => health.report(),
          render: metrics === null ? null : () => metrics.render(),
          log,
        })
      : null;

  let closing: Promise<void> | null = null;
  return {
    config,
    url: `${material === null ? 'http' : 'https'}://localhost:${bound.port}`,
    port: bound.port,
    ctx,
    pool,
    server,
    health,
    metrics,
    debugUrl: debug?.url ?? null,
    upstreamHosts,
    async reload(given) {
      // A broken pair throws here, before anything is replaced: the old certificate stays.
      const next = given ?? (await readTls(config));
      if (next !== null) server.setTls(next);
      // The certificate is in place whatever the origin says; a failed key refresh keeps the old keys.
      await keys
        .refresh()
        .catch((err: unknown) => log.warn({ err }, 'key set refresh failed on reload; keeping the current keys'));
      return { tls: next !== null, keys: keys.size };
    },
    close() {
      closing ??= (async () => {
        health.draining = true;
        log.info({ fills: inflight.size, deadlineMs: config.http.drainTimeoutMs }, 'draining');
        tickets.stop();
        const deadline = Date.now() + config.http.drainTimeoutMs;
        await server.close(config.http.drainTimeoutMs);
        // A client has its last byte once the digest matches; the blob's fsync and publication
        // follow. Fills still running get what is left of the drain deadline to finish, so a
        // graceful stop keeps what was fetched and verified rather than fetching it again.
        await fillsSettled(inflight, deadline - Date.now());
        evictor?.stop();
        await mirror?.close();
        // Fills still running are abandoned: nothing unverified is ever published.
        await upstreams.close();
        await pool.close();
        // They let go of their spools before close returns: a caller may remove the root next.
        await fillsSettled(inflight, ABANDON_WAIT_MS);
        await debug?.close();
        metrics?.close();
        log.info('stopped');
        await flushLogger(log);
      })();
      return closing;
    },
  };
}

/** Resolves once every fill in flight has settled, or after `ms`, whichever comes first. */
async function fillsSettled(inflight: Inflight, ms: number): Promise<void> {
  const all = Promise.allSettled([...inflight.fills()].map((fill) => fill.settled));
  await Promise.race([all, delay(Math.max(0, ms), undefined, { ref: false })]);
}

/** Expiry and eviction, when the store may delete (storage.delete.enabled); null otherwise. */
function startEvictor(
  config: Config,
  store: BlobStore,
  inflight: Inflight,
  metrics: Metrics | null,
  log: Logger,
  mirror: MirrorService | null,
): Evictor | null {
  if (!config.storage.deleteEnabled) return null;
  const evictor = new Evictor(store, {
    ttlMs: config.downstream.blobTtlMs,
    maxSize: config.downstream.maxSize,
    busy: (d) => inflight.has(d),
    log,
    ...(metrics === null
      ? {}
      : { onEvict: (reason: string, entry: { size: number }) => metrics.evicted(reason, entry.size) }),
    // A mirror's content does not expire while its upstream is unreachable (docs/mirror.md §5).
    ...(mirror === null ? {} : { protect: () => mirror.retention.protect() }),
  });
  evictor.start();
  return evictor;
}

function fillStats(inflight: Inflight): { inFlight: number; waiters: number } {
  let waiters = 0;
  for (const fill of inflight.fills()) waiters += fill.waiters;
  return { inFlight: inflight.size, waiters };
}
/**
 * A fault-injection hook for tests (a crash between a client's last byte and publication):
 * DTR_CACHE_TEST_PUBLISH_DELAY_MS makes a fill (its spool worker, or the small-blob path) wait
 * that long between its verdict and its fsync.
 */
function publishDelayFromEnv(): number {
  const ms = Number(process.env['DTR_CACHE_TEST_PUBLISH_DELAY_MS'] ?? 0);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}
