// Cold misses from an origin at full speed (the mock on loopback, no added latency, no
// bandwidth cap), where the cache's own miss path is the whole cost:
// - `cold-single-fast`: one client, one cold blob of each size in turn, beside the same
//   fetch straight from the origin; TTFB and total per size, medians of `reps`.
// - `chain-cold-fast`: the same sizes through edge → regional → origin, beside one tier.
// - `cold-stampede-fast`: clients on one cold blob at once, beside as many pulls straight
//   from the origin.
// Every subject is warm before it is timed: each of its serving processes has filled other
// cold blobs, so its code is compiled and its upstream connection open. Before each timed
// fetch the previous one's after-work (hashing, fsync, rename) is let finish: the blob is
// published and the processes are quiet.
import { SMALL_BLOB_MAX } from '../../src/fill/small-blob.js';
import { ErrorTally, load, MiB, round, withSubject, type Outcome } from './common.js';
import type { Blob } from './corpus.js';
import type { BenchEnv } from './env.js';
import type { MockOrigin } from './origin.js';
import { peakRssTree, quiet, samplePssTree } from './procs.js';
import { sizeLabel } from './shape.js';
import { originSubject, startCacheSubject, startRelaySubject, type Subject } from './subject.js';
import type { Figure, Processes } from './types.js';

interface Timed {
  ttfbMs: number;
  totalMs: number;
}

function median(values: number[]): Figure {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? null) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/**
 * Waits until `blob` is published where that can be seen, then until the processes are
 * quiet (not in smoke runs, whose figures nobody reads: there it only costs time).
 */
async function settle(env: BenchEnv, subjects: Subject[], blob: Blob | null): Promise<void> {
  const end = performance.now() + 60_000;
  for (const s of subjects) {
    if (blob === null || s.published === undefined) continue;
    while (!(await s.published(blob.digest)) && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  }
  if (env.settings.mode !== 'smoke') await quiet(subjects.map((s) => s.pid).filter((p): p is number => p !== null));
}

/**
 * One fetch of one blob by a fresh client on a new connection, opened before the clock
 * starts (TTFB and total run from the request); null when it failed.
 */
async function fetchOnce(env: BenchEnv, subject: Subject, blob: Blob, errors: ErrorTally): Promise<Timed | null> {
  const r = errors.add(
    await load(env, subject, [blob], {
      driver: 'raw',
      proto: 'h1',
      concurrency: 1,
      order: [0],
      cycle: false,
      maxRequests: 1,
      durationMs: 1_000,
      slackMs: 120_000,
      verify: false,
      preconnect: true,
    }),
  );
  if (r.errors > 0 || r.ttfbMs === null) return null;
  return { ttfbMs: r.ttfbMs.p50, totalMs: r.latencyMs.p50 };
}

/** Rounds of the warm-up at most: fresh connections land on a random serving process. */
const WARM_ROUNDS = 8;

/**
 * Two other cold blobs through each subject (and the origin), a small and a large: compiled
 * code, open connections. Each fetch comes on a new connection, which lands on any of a
 * node's serving processes, and so do the timed fetches: rounds go on until every process
 * has filled both (where the subject shows it; two rounds for a peer with several).
 */
async function warmUp(env: BenchEnv, subjects: Subject[], set: string, errors: ErrorTally): Promise<void> {
  env.phase('warming the subjects (other cold blobs, until each serving process has filled some)');
  for (const s of subjects) {
    for (let round = 0; round < WARM_ROUNDS; round++) {
      const blobs = await env.blobs(round === 0 ? set : `${set}-${round}`, [4 * 1024, 2 * SMALL_BLOB_MAX]);
      for (const b of blobs) await fetchOnce(env, s, b, errors);
      await settle(env, [s], blobs[1] ?? null);
      const warmth = await s.warmth?.(SMALL_BLOB_MAX);
      const several = s.processes === 'auto' || (s.processes ?? 1) > 1;
      if (warmth === undefined ? round + 1 >= (several ? 2 : 1) : warmth.warm >= warmth.processes) break;
    }
  }
}

/** The blobs of `set`: one of each size per rep, rep after rep. */
async function blobsBySize(env: BenchEnv, set: string): Promise<{ sizes: number[]; reps: Blob[][] }> {
  const { sizes, reps } = env.shape.coldFast;
  const all = await env.blobs(set, Array.from({ length: reps }, () => sizes).flat());
  return { sizes, reps: Array.from({ length: reps }, (_, r) => all.slice(r * sizes.length, (r + 1) * sizes.length)) };
}

/** Runs `each(rep, sizeIndex, blob)` for every blob, collecting named timings per size. */
async function overSizes(
  env: BenchEnv,
  set: string,
  each: (blob: Blob, record: (name: string, t: Timed | null) => void) => Promise<void>,
): Promise<{ sizes: number[]; figures: Record<string, Figure> }> {
  const { sizes, reps } = await blobsBySize(env, set);
  const got = new Map<string, number[]>();
  for (const [r, blobs] of reps.entries()) {
    for (const blob of blobs) {
      env.phase(`rep ${r + 1}/${reps.length}: cold ${sizeLabel(blob.size)}`);
      await each(blob, (name, t) => {
        if (t === null) return;
        const label = sizeLabel(blob.size);
        // The subject's own figures: `ttfbMs_4KiB`; others: `directTtfbMs_4KiB`.
        const key = (metric: string): string =>
          `${name === '' ? metric : name + metric.charAt(0).toUpperCase() + metric.slice(1)}_${label}`;
        for (const [k, v] of [
          [key('ttfbMs'), t.ttfbMs],
          [key('totalMs'), t.totalMs],
        ] as const) {
          got.set(k, [...(got.get(k) ?? []), v]);
        }
      });
    }
  }
  const figures: Record<string, Figure> = {};
  for (const [k, v] of got) figures[k] = round(median(v), 1);
  return { sizes, figures };
}

function sizesParam(sizes: number[]): string {
  return sizes.map(sizeLabel).join(',');
}

export async function coldSingleFast(env: BenchEnv, subject: Subject): Promise<Outcome> {
  const origin = subject.upstream;
  if (origin === null) throw new Error(`${subject.kind} has no upstream: cold-single-fast needs a cache`);
  const errors = new ErrorTally();
  // The origin straight: measured beside the cache only (the peers' ratios use the cache's run).
  const direct = subject.kind === 'dtr-cache' ? originSubject(origin) : null;
  await warmUp(env, direct === null ? [subject] : [direct, subject], 'cold-fast-warm', errors);
  const { sizes, figures } = await overSizes(env, 'cold-fast', async (blob, record) => {
    if (direct !== null) {
      await settle(env, [subject, direct], null);
      record('direct', await fetchOnce(env, direct, blob, errors));
    }
    await settle(env, [subject], null);
    record('', await fetchOnce(env, subject, blob, errors));
    await settle(env, [subject], blob);
  });
  const rss = subject.pid === null ? null : await peakRssTree(subject.pid);
  return {
    params: { sizes: sizesParam(sizes), reps: env.shape.coldFast.reps, proto: 'h1', driver: 'raw', origin: 'fast' },
    figures: { ...figures, peakRssMiB: rss === null ? null : round(rss / MiB, 1) },
    errors: errors.count,
    errorSamples: errors.samples,
  };
}

export async function chainColdFast(env: BenchEnv, processes: Processes): Promise<Outcome> {
  const fast = await env.fastMock();
  return chainOf(env, fast, (label, upstream) =>
    startCacheSubject(env, label, [upstream], { origin: fast, processes }),
  );
}

/** The same chain of two bare relays (bench/peers/node-relay.ts): the floor for two tiers over one. */
export async function relayChainColdFast(env: BenchEnv): Promise<Outcome> {
  const fast = await env.fastOpenMock();
  return chainOf(env, fast, (label, upstream) => startRelaySubject(env, `relay-${label}`, upstream, fast));
}

/** Tiers started by `tier(label, upstreamUrl)`: regional in front of `fast`, edge in front of it. */
async function chainOf(
  env: BenchEnv,
  fast: MockOrigin,
  tier: (label: string, upstream: string) => Promise<Subject>,
): Promise<Outcome> {
  const errors = new ErrorTally();
  return withSubject(
    () => tier('chain-fast-regional', fast.url),
    (regional) =>
      withSubject(
        () => tier('chain-fast-edge', regional.origin),
        async (edge) => {
          await warmUp(env, [regional], 'cold-fast-warm', errors);
          await warmUp(env, [edge], 'cold-fast-warm-chain', errors);
          const { value: chained, gets } = await countGets(
            fast,
            await blobsBySize(env, 'cold-fast-chain'),
            async () => {
              const r = await overSizes(env, 'cold-fast', async (blob, record) => {
                // One tier: a blob cold at the regional cache, straight through it.
                await settle(env, [regional, edge], null);
                record('oneTier', await fetchOnce(env, regional, blob, errors));
                await settle(env, [regional], blob);
              });
              const c = await overSizes(env, 'cold-fast-chain', async (blob, record) => {
                await settle(env, [regional, edge], null);
                record('chain', await fetchOnce(env, edge, blob, errors));
                await settle(env, [edge, regional], blob);
              });
              return { ...r, figures: { ...r.figures, ...c.figures } };
            },
          );
          const sum = (prefix: string): number | null => {
            const v = chained.sizes.map((sz) => chained.figures[`${prefix}TotalMs_${sizeLabel(sz)}`] ?? null);
            return v.some((x) => x === null) ? null : v.reduce<number>((a, b) => a + (b ?? 0), 0);
          };
          const one = sum('oneTier');
          const two = sum('chain');
          return {
            params: {
              sizes: sizesParam(chained.sizes),
              reps: env.shape.coldFast.reps,
              tiers: 2,
              proto: 'h1',
              driver: 'raw',
              origin: 'fast',
            },
            figures: {
              ...chained.figures,
              chainOverOneTier: one !== null && two !== null && one > 0 ? round(two / one, 2) : null,
              upstreamGets: gets,
            },
            errors: errors.count,
            errorSamples: errors.samples,
          };
        },
      ),
  );
}

/** Runs `body` and counts the GETs the origin served for `set`'s blobs meanwhile. */
async function countGets<T>(
  origin: MockOrigin,
  set: { reps: Blob[][] },
  body: () => Promise<T>,
): Promise<{ value: T; gets: number }> {
  const digests = set.reps.flat().map((b) => b.digest);
  const before = await origin.servedGets(digests);
  const value = await body();
  return { value, gets: (await origin.servedGets(digests)) - before };
}

export async function coldStampedeFast(env: BenchEnv, subject: Subject): Promise<Outcome> {
  const s = env.shape.stampedeFast;
  const origin = subject.upstream;
  if (origin === null) throw new Error(`${subject.kind} has no upstream: cold-stampede-fast needs a cache`);
  const [blob] = await env.blobs('stampede-fast', [s.size]);
  if (blob === undefined) throw new Error('cold-stampede-fast: no blob');
  const errors = new ErrorTally();
  const direct = subject.kind === 'dtr-cache' ? originSubject(origin) : null;
  await warmUp(env, [subject], 'cold-fast-warm', errors);
  const crowd = {
    driver: 'raw' as const,
    proto: 'h1' as const,
    concurrency: s.clients,
    order: Array.from({ length: s.clients }, () => 0),
    cycle: false,
    maxRequests: s.clients,
    durationMs: 1_000,
    slackMs: 600_000,
    preconnect: true,
  };
  let d = null;
  if (direct !== null) {
    await settle(env, [subject, direct], null);
    env.phase(`${s.clients} clients straight from the origin`);
    d = errors.add(await load(env, direct, [blob], crowd));
  }
  await settle(env, [subject], null);
  const getsBefore = await origin.servedGets([blob.digest]);
  await subject.eventLoopP99Ms(); // resets the cache's histogram: the next reading covers the stampede only
  env.phase(`${s.clients} clients on one cold blob`);
  const pss = subject.pid === null ? null : samplePssTree(subject.pid);
  const many = errors.add(await load(env, subject, [blob], crowd));
  const peakPss = (await pss?.stop()) ?? null;
  const loopP99 = await subject.eventLoopP99Ms();
  const gets = (await origin.servedGets([blob.digest])) - getsBefore;
  const rss = subject.pid === null ? null : await peakRssTree(subject.pid);
  return {
    params: { clients: s.clients, blobBytes: s.size, proto: 'h1', driver: 'raw', origin: 'fast' },
    figures: {
      upstreamGets: gets,
      wallMs: round(many.elapsedMs, 0),
      ttfbP50Ms: round(many.ttfbMs?.p50, 1),
      ttfbP99Ms: round(many.ttfbMs?.p99, 1),
      directWallMs: d === null ? null : round(d.elapsedMs, 0),
      directTtfbP99Ms: d === null ? null : round(d.ttfbMs?.p99, 1),
      wallOverDirect: d === null ? null : round(many.elapsedMs / d.elapsedMs, 2),
      peakRssMiB: rss === null ? null : round(rss / MiB, 1),
      // The same tree's memory with shared pages counted once (sampled; see samplePssTree).
      peakPssMiB: peakPss === null ? null : round(peakPss / MiB, 1),
      eventLoopP99Ms: round(loopP99, 1),
    },
    errors: errors.count,
    errorSamples: errors.samples,
  };
}

/** The cache in front of the fast origin, for the `*-fast` scenarios. */
export async function startFastCache(env: BenchEnv, label: string, processes: Processes): Promise<Subject> {
  const fast = await env.fastMock();
  return startCacheSubject(env, label, [fast.url], { origin: fast, processes });
}
