// Warm hits: `hit-small-h1`, `hit-small-h2` (4 KiB blobs, c=64: req/s and latency) and
// `hit-large` (64 MiB blobs, c=8, HTTP/1.1 then HTTP/2: MiB/s). Each load is preceded by
// an unmeasured warm-up of the same shape.
import type { LoadResult } from '../drivers/protocol.js';
import { ErrorTally, load, MiB, round, warm, type Outcome } from './common.js';
import type { BenchEnv } from './env.js';
import type { Subject } from './subject.js';

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

export async function hitSmall(env: BenchEnv, subject: Subject, proto: 'h1' | 'h2'): Promise<Outcome> {
  const s = env.shape.hitSmall;
  const blobs = await smallBlobs(env);
  const errors = new ErrorTally();
  await warm(env, subject, blobs, errors);
  const driver = proto === 'h1' ? ('autocannon' as const) : ('undici' as const);
  const opts = { driver, proto, concurrency: s.concurrency, maxRequests: s.maxRequests, slackMs: 20_000 };
  if (env.shape.warmupMs > 0) {
    env.phase('warm-up load');
    errors.add(await load(env, subject, blobs, { ...opts, durationMs: env.shape.warmupMs }));
  }
  env.phase(`${proto} load, ${s.durationMs / 1000} s`);
  const r = errors.add(await load(env, subject, blobs, { ...opts, durationMs: s.durationMs }));
  return {
    params: { blobs: s.blobs, blobBytes: s.size, concurrency: s.concurrency, durationMs: s.durationMs, proto, driver },
    figures: {
      reqPerSec: round(r.reqPerSec, 0),
      p50Ms: round(r.latencyMs.p50, 2),
      p99Ms: round(r.latencyMs.p99, 2),
      maxMs: round(r.latencyMs.max, 1),
      requests: r.requests,
    },
    errors: errors.count,
    errorSamples: errors.samples,
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
  for (const proto of ['h1', 'h2'] as const) {
    if (proto === 'h2' && !subject.h2) {
      figures['h2MiBps'] = null;
      figures['h2P99Ms'] = null;
      continue;
    }
    // HTTP/1.1 by the raw driver: autocannon's JavaScript parser completed no 64 MiB
    // response in 5 s at c=8 here, and undici's own CPU per GB capped what it could measure
    // (bench/README.md, "Load drivers for large bodies").
    const opts = {
      driver: proto === 'h1' ? ('raw' as const) : ('undici' as const),
      proto,
      concurrency: s.concurrency,
      maxRequests: s.maxRequests,
      slackMs: 60_000,
    };
    if (env.shape.warmupMs > 0) {
      env.phase(`${proto} warm-up load`);
      errors.add(await load(env, subject, blobs, { ...opts, durationMs: env.shape.warmupMs }));
    }
    env.phase(`${proto} load, ${s.durationMs / 1000} s`);
    const r = errors.add(await load(env, subject, blobs, { ...opts, durationMs: s.durationMs }));
    figures[`${proto}MiBps`] = mibps(r);
    figures[`${proto}P99Ms`] = round(r.latencyMs.p99, 0);
    figures[`${proto}Requests`] = r.requests;
  }
  return {
    params: {
      blobs: s.blobs,
      blobBytes: s.size,
      concurrency: s.concurrency,
      durationMs: s.durationMs,
      h1Driver: 'raw',
      h2Driver: 'undici',
    },
    figures,
    errors: errors.count,
    errorSamples: errors.samples,
    ...(subject.h2 ? {} : { note: `${subject.kind} speaks HTTP/1.1 only: no h2 figures` }),
  };
}
