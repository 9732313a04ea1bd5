// What the harness tells a load driver (a JSON file named on its command line) and what
// the driver answers (a JSON file it writes before exiting). Drivers run as their own
// processes, so the load generator never shares a thread with the server it measures.
import { readFile, writeFile } from 'node:fs/promises';
import { stackOf } from '../../src/errors/inspect.js';

export interface LoadTarget {
  /** `https://localhost:PORT` */
  origin: string;
  /** PEM file of the CA that signed the server's certificate. */
  caPath: string;
  /** Request paths, query (redirect token) included. */
  paths: string[];
  /** Expected body size of each path; a different size counts as an error. */
  sizes: number[];
  /**
   * Digest of each path's body (`sha256:…`). The raw driver hashes the first response of
   * each path and counts a mismatch as an error; the others check sizes only.
   */
  digests?: string[];
}

export interface LoadSpec extends LoadTarget {
  driver: 'autocannon' | 'undici' | 'raw' | 'wrk' | 'h2load';
  /** HTTP/2 (undici with `allowH2`, h2load) or HTTP/1.1 (autocannon, raw, wrk, undici). */
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
  /**
   * raw only: open every connection (TLS handshake included) before the clock starts, so
   * times run from the request to the response, not from the connect.
   */
  preconnect?: boolean;
  /** undici: HTTP/2 connections in the pool (1 = every stream on one connection, as browsers and Go do). */
  h2Connections?: number;
  /** undici only: request headers sent with every request (the manifest `Accept` of a registry client). */
  headers?: Record<string, string>;
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
  const at = (q: number): number =>
    sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.length === 0 ? 0 : (sorted[sorted.length - 1] ?? 0) };
}

/** What one request came to, as a driver's fetch function reports it. */
export interface Fetched {
  ok: boolean;
  bytes: number;
  /** Milliseconds from the request's start to its first body byte; -1 if none came. */
  ttfb: number;
  error?: string;
}

/** Checks a finished response against what the spec expects of `path`. */
export function judge(path: string, status: number, bytes: number, expect: number, ttfb: number): Fetched {
  const name = path.split('?')[0];
  if (status !== 200) return { ok: false, bytes, ttfb, error: `status ${status} for ${name}` };
  if (bytes !== expect) return { ok: false, bytes, ttfb, error: `short body: ${bytes} of ${expect} bytes for ${name}` };
  return { ok: true, bytes, ttfb };
}

/**
 * A closed loop: `concurrency` loops, each issuing a request, awaiting it, issuing the
 * next, until the duration or request cap (or a non-cycling `order`) runs out. Loop `n`
 * passes its own index so a driver can keep one connection per loop.
 */
export async function closedLoop(
  spec: LoadSpec,
  fetchOne: (loop: number, index: number) => Promise<Fetched>,
): Promise<LoadResult> {
  const latency: number[] = [];
  const ttfb: number[] = [];
  const samples: string[] = [];
  let errors = 0;
  let bytes = 0;
  const t0 = performance.now();
  let lastEnd = t0;
  const deadline = t0 + spec.durationMs;
  let issued = 0;
  const next = (): number | undefined => {
    if (issued >= spec.maxRequests || performance.now() > deadline) return undefined;
    const pos = issued++;
    if (spec.order === undefined) return pos % spec.paths.length;
    if (pos >= spec.order.length && !spec.cycle) return undefined;
    return spec.order[pos % spec.order.length];
  };
  const loop = async (n: number): Promise<void> => {
    for (let i = next(); i !== undefined; i = next()) {
      const started = performance.now();
      const r = await fetchOne(n, i);
      const ended = performance.now();
      lastEnd = Math.max(lastEnd, ended);
      bytes += r.bytes;
      latency.push(ended - started);
      if (r.ttfb >= 0) ttfb.push(r.ttfb);
      if (!r.ok) {
        errors++;
        if (samples.length < 5 && r.error !== undefined) samples.push(r.error);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, n) => loop(n)));
  const elapsedMs = lastEnd - t0;
  return {
    requests: latency.length,
    errors,
    errorSamples: samples,
    bytes,
    elapsedMs,
    reqPerSec: elapsedMs > 0 ? (latency.length * 1000) / elapsedMs : 0,
    bytesPerSec: elapsedMs > 0 ? (bytes * 1000) / elapsedMs : 0,
    latencyMs: percentiles(latency),
    ttfbMs: ttfb.length > 0 ? percentiles(ttfb) : null,
  };
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
    process.stderr.write(`${stackOf(err)}\n`);
    process.exit(1);
  });
}
