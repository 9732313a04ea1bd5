// What the harness tells a load driver (a JSON file named on its command line) and what
// the driver answers (a JSON file it writes before exiting). Drivers run as their own
// processes, so the load generator never shares a thread with the server it measures.
import { readFile, writeFile } from 'node:fs/promises';

export interface LoadTarget {
  /** `https://localhost:PORT` */
  origin: string;
  /** PEM file of the CA that signed the server's certificate. */
  caPath: string;
  /** Request paths, query (redirect token) included. */
  paths: string[];
  /** Expected body size of each path; a different size counts as an error. */
  sizes: number[];
}

export interface LoadSpec extends LoadTarget {
  driver: 'autocannon' | 'undici';
  /** undici only: HTTP/2 (`allowH2`) or HTTP/1.1. autocannon is always HTTP/1.1. */
  proto: 'h1' | 'h2';
  /** Requests in flight at once (HTTP/1.1: one connection each). */
  concurrency: number;
  /**
   * Which path each request takes, by index; with `cycle` the order repeats until the
   * duration or the request cap ends the loop. autocannon cycles through `paths` itself.
   */
  order?: number[];
  cycle: boolean;
  /** Stop starting requests after this long. */
  durationMs: number;
  /** Stop starting requests after this many. */
  maxRequests: number;
  /** A single request may take this long before it counts as an error. */
  requestTimeoutMs: number;
  /** undici: HTTP/2 connections in the pool (1 = every stream on one connection, as browsers and Go do). */
  h2Connections?: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  errorSamples: string[];
  /** Body bytes received. */
  bytes: number;
  /** From the first request's start to the last one's end. */
  elapsedMs: number;
  reqPerSec: number;
  bytesPerSec: number;
  latencyMs: Percentiles;
  /** Time to the first body byte (undici driver only). */
  ttfbMs: Percentiles | null;
}

export function percentiles(values: Float64Array | number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length === 0 ? 0 : sorted[sorted.length - 1] ?? 0 };
}

/** A driver's entry point: `node DRIVER.js SPEC.json RESULT.json`; exit 1 with the stack on failure. */
export function driverMain(name: string, run: (spec: LoadSpec) => Promise<LoadResult>): void {
  const [specPath, resultPath] = process.argv.slice(2);
  const go = async (): Promise<void> => {
    if (specPath === undefined || resultPath === undefined) throw new Error(`usage: ${name}.js SPEC.json RESULT.json`);
    const spec = JSON.parse(await readFile(specPath, 'utf8')) as LoadSpec;
    await writeFile(resultPath, JSON.stringify(await run(spec)));
  };
  go().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
