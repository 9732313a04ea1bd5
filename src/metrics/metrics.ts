// Prometheus metrics, kept off the hot path (docs/architecture.md §9): the series every
// request bumps are tallies of plain numbers (tally.ts), the others prom-client's label
// children cached on first use, and everything that is state (stored bytes,
// fills in flight, queue depth, event-loop delay) is read only when /metrics is scraped,
// in `collect()`. Each Metrics has its own registry, so several caches in one process
// (tests) never share or clash. With several serving processes the supervisor merges
// every process's registry (src/cluster/node-metrics.ts): counters and histogram buckets
// add up; each gauge says below how it merges (`aggregator`).
import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FILL_OUTCOMES, type FillOutcome } from '../fill/outcome.js';
import { CounterTally, HistogramTally } from './tally.js';
import { UpstreamWatch } from './upstream-watch.js';

/** State read at scrape time; main.ts wires these to the store, the inflight map and the pool (collectFrom). */
export interface MetricSources {
  blobs(): { count: number; bytes: number };
  fills(): { inFlight: number; waiters: number };
  workerQueue(): number;
}

/** How a fill ended, as fill.ts reports it through its `settled` hook. */
export interface FillSettled {
  outcome: FillOutcome;
  size: number;
  /** Clients that joined after the first. */
  joins: number;
}

/** Why a connection or stream was refused by a hostile-client guard (server.ts). */
export type RefusalReason = 'per-ip' | 'rapid-reset' | 'header-size';

const PREFIX = 'dtr_cache_';
const METHODS = new Set(['GET', 'HEAD']);
/** The outcomes whose responses carry a blob's body; nothing else has a first byte to time. */
const BODY_OUTCOMES = new Set(['hit', 'miss', 'joined']);

/**
 * Seconds from a request's arrival to its end. A manifest, a token-refused request or a
 * small hit from the page cache ends within milliseconds; a large layer takes as long as
 * the client's link needs (1 GiB at 100 Mbit/s is about 90 s), and a slow client of a
 * multi-GiB blob takes minutes. Prometheus's default buckets stop at 10 s, where every large
 * blob would fall into +Inf, hence buckets up to 10 minutes.
 */
const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];
/**
 * Seconds from a blob request's arrival to its first body byte. A hit answers within
 * milliseconds; a miss waits for the upstream's connection, headers and first bytes (tens
 * to hundreds of milliseconds across a WAN), at worst for the upstream timeouts (connect
 * 10 s and headers 30 s by default), hence buckets up to a minute.
 */
const FIRST_BYTE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  /**
   * Evictions by reason ('ttl', 'size', …). The eviction code calls
   * `metrics.evictions.inc({ reason })`, or `evicted(reason, bytes)` for count and bytes.
   */
  readonly evictions: Counter<'reason'>;
  readonly evictedBytes: Counter<'reason'>;

  /** The per-request series are tallies (tally.ts): plain numbers, read at a scrape. */
  readonly #requests: CounterTally<'route' | 'method' | 'status'>;
  readonly #blobRequests: CounterTally<'outcome'>;
  readonly #blobBytes: CounterTally<'outcome'>;
  readonly #upstreamBytes: Counter<'host'>;
  readonly #fills: Counter<'result'>;
  readonly #digestFailures: Counter;
  readonly #collapseSaved: Counter;
  readonly #fillClients: Histogram;
  readonly #duration: HistogramTally<'route' | 'method'>;
  readonly #firstByte: HistogramTally<'outcome'>;
  readonly #refused: Counter<'reason'>;
  readonly #broken: CounterTally<'route'>;
  /** Label children, made once (see #child): Counter.Internal or Histogram.Internal by namespace. */
  readonly #children = new Map<string, unknown>();
  readonly #loop: ELDHistogram;
  readonly #upstreams: UpstreamWatch;
  #sources: MetricSources | null = null;

  constructor() {
    const registers = [this.registry];
    const sources = (): MetricSources | null => this.#sources;
    this.#requests = new CounterTally({
      name: `${PREFIX}requests_total`,
      help: 'Requests answered, by route, method and the status sent (499: the client left first).',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.#blobRequests = new CounterTally({
      name: `${PREFIX}blob_requests_total`,
      help: 'Blob requests by outcome: hit, miss (started a fill), joined (collapsed into a running fill), head-upstream, not-modified, error.',
      labelNames: ['outcome'],
      registers,
    });
    this.#blobBytes = new CounterTally({
      name: `${PREFIX}blob_bytes_served_total`,
      help: 'Blob body bytes sent to clients, by outcome (hit, miss, joined).',
      labelNames: ['outcome'],
      registers,
    });
    this.#upstreamBytes = new Counter({
      name: `${PREFIX}upstream_bytes_total`,
      help: 'Blob bytes received from each upstream host by fills.',
      labelNames: ['host'],
      registers,
    });
    this.#fills = new Counter({
      name: `${PREFIX}fills_total`,
      help: `Fills settled, by result: ${FILL_OUTCOMES.join(', ')}.`,
      labelNames: ['result'],
      registers,
    });
    this.#digestFailures = new Counter({
      name: `${PREFIX}digest_failures_total`,
      help: 'Fills whose bytes did not hash to the digest (never published).',
      registers,
    });
    this.#collapseSaved = new Counter({
      name: `${PREFIX}collapse_saved_bytes_total`,
      help: 'Upstream bytes not downloaded thanks to miss collapse: joins x size of each published fill.',
      registers,
    });
    this.#fillClients = new Histogram({
      name: `${PREFIX}fill_clients`,
      help: 'Clients served by one fill (1 + joins), observed when the fill settles.',
      buckets: [1, 2, 3, 5, 10, 20, 50, 100, 200],
      registers,
    });
    // By route and method only, as requests_total (without its status): a blob's duration
    // is mostly its size over the client's link, which no label carries, so an outcome split
    // would mostly tell cold blobs from warm ones. The cache's own latency by outcome is the
    // first-byte histogram below; its three outcomes keep it to three series.
    this.#duration = new HistogramTally({
      name: `${PREFIX}request_duration_seconds`,
      help: "Seconds from a request's arrival to the end of its answer (or the client leaving), by route and method.",
      labelNames: ['route', 'method'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#firstByte = new HistogramTally({
      name: `${PREFIX}blob_first_byte_seconds`,
      help: "Seconds from a blob request's arrival until the client's connection took its first body bytes, by outcome (hit, miss, joined); observed when the request ends.",
      labelNames: ['outcome'],
      buckets: FIRST_BYTE_BUCKETS,
      registers,
    });
    this.#refused = new Counter({
      name: `${PREFIX}refused_total`,
      help: 'Connections or streams refused by hostile-client limits, by reason: per-ip, rapid-reset, header-size.',
      labelNames: ['reason'],
      registers,
    });
    this.#broken = new CounterTally({
      name: `${PREFIX}responses_broken_total`,
      help: 'Responses reset after their (2xx) headers were sent, e.g. a fill that failed its digest check.',
      labelNames: ['route'],
      registers,
    });
    this.evictions = new Counter({
      name: `${PREFIX}evictions_total`,
      help: 'Blobs evicted, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.evictedBytes = new Counter({
      name: `${PREFIX}evicted_bytes_total`,
      help: 'Bytes of blobs evicted, by reason.',
      labelNames: ['reason'],
      registers,
    });

    // Every process indexes the same root: the node's store is the largest index, not their sum.
    new Gauge({
      name: `${PREFIX}stored_bytes`,
      help: 'Bytes of blobs in the store index.',
      registers,
      aggregator: 'max',
      collect() {
        this.set(sources()?.blobs().bytes ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}stored_blobs`,
      help: 'Blobs in the store index.',
      registers,
      aggregator: 'max',
      collect() {
        this.set(sources()?.blobs().count ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}fills_in_flight`,
      help: "Fills running now (with several processes, a process following another one's fill counts too).",
      registers,
      collect() {
        this.set(sources()?.fills().inFlight ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}fill_waiters`,
      help: 'Clients attached to running fills now.',
      registers,
      collect() {
        this.set(sources()?.fills().waiters ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}worker_queue_depth`,
      help: 'Worker tasks waiting for a thread (429 past downstream.workerqueue).',
      registers,
      collect() {
        this.set(sources()?.workerQueue() ?? 0);
      },
    });

    // Event-loop delay since the previous scrape, under prom-client's default-metric names
    // (dashboards know them). The registry reads metrics in registration order, so the
    // first gauge's collect() sets all three, then resets the histogram.
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    this.#loop = loop;
    const seconds = (ns: number): number => (Number.isFinite(ns) ? ns / 1e9 : 0);
    // Quantiles cannot be added up: across processes, the worst process's is reported.
    const p99 = new Gauge({
      name: 'nodejs_eventloop_lag_p99_seconds',
      help: 'Event-loop delay p99 since the previous scrape (the worst serving process).',
      registers: [],
      aggregator: 'max',
    });
    const max = new Gauge({
      name: 'nodejs_eventloop_lag_max_seconds',
      help: 'Largest event-loop delay since the previous scrape.',
      registers: [],
      aggregator: 'max',
    });
    new Gauge({
      name: 'nodejs_eventloop_lag_p50_seconds',
      help: 'Event-loop delay p50 since the previous scrape (perf_hooks.monitorEventLoopDelay; the worst serving process).',
      registers,
      aggregator: 'max',
      collect() {
        this.set(seconds(loop.percentile(50)));
        p99.set(seconds(loop.percentile(99)));
        max.set(seconds(loop.max));
        loop.reset();
      },
    });
    this.registry.registerMetric(p99);
    this.registry.registerMetric(max);
    residentMemoryGauge(registers);

    const upstreamRequests = new Counter({
      name: `${PREFIX}upstream_requests_total`,
      help: 'Blob requests to each upstream host, by outcome: 2xx..5xx, or timeout, unreachable, reset when no answer came.',
      labelNames: ['host', 'outcome'],
      registers,
    });
    const upstreamBreaks = new Counter({
      name: `${PREFIX}upstream_transfer_breaks_total`,
      help: 'Upstream blob bodies that broke after their headers.',
      labelNames: ['host'],
      registers,
    });
    this.#upstreams = new UpstreamWatch({
      outcome: (host, outcome) => this.#child(upstreamRequests, 'u', host, outcome).inc(),
      broke: (host) => this.#child(upstreamBreaks, 'ub', host).inc(),
    });
  }

  /** Where the state gauges read from, once it exists (main.ts wires it after the fills). */
  collectFrom(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** This process's metrics as values, for the supervisor to merge (prom-client AggregatorRegistry). */
  snapshot(): ReturnType<Registry['getMetricsAsJSON']> {
    return this.registry.getMetricsAsJSON();
  }

  /** Counts upstream requests to these hosts (the chain's URLs); see upstream-watch.ts. */
  watchUpstreams(urls: readonly string[]): void {
    this.#upstreams.watch(urls);
  }

  /**
   * One call per request, where the router writes its log line. `seconds`: from its arrival
   * to its end; `firstByte`: to its first body byte, when one was written.
   */
  request(
    route: string,
    method: string | undefined,
    status: number,
    outcome: string | undefined,
    bytes: number,
    failed: boolean,
    seconds: number,
    firstByte?: number,
  ): void {
    const m = method !== undefined && METHODS.has(method) ? method : 'other';
    this.#requests.cell(route, m, String(status)).value++;
    this.#duration.cell(route, m).observe(seconds);
    if (failed && status < 400) this.#broken.cell(route).value++;
    if (route !== 'blob') return;
    const o = outcome ?? 'error';
    this.#blobRequests.cell(o).value++;
    if (bytes > 0) this.#blobBytes.cell(o).value += bytes;
    if (firstByte !== undefined && BODY_OUTCOMES.has(o)) this.#firstByte.cell(o).observe(firstByte);
  }

  /** Hooks for fill.ts (FillDeps.hooks); arrow properties, so they can be passed as an object. */
  readonly fillHooks = {
    upstreamBytes: (host: string, n: number): void => this.#child(this.#upstreamBytes, 'h', host).inc(n),
    settled: (s: FillSettled): void => {
      this.#child(this.#fills, 'f', s.outcome).inc();
      this.#fillClients.observe(1 + s.joins);
      if (s.outcome === 'digest-mismatch') this.#digestFailures.inc();
      if (s.outcome === 'published' && s.joins > 0) this.#collapseSaved.inc(s.joins * s.size);
    },
  };

  evicted(reason: string, bytes: number): void {
    this.#child(this.evictions, 'e', reason).inc();
    this.#child(this.evictedBytes, 'eb', reason).inc(bytes);
  }

  refused(reason: RefusalReason): void {
    this.#child(this.#refused, 'x', reason).inc();
  }

  /** The Prometheus text exposition (format 0.0.4). */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.#loop.disable();
    this.#upstreams.close();
  }

  /**
   * The label child for these values, made once: prom-client's labels() hashes its arguments
   * on every call. `ns` names the metric: one namespace per metric keeps the children's types apart.
   */
  #child<C>(metric: { labels(...values: string[]): C }, ns: string, ...values: string[]): C {
    const key = `${ns}\0${values.join('\0')}`;
    let child = this.#children.get(key) as C | undefined;
    if (child === undefined) {
      child = metric.labels(...values);
      this.#children.set(key, child);
    }
    return child;
  }
}

/** This process's RSS; across a node's processes the series add up to the node's. */
export function residentMemoryGauge(registers: Registry[]): Gauge {
  return new Gauge({
    name: 'process_resident_memory_bytes',
    help: "Resident memory size in bytes (summed over the node's processes).",
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
}
