// One /metrics for a node of several processes: every process's registry merged by
// prom-client's AggregatorRegistry (counters and histogram buckets summed, each gauge as
// its `aggregator` says: src/metrics/metrics.ts), with the supervisor's own series. The
// node's counters never go down: a process that does not answer a scrape counts with its
// last answer, and one that exited keeps its counters and histograms in the node's totals
// (a replacement starts from zero; Prometheus would read the dip as a reset).
// Loaded only when metrics are enabled: prom-client costs the supervisor ~18 MiB RSS.
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { residentMemoryGauge } from '../metrics/metrics.js';
import type { MetricsSnapshot } from './messages.js';

/** The supervisor's own series, merged with the processes'. */
export class NodeMetrics {
  readonly #registry = new Registry();
  readonly #restarts: Counter;
  /** Each live process's last answer, by node:cluster worker id. */
  readonly #last = new Map<number, MetricsSnapshot>();
  /** The counters and histograms of processes that exited, merged. */
  #retired: MetricsSnapshot = [];
  /**
   * Those of processes that exited and are not merged into #retired yet. A scrape renders
   * both, so a process's counts stay in the node's totals from its exit on; the merges run
   * one after another, so two processes that exit together are both kept.
   */
  readonly #retiring = new Set<MetricsSnapshot>();
  #merging: Promise<void> = Promise.resolve();
  /** Processes retired: an answer of theirs that arrives after the exit is already counted. */
  readonly #gone = new Set<number>();

  constructor(live: () => number) {
    const registers = [this.#registry];
    new Gauge({
      name: 'dtr_cache_processes',
      help: 'Serving processes running and listening now.',
      registers,
      collect() {
        this.set(live());
      },
    });
    this.#restarts = new Counter({
      name: 'dtr_cache_process_restarts_total',
      help: 'Serving processes that died and were replaced.',
      registers,
    });
    // Summed with the processes' own: the node's resident memory.
    residentMemoryGauge(registers);
  }

  restarted(): void {
    this.#restarts.inc();
  }

  /** A process exited: what it counted up to its last answer stays in the node's totals. */
  retire(id: number): Promise<void> {
    this.#gone.add(id);
    const last = this.#last.get(id);
    this.#last.delete(id);
    if (last === undefined) return this.#merging;
    // Gauges and summaries describe a process now gone; counts and bucket counts do not.
    // (prom-client types `type` as a numeric enum; in the JSON it is the type's name.)
    const counts = last.filter((m) => ['counter', 'histogram'].includes(String(m.type)));
    this.#retiring.add(counts);
    this.#merging = this.#merging.then(async () => {
      const merged = await AggregatorRegistry.aggregate([this.#retired, counts]).getMetricsAsJSON();
      // In one step, so a scrape sees these counts exactly once.
      this.#retired = merged;
      this.#retiring.delete(counts);
    });
    // A merge that failed leaves its counts in #retiring, still counted; the next ones go on.
    this.#merging = this.#merging.catch(() => undefined);
    return this.#merging;
  }

  /** Prometheus text of the node: each process's answer (null: none in time), the retired counts, ours. */
  async render(answers: ReadonlyArray<{ id: number; snapshot: MetricsSnapshot | null }>): Promise<{
    contentType: string;
    body: string;
  }> {
    const snapshots: MetricsSnapshot[] = [this.#retired, ...this.#retiring];
    for (const { id, snapshot } of answers) {
      if (this.#gone.has(id)) continue;
      if (snapshot !== null) this.#last.set(id, snapshot);
      const used = snapshot ?? this.#last.get(id);
      if (used !== undefined) snapshots.push(used);
    }
    const merged = AggregatorRegistry.aggregate([...snapshots, await this.#registry.getMetricsAsJSON()]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}
