// One /metrics for a node of several processes: every process's registry merged by
// prom-client's AggregatorRegistry (counters and histogram buckets summed, each gauge as
// its `aggregator` says: src/metrics/metrics.ts), with the supervisor's own series.
// Loaded only when metrics are enabled: prom-client costs the supervisor ~18 MiB RSS.
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { residentMemoryGauge } from '../metrics/metrics.js';
import type { MetricsSnapshot } from './messages.js';

/** The supervisor's own series, merged with the processes'. */
export class NodeMetrics {
  readonly #registry = new Registry();
  readonly #restarts: Counter;

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

  /** Prometheus text of the node: the processes' snapshots (those that answered) and ours. */
  async render(snapshots: readonly MetricsSnapshot[]): Promise<{ contentType: string; body: string }> {
    const merged = AggregatorRegistry.aggregate([...snapshots, await this.#registry.getMetricsAsJSON()]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}
