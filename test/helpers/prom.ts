// Reads a real /metrics answer: the Prometheus text exposition format, parsed just enough
// to look up one sample by name and labels.
import { request } from 'undici';

export interface Scrape {
  text: string;
  /** The sample's value; undefined when absent. Labels must match exactly (all of them). */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** The sum of every sample of `name`, whatever its labels; undefined when there is none. */
  sum(name: string): number | undefined;
  /** One series of a histogram: its buckets in the order exposed, with `_count` and `_sum`. */
  histogram(name: string, labels?: Record<string, string>): Histogram;
}

export interface Histogram {
  /** [upper bound (`le`, +Inf last), cumulative count]. */
  buckets: Array<[number, number]>;
  count: number | undefined;
  sum: number | undefined;
}

function key(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;
}

export function parseMetrics(text: string): Scrape {
  const samples = new Map<string, number>();
  const sums = new Map<string, number>();
  const buckets = new Map<string, Array<[number, number]>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[lm[1]!] = JSON.parse(`"${lm[2]!}"`) as string;
    const name = m[1] ?? '';
    samples.set(key(name, labels), Number(m[3]));
    if (name.endsWith('_bucket') && labels['le'] !== undefined) {
      const { le, ...series } = labels;
      const k = key(name, series);
      buckets.set(k, [...(buckets.get(k) ?? []), [le === '+Inf' ? Infinity : Number(le), Number(m[3])]]);
    }
    sums.set(name, (sums.get(name) ?? 0) + Number(m[3]));
  }
  const value = (name: string, labels: Record<string, string> = {}) => samples.get(key(name, labels));
  return {
    text,
    value,
    sum: (name) => sums.get(name),
    histogram: (name, labels = {}) => ({
      buckets: buckets.get(key(`${name}_bucket`, labels)) ?? [],
      count: value(`${name}_count`, labels),
      sum: value(`${name}_sum`, labels),
    }),
  };
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await request(url, { headersTimeout: 5_000, bodyTimeout: 5_000 });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${text.slice(0, 200)}`);
  if (!String(res.headers['content-type']).startsWith('text/plain; version=0.0.4'))
    throw new Error(`content-type ${String(res.headers['content-type'])}`);
  return parseMetrics(text);
}
