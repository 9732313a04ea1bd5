// Warm hits: `hit-small-h1`, `hit-small-h2` (4 KiB blobs, c=64: req/s and latency) and
// `hit-large` (64 MiB blobs, c=8, HTTP/1.1 then HTTP/2: MiB/s). Each load is preceded by
// an unmeasured warm-up of the same shape. Each throughput figure comes with its driver's
// ceiling: the same driver and shape against nginx static (ceilings.ts).
import type { LoadResult, LoadSpec } from '../drivers/protocol.js';
import { ceilingOf, measureCeiling } from './ceilings.js';
import { cpuSecondsTree } from './procs.js';
import { ErrorTally, load, measured, MiB, round, warm, type Outcome } from './common.js';
import type { BenchEnv } from './env.js';
import type { Subject } from './subject.js';
import type { Ceiling } from './types.js';

function smallBlobs(env: BenchEnv) {
  const s = env.shape.hitSmall;
  return env.blobs(
    'hit-small',
    Array.from({ length: s.blobs }, () => s.size),
  );
}

function largeBlobs(env: BenchEnv) {
  const s = env.shape.hitLarge;
  return env.blobs(
    'hit-large',
    Array.from({ length: s.blobs }, () => s.size),
  );
}

interface HitLoad {
  driver: LoadSpec['driver'];
  proto: LoadSpec['proto'];
  concurrency: number;
  maxRequests: number;
  durationMs: number;
  slackMs: number;
}

/**
 * The warm-up load (unmeasured), then the measured one, against blobs already warm, with
 * the CPU seconds the subject's processes used during the measured one (null: no pid).
 */
async function warmAndMeasure(
  env: BenchEnv,
  subject: Subject,
  blobs: Awaited<ReturnType<typeof smallBlobs>>,
  l: HitLoad,
  errors: ErrorTally,
): Promise<LoadResult & { cpuSeconds: number | null }> {
  if (env.shape.warmupMs > 0) {
    env.phase(`${l.proto} warm-up load`);
    errors.add(await load(env, subject, blobs, { ...l, durationMs: env.shape.warmupMs }));
  }
  env.phase(`${l.proto} load, ${l.durationMs / 1000} s, ${l.driver}`);
  const cpu = subject.pid === null ? null : await cpuSecondsTree(subject.pid);
  const r = errors.add(measured(await load(env, subject, blobs, l)));
  const cpuSeconds = cpu === null || subject.pid === null ? null : (await cpuSecondsTree(subject.pid)) - cpu;
  return { ...r, cpuSeconds };
}

/** Server CPU per request, in microseconds (null when unknown). */
function cpuUsPer(r: { cpuSeconds: number | null }, count: number): number | null {
  return r.cpuSeconds === null || count <= 0 ? null : round((r.cpuSeconds * 1e6) / count, 1);
}

export async function hitSmall(env: BenchEnv, subject: Subject, proto: 'h1' | 'h2'): Promise<Outcome> {
  const s = env.shape.hitSmall;
  const blobs = await smallBlobs(env);
  const errors = new ErrorTally();
  await warm(env, subject, blobs, errors);
  const driver = proto === 'h1' ? env.settings.drivers.smallH1 : env.settings.drivers.h2;
  const l: HitLoad = {
    driver,
    proto,
    concurrency: s.concurrency,
    maxRequests: s.maxRequests,
    durationMs: s.durationMs,
    slackMs: 20_000,
  };
  const r = await warmAndMeasure(env, subject, blobs, l, errors);
  const reqPerSec = round(r.reqPerSec, 0);
  const ceiling = await measureCeiling(env, `hit-small-${proto}`, l, (nginx, tally) =>
    warmAndMeasure(env, nginx, blobs, l, tally),
  );
  return {
    params: { blobs: s.blobs, blobBytes: s.size, concurrency: s.concurrency, durationMs: s.durationMs, proto, driver },
    figures: {
      reqPerSec,
      p50Ms: round(r.latencyMs.p50, 2),
      p99Ms: round(r.latencyMs.p99, 2),
      maxMs: round(r.latencyMs.max, 1),
      requests: r.requests,
      cpuUsPerReq: cpuUsPer(r, r.requests),
    },
    ceilings: [
      ceilingOf('reqPerSec', driver, reqPerSec, ceiling.result === null ? null : round(ceiling.result.reqPerSec, 0)),
    ],
    errors: errors.count,
    errorSamples: errors.samples,
    ...(ceiling.note !== null ? { note: ceiling.note } : {}),
  };
}

function mibps(r: LoadResult): number | null {
  return round(r.bytesPerSec / MiB, 0);
}

export async function hitLarge(env: BenchEnv, subject: Subject): Promise<Outcome> {
  const s = env.shape.hitLarge;
  const blobs = await largeBlobs(env);
  const errors = new ErrorTally();
  await warm(env, subject, blobs, errors, s.blobs);
  const figures: Outcome['figures'] = {};
  const ceilings: Ceiling[] = [];
  const notes: string[] = [];
  const drivers = { h1: env.settings.drivers.largeH1, h2: env.settings.drivers.h2 };
  for (const proto of ['h1', 'h2'] as const) {
    if (proto === 'h2' && !subject.h2) {
      figures['h2MiBps'] = null;
      figures['h2P99Ms'] = null;
      continue;
    }
    const l: HitLoad = {
      driver: drivers[proto],
      proto,
      concurrency: s.concurrency,
      maxRequests: s.maxRequests,
      durationMs: s.durationMs,
      slackMs: 60_000,
    };
    const r = await warmAndMeasure(env, subject, blobs, l, errors);
    figures[`${proto}MiBps`] = mibps(r);
    figures[`${proto}P99Ms`] = round(r.latencyMs.p99, 0);
    figures[`${proto}Requests`] = r.requests;
    // Server CPU per GiB served: µs per request over GiB per request.
    const perReq = cpuUsPer(r, r.requests);
    figures[`${proto}CpuMsPerGiB`] = perReq === null ? null : round(perReq / 1000 / (s.size / 2 ** 30), 0);
    const ceiling = await measureCeiling(env, `hit-large-${proto}`, l, (nginx, tally) =>
      warmAndMeasure(env, nginx, blobs, l, tally),
    );
    ceilings.push(
      ceilingOf(`${proto}MiBps`, l.driver, mibps(r), ceiling.result === null ? null : mibps(ceiling.result)),
    );
    if (ceiling.note !== null) notes.push(ceiling.note);
  }
  if (!subject.h2) notes.push(`${subject.kind} speaks HTTP/1.1 only: no h2 figures`);
  return {
    params: {
      blobs: s.blobs,
      blobBytes: s.size,
      concurrency: s.concurrency,
      durationMs: s.durationMs,
      h1Driver: drivers.h1,
      h2Driver: drivers.h2,
    },
    figures,
    ceilings,
    errors: errors.count,
    errorSamples: errors.samples,
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}
