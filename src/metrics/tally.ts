// Series bumped on every request, kept as plain numbers. A prom-client label child hashes
// its labels on every inc() and observe(); five of those per request cost a small hit about
// 3 µs, and the hit path's throughput moves by several times its CPU (bench/NOTES.md, "The
// access log and the metrics on the hit path"). A tally's cells are found by their label
// values once and bumped as fields; prom-client reads them only when /metrics is scraped,
// through the metric interface its Registry and AggregatorRegistry use (get()).
import type { Registry } from 'prom-client';

type Labels = Record<string, string | number>;

interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}

interface TallyOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

abstract class Tally<L extends string, C> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  /** Across a node's processes, each value adds up. */
  readonly aggregator = 'sum';
  readonly #labelNames: readonly L[];
  readonly #cells = new Map<string, { labels: Labels; cell: C }>();

  constructor(o: TallyOptions<L>) {
    this.name = o.name;
    this.help = o.help;
    this.#labelNames = o.labelNames;
    // The Registry takes any object with a name and get(); its types name only its own classes.
    for (const r of o.registers) r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The cell of these label values (in labelNames' order), made on first use. */
  cell(...values: string[]): C {
    const key = values.join('\0');
    let entry = this.#cells.get(key);
    if (entry === undefined) {
      const labels: Labels = {};
      this.#labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      entry = { labels, cell: this.newCell() };
      this.#cells.set(key, entry);
    }
    return entry.cell;
  }

  /** What a scrape reads (prom-client's metric interface). */
  get(): { name: string; help: string; type: string; aggregator: string; values: Value[] } {
    const values = [...this.#cells.values()].flatMap(({ labels, cell }) => this.valuesOf(labels, cell));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#cells.clear();
  }

  protected abstract newCell(): C;
  protected abstract valuesOf(labels: Labels, cell: C): Value[];
}

export class CounterTally<L extends string> extends Tally<L, { value: number }> {
  readonly type = 'counter';

  protected newCell(): { value: number } {
    return { value: 0 };
  }

  protected valuesOf(labels: Labels, cell: { value: number }): Value[] {
    return [{ labels, value: cell.value }];
  }
}

/** One label set's observations: a count per bucket (the last is +Inf), their sum and count. */
export class HistogramCell {
  readonly #bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    let i = 0;
    while (i < this.#bounds.length && v > (this.#bounds[i] ?? Infinity)) i++;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.sum += v;
    this.count++;
  }
}

export class HistogramTally<L extends string> extends Tally<L, HistogramCell> {
  readonly type = 'histogram';
  readonly #bounds: readonly number[];

  /** `buckets`: the upper bounds, ascending (+Inf is added). */
  constructor(o: TallyOptions<L> & { buckets: readonly number[] }) {
    super(o);
    this.#bounds = [...o.buckets].sort((a, b) => a - b);
  }

  protected newCell(): HistogramCell {
    return new HistogramCell(this.#bounds);
  }

  /** As prom-client writes a histogram: cumulative `_bucket`s by `le`, then `_sum` and `_count`. */
  protected valuesOf(labels: Labels, cell: HistogramCell): Value[] {
    const out: Value[] = [];
    let cumulative = 0;
    const les: Array<number | string> = [...this.#bounds, '+Inf'];
    les.forEach((le, i) => {
      cumulative += cell.counts[i] ?? 0;
      out.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
    });
    out.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: cell.count, metricName: `${this.name}_count` });
    return out;
  }
}
