// Cold misses through a far origin:
// - `cold-stampede`: first one lone client fetches a cold blob; then 32 clients (one
//   connection each) ask for another cold blob of the same size at the same instant.
//   Upstream GETs, wall time and time to first body byte against the lone fetch, peak RSS,
//   main-thread event-loop delay p99.
// - `chain-cold`: an image's layers pulled cold through edge → regional → mock, against
//   the same sizes pulled straight from the mock.
import { ErrorTally, load, MiB, round, wanMs, withSubject, type Outcome } from './common.js';
import type { BenchEnv } from './env.js';
import { peakRssTree } from './procs.js';
import { originSubject, startCacheSubject, type Subject } from './subject.js';
import type { Processes } from './types.js';

export async function coldStampede(env: BenchEnv, subject: Subject): Promise<Outcome> {
  const s = env.shape.coldStampede;
  const [lone, crowd] = await env.blobs('cold-stampede', [s.size, s.size]);
  if (lone === undefined || crowd === undefined) throw new Error('cold-stampede: no blobs');
  const upstream = subject.upstream;
  if (upstream === null) throw new Error(`${subject.kind} has no upstream: cold-stampede needs a cache`);
  const errors = new ErrorTally();
  const common = {
    driver: 'raw' as const,
    proto: 'h1' as const,
    cycle: false,
    durationMs: wanMs(env, s.size),
    slackMs: wanMs(env, s.size),
  };

  env.phase('lone cold fetch');
  const one = errors.add(await load(env, subject, [lone], { ...common, concurrency: 1, order: [0], maxRequests: 1 }));
  const getsBefore = await upstream.servedGets([crowd.digest]);
  await subject.eventLoopP99Ms(); // resets the cache's histogram: the next reading covers the stampede only
  env.phase(`${s.clients} clients on one cold blob`);
  const many = errors.add(
    await load(env, subject, [crowd], {
      ...common,
      concurrency: s.clients,
      order: Array.from({ length: s.clients }, () => 0),
      maxRequests: s.clients,
    }),
  );
  const loopP99 = await subject.eventLoopP99Ms();
  const gets = (await upstream.servedGets([crowd.digest])) - getsBefore;
  const rss = subject.pid === null ? null : await peakRssTree(subject.pid);
  const loneTtfb = one.ttfbMs?.p50 ?? null;
  const ttfbP99 = many.ttfbMs?.p99 ?? null;
  return {
    params: { clients: s.clients, blobBytes: s.size, proto: 'h1', driver: 'raw' },
    figures: {
      upstreamGets: gets,
      wallMs: round(many.elapsedMs, 0),
      loneWallMs: round(one.elapsedMs, 0),
      wallOverLone: round(many.elapsedMs / one.elapsedMs, 2),
      ttfbP50Ms: round(many.ttfbMs?.p50, 1),
      ttfbP99Ms: round(ttfbP99, 1),
      loneTtfbMs: round(loneTtfb, 1),
      ttfbP99OverLone: loneTtfb !== null && ttfbP99 !== null ? round(ttfbP99 / loneTtfb, 2) : null,
      peakRssMiB: rss === null ? null : round(rss / MiB, 1),
      eventLoopP99Ms: round(loopP99, 1),
    },
    errors: errors.count,
    errorSamples: errors.samples,
    ...(subject.kind === 'dtr-cache' && loopP99 === null
      ? { note: 'eventLoopP99Ms: the cache does not expose its event-loop delay yet (no /metrics on the debug server)' }
      : {}),
  };
}

/** The chain scenarios' image pull: each layer once, `concurrency` at a time, over HTTP/1.1. */
export function imagePull(env: BenchEnv) {
  const s = env.shape.chainCold;
  const total = s.layers.reduce((a, b) => a + b, 0);
  return {
    driver: 'undici' as const,
    proto: 'h1' as const,
    concurrency: s.concurrency,
    order: s.layers.map((_, i) => i),
    cycle: false,
    maxRequests: s.layers.length,
    durationMs: wanMs(env, total),
    slackMs: wanMs(env, total),
  };
}

export async function chainCold(env: BenchEnv, processes: Processes): Promise<Outcome> {
  const s = env.shape.chainCold;
  const direct = await env.blobs('chain-direct', s.layers);
  const chained = await env.blobs('chain-tiers', s.layers);
  const total = s.layers.reduce((a, b) => a + b, 0);
  const errors = new ErrorTally();
  const pull = imagePull(env);

  env.phase('direct pull from the mock');
  const d = errors.add(await load(env, originSubject(env.mock), direct, pull));

  const { c, gets } = await withSubject(
    () => startCacheSubject(env, 'chain-regional', [env.mock.url], { processes }),
    (regional) =>
      withSubject(
        () => startCacheSubject(env, 'chain-edge', [regional.origin], { processes }),
        async (edge) => {
          env.phase('cold pull through edge → regional → mock');
          const before = await env.mock.servedGets(chained.map((b) => b.digest));
          const r = errors.add(await load(env, edge, chained, pull));
          return { c: r, gets: (await env.mock.servedGets(chained.map((b) => b.digest))) - before };
        },
      ),
  );
  return {
    params: {
      layers: s.layers.length,
      totalBytes: total,
      concurrency: s.concurrency,
      proto: 'h1',
      driver: 'undici',
      tiers: 2,
    },
    figures: {
      chainMs: round(c.elapsedMs, 0),
      directMs: round(d.elapsedMs, 0),
      chainOverDirect: round(c.elapsedMs / d.elapsedMs, 2),
      chainTtfbP50Ms: round(c.ttfbMs?.p50, 1),
      directTtfbP50Ms: round(d.ttfbMs?.p50, 1),
      upstreamGets: gets,
    },
    errors: errors.count,
    errorSamples: errors.samples,
  };
}
