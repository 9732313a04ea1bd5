// `mixed`: 1,000 blobs of log-uniform sizes, requests drawn from a Zipf distribution
// over a random popularity order, with the most popular blobs warmed first so that about
// `hitShare` of the requests are hits. The hit ratio reported is measured: 1 − upstream
// GETs at the mock ÷ requests.
import { ErrorTally, load, MiB, round, warm, wanMs, type Outcome } from './common.js';
import type { BenchEnv } from './env.js';
import type { Subject } from './subject.js';

/** mulberry32: a small seeded PRNG, so every run draws the same sizes and sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MixedPlan {
  sizes: number[];
  /** Blob index of each request, in order. */
  sequence: number[];
  /** Blob indexes fetched before the timed run. */
  warm: number[];
  /** The hit share the plan expects (before collapsing concurrent misses). */
  expectedHitShare: number;
}

export function planMixed(
  o: { blobs: number; minSize: number; maxSize: number; zipfS: number; hitShare: number; requests: number },
  seed = 6,
): MixedPlan {
  const rnd = prng(seed);
  const lo = Math.log(o.minSize);
  const hi = Math.log(o.maxSize);
  const sizes = Array.from({ length: o.blobs }, () => Math.round(Math.exp(lo + rnd() * (hi - lo))));
  // Popularity rank r (0 = most popular) → blob index, shuffled so size and rank are independent.
  const byRank = Array.from({ length: o.blobs }, (_, i) => i);
  for (let i = byRank.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [byRank[i], byRank[j]] = [byRank[j] ?? 0, byRank[i] ?? 0];
  }
  const cdf: number[] = [];
  let acc = 0;
  for (let r = 1; r <= o.blobs; r++) cdf.push((acc += 1 / r ** o.zipfS));
  const draw = (): number => {
    const x = rnd() * acc;
    let l = 0;
    let h = cdf.length - 1;
    while (l < h) {
      const m = (l + h) >> 1;
      if ((cdf[m] ?? 0) < x) l = m + 1;
      else h = m;
    }
    return byRank[l] ?? 0;
  };
  const sequence = Array.from({ length: o.requests }, draw);
  // Warm the most requested blobs until first-time requests of the rest are at most 1 − hitShare.
  const counts = new Map<number, number>();
  for (const b of sequence) counts.set(b, (counts.get(b) ?? 0) + 1);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([b]) => b);
  let cold = ranked.length;
  const warmSet: number[] = [];
  while (cold > (1 - o.hitShare) * o.requests && warmSet.length < ranked.length) {
    warmSet.push(ranked[warmSet.length] ?? 0);
    cold--;
  }
  return { sizes, sequence, warm: warmSet, expectedHitShare: 1 - cold / o.requests };
}

export async function mixed(env: BenchEnv, subject: Subject): Promise<Outcome> {
  const s = env.shape.mixed;
  const plan = planMixed(s);
  const blobs = await env.blobs('mixed', plan.sizes);
  const upstream = subject.upstream;
  if (upstream === null) throw new Error('mixed needs a subject with an upstream');
  const errors = new ErrorTally();
  await warm(
    env,
    subject,
    plan.warm.map((i) => blobs[i]!),
    errors,
  );
  const digests = blobs.map((b) => b.digest);
  const before = await upstream.servedGets(digests);
  env.phase(`${plan.sequence.length} Zipf requests, c=${s.concurrency}`);
  const r = errors.add(
    await load(env, subject, blobs, {
      driver: 'undici',
      proto: 'h1',
      concurrency: s.concurrency,
      order: plan.sequence,
      cycle: false,
      maxRequests: plan.sequence.length,
      durationMs: s.durationMs,
      slackMs: wanMs(env, s.maxSize),
    }),
  );
  const misses = (await upstream.servedGets(digests)) - before;
  return {
    params: {
      blobs: s.blobs,
      minBytes: s.minSize,
      maxBytes: s.maxSize,
      zipfS: s.zipfS,
      requests: plan.sequence.length,
      concurrency: s.concurrency,
      warmed: plan.warm.length,
      plannedHitShare: round(plan.expectedHitShare, 3) ?? 0,
      proto: 'h1',
      driver: 'undici',
    },
    figures: {
      reqPerSec: round(r.reqPerSec, 0),
      MiBps: round(r.bytesPerSec / MiB, 1),
      hitRatio: r.requests > 0 ? round(1 - misses / r.requests, 3) : null,
      upstreamGets: misses,
      p50Ms: round(r.latencyMs.p50, 1),
      p99Ms: round(r.latencyMs.p99, 1),
      requests: r.requests,
    },
    errors: errors.count,
    errorSamples: errors.samples,
  };
}
