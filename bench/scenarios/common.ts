// Pieces every scenario uses: building load specs against a subject, warming blobs into
// it, collecting errors, and rounding figures for the report.
import type { LoadResult, LoadSpec } from '../drivers/protocol.js';
import type { Blob } from './corpus.js';
import { runLoad } from './drive.js';
import type { BenchEnv } from './env.js';
import type { Subject } from './subject.js';
import type { Ceiling, Figure } from './types.js';

/** What a scenario body returns; the runner adds name, status, ratios and timing. */
export interface Outcome {
  params: Record<string, number | string | boolean>;
  figures: Record<string, Figure>;
  ceilings?: Ceiling[];
  errors: number;
  errorSamples: string[];
  note?: string;
}

export function round(v: number | null | undefined, digits = 1): Figure {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export const MiB = 1024 * 1024;

/** Collects request errors of several loads into one outcome. */
export class ErrorTally {
  count = 0;
  readonly samples: string[] = [];
  add(r: LoadResult): LoadResult {
    this.count += r.errors;
    for (const s of r.errorSamples) if (this.samples.length < 8) this.samples.push(s);
    return r;
  }
}

export interface LoadOptions {
  driver: LoadSpec['driver'];
  proto: LoadSpec['proto'];
  concurrency: number;
  durationMs: number;
  maxRequests: number;
  order?: number[];
  cycle?: boolean;
  /** How long past `durationMs` the driver may run before it is killed. */
  slackMs?: number;
  requestTimeoutMs?: number;
  /**
   * Whether the raw driver hashes the first body of each path (default true). Off for
   * single timed fetches: hashing 512 MiB on the driver's thread would time the driver.
   */
  verify?: boolean;
  /** raw driver: connect (and handshake) before timing starts. */
  preconnect?: boolean;
  /** undici driver: headers for every request. */
  headers?: Record<string, string>;
}

/** Runs one load against `subject` over `blobs` (by index in `order`, or cycling). */
export async function load(env: BenchEnv, subject: Subject, blobs: Blob[], o: LoadOptions): Promise<LoadResult> {
  const paths = await Promise.all(blobs.map((b) => subject.path(b.digest)));
  const spec: LoadSpec = {
    driver: o.driver,
    proto: o.proto,
    origin: subject.origin,
    caPath: env.ca.certPath,
    paths,
    sizes: blobs.map((b) => b.size),
    ...(o.verify === false ? {} : { digests: blobs.map((b) => b.digest) }),
    ...(o.preconnect === true ? { preconnect: true } : {}),
    ...(o.headers === undefined ? {} : { headers: o.headers }),
    concurrency: o.concurrency,
    cycle: o.cycle ?? true,
    durationMs: o.durationMs,
    maxRequests: o.maxRequests,
    requestTimeoutMs: o.requestTimeoutMs ?? 120_000,
    ...(o.order !== undefined ? { order: o.order } : {}),
  };
  return runLoad(env.workDir, spec, o.slackMs ?? 30_000, env.settings.cpuProfDir);
}

/**
 * A measured load in which no request completed has no figure to give, whatever the
 * driver says: it counts as an error. (Warm-up loads may complete nothing: a 200 ms
 * warm-up of 8 MiB bodies often does not.)
 */
export function measured(r: LoadResult): LoadResult {
  if (r.requests > 0 || r.errors > 0) return r;
  return { ...r, errors: 1, errorSamples: [...r.errorSamples, 'no request completed in the measured load'] };
}

/** Time a transfer of `bytes` takes from the far origin, with headroom: the slack for cold loads. */
export function wanMs(env: BenchEnv, bytes: number): number {
  return 30_000 + 4 * ((bytes * 1000) / env.settings.bandwidth + env.settings.latencyMs);
}

/**
 * Fetches each blob once through `subject` (HTTP/1.1), so later loads are hits. Static
 * servers (no upstream) already have every blob on disk: the warm-up load suffices.
 */
export async function warm(
  env: BenchEnv,
  subject: Subject,
  blobs: Blob[],
  errors: ErrorTally,
  concurrency = 16,
): Promise<void> {
  if (blobs.length === 0 || subject.upstream === null) return;
  const biggest = Math.max(...blobs.map((b) => b.size));
  env.phase(`warming ${blobs.length} blob(s)`);
  errors.add(
    await load(env, subject, blobs, {
      driver: 'undici',
      proto: 'h1',
      concurrency: Math.min(concurrency, blobs.length),
      order: blobs.map((_, i) => i),
      cycle: false,
      maxRequests: blobs.length,
      durationMs: wanMs(env, biggest * Math.ceil(blobs.length / concurrency)),
      slackMs: wanMs(env, biggest),
    }),
  );
}

/** Starts a subject, runs `body`, and always stops it; a subject that died fails the scenario. */
export async function withSubject<T>(start: () => Promise<Subject>, body: (s: Subject) => Promise<T>): Promise<T> {
  const subject = await start();
  try {
    const out = await body(subject);
    if (subject.crashed()) throw new Error(`${subject.kind} exited during the scenario`);
    return out;
  } finally {
    await subject.stop();
  }
}
