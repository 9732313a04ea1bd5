// The targets, computed from the scenario results (the far origin's, and the fast origin's
// and the hits against nginx). A missed target is
// reported, never fatal. With `--processes 1,auto` every target is evaluated once per
// setting, against that setting's results and the peers' single run.
import type { Figure, Processes, ScenarioResult, TargetResult } from './types.js';

interface TargetDef {
  id: string;
  description: string;
  scenario: string;
  op: TargetResult['op'];
  threshold: number;
  value: (r: ScenarioResult[]) => Figure;
}

function figure(results: ScenarioResult[], name: string, metric: string): Figure {
  const r = results.find((x) => x.name === name && x.status === 'ok');
  return r?.figures[metric] ?? null;
}

function ratio(results: ScenarioResult[], ours: string, peer: string, metric: string): Figure {
  return (
    results.find((x) => x.name === ours)?.ratios.find((r) => r.against === peer && r.metric === metric)?.value ?? null
  );
}

const fig = (scenario: string, metric: string) => (r: ScenarioResult[]) => figure(r, scenario, metric);
const round2 = (v: number): number => Math.round(v * 100) / 100;

/** `a − b` or `a ÷ b` of two figures of one scenario; null if either is missing. */
function combine(scenario: string, a: string, b: string, how: 'minus' | 'over') {
  return (r: ScenarioResult[]): Figure => {
    const x = figure(r, scenario, a);
    const y = figure(r, scenario, b);
    if (x === null || y === null || (how === 'over' && y === 0)) return null;
    return round2(how === 'minus' ? x - y : x / y);
  };
}

/** The far origin (40 ms, 25 MB/s a connection). */
const FAR: TargetDef[] = [
  {
    id: 'cold-stampede.upstream-gets',
    description: 'cold stampede: upstream GETs = 1',
    scenario: 'cold-stampede',
    op: '==',
    threshold: 1,
    value: fig('cold-stampede', 'upstreamGets'),
  },
  {
    id: 'cold-stampede.ttfb-p99',
    description: "cold stampede: TTFB p99 ≤ 2 × a lone cold client's",
    scenario: 'cold-stampede',
    op: '<=',
    threshold: 2,
    value: fig('cold-stampede', 'ttfbP99OverLone'),
  },
  {
    id: 'cold-stampede.wall',
    description: 'cold stampede: wall time ≤ 1.25 × the lone cold fetch',
    scenario: 'cold-stampede',
    op: '<=',
    threshold: 1.25,
    value: fig('cold-stampede', 'wallOverLone'),
  },
  {
    id: 'cold-stampede.peak-rss',
    description: 'cold stampede: peak RSS ≤ 200 MiB',
    scenario: 'cold-stampede',
    op: '<=',
    threshold: 200,
    value: fig('cold-stampede', 'peakRssMiB'),
  },
  {
    id: 'cold-stampede.event-loop-p99',
    description: 'cold stampede: main-thread event-loop delay p99 ≤ 50 ms',
    scenario: 'cold-stampede',
    op: '<=',
    threshold: 50,
    value: fig('cold-stampede', 'eventLoopP99Ms'),
  },
  ...['distribution', 'nginx'].flatMap((p) => [
    {
      id: `cold-stampede.beats-${p}.ttfb-p99`,
      description: `cold stampede: TTFB p99 below ${p}'s (ratio < 1)`,
      scenario: 'cold-stampede',
      op: '<' as const,
      threshold: 1,
      value: (r: ScenarioResult[]) => ratio(r, 'cold-stampede', `peer-${p}-cold-stampede`, 'ttfbP99Ms'),
    },
    {
      id: `cold-stampede.beats-${p}.wall`,
      description: `cold stampede: wall time below ${p}'s (ratio < 1)`,
      scenario: 'cold-stampede',
      op: '<' as const,
      threshold: 1,
      value: (r: ScenarioResult[]) => ratio(r, 'cold-stampede', `peer-${p}-cold-stampede`, 'wallMs'),
    },
  ]),
  {
    id: 'chain-cold.ratio',
    description: 'chain-cold: ≤ 1.3 × the direct pull',
    scenario: 'chain-cold',
    op: '<=',
    threshold: 1.3,
    value: fig('chain-cold', 'chainOverDirect'),
  },
  {
    id: 'chain-far-link.ratio',
    description: 'chain-far-link: ≤ 1.3 × the same pull over the long link',
    scenario: 'chain-far-link',
    op: '<=',
    threshold: 1.3,
    value: fig('chain-far-link', 'chainOverLink'),
  },
  {
    id: 'hit-large.h1-vs-distribution',
    description: "hit-large (HTTP/1.1): ≥ 1.0 × distribution's MiB/s",
    scenario: 'hit-large',
    op: '>=',
    threshold: 1,
    value: (r) => ratio(r, 'hit-large', 'peer-distribution-hit-large', 'h1MiBps'),
  },
  {
    id: 'hit-large.h2-vs-distribution',
    description: "hit-large (HTTP/2): ≥ 1.0 × distribution's MiB/s",
    scenario: 'hit-large',
    op: '>=',
    threshold: 1,
    value: (r) => ratio(r, 'hit-large', 'peer-distribution-hit-large', 'h2MiBps'),
  },
  {
    id: 'hit-small-h1.vs-distribution',
    description: "hit-small-h1: ≥ 10 × distribution's req/s",
    scenario: 'hit-small-h1',
    op: '>=',
    threshold: 10,
    value: (r) => ratio(r, 'hit-small-h1', 'peer-distribution-hit-small-h1', 'reqPerSec'),
  },
  {
    id: 'hit-small-h1.vs-node-naive',
    description: "hit-small-h1: ≥ 1.5 × naive Node's req/s",
    scenario: 'hit-small-h1',
    op: '>=',
    threshold: 1.5,
    value: (r) => ratio(r, 'hit-small-h1', 'peer-node-naive-hit-small-h1', 'reqPerSec'),
  },
  {
    id: 'hit-small-h1.errors',
    description: 'hit-small-h1: errors = 0',
    scenario: 'hit-small-h1',
    op: '==',
    threshold: 0,
    value: (r) => r.find((x) => x.name === 'hit-small-h1')?.errors ?? null,
  },
];

/** Hits against nginx static, same driver for both. */
const HITS_VS_NGINX: TargetDef[] = [
  {
    id: 'hit-large.h1-vs-nginx',
    description: "hit-large (HTTP/1.1, c=8): ≥ 1.0 × nginx static's MiB/s",
    scenario: 'hit-large',
    op: '>=',
    threshold: 1,
    value: (r) => ratio(r, 'hit-large', 'peer-nginx-hit-large', 'h1MiBps'),
  },
  {
    id: 'hit-small-h1.vs-nginx',
    description: "hit-small-h1 (c=64): ≥ 0.5 × nginx static's req/s",
    scenario: 'hit-small-h1',
    op: '>=',
    threshold: 0.5,
    value: (r) => ratio(r, 'hit-small-h1', 'peer-nginx-hit-small-h1', 'reqPerSec'),
  },
];

/** One client, cold blobs from the origin at full speed. Sizes as the run had them. */
function coldSingleFast(results: ScenarioResult[]): TargetDef[] {
  const s = 'cold-single-fast';
  const sizes = String(results.find((x) => x.name === s)?.params['sizes'] ?? '').split(',');
  if (sizes.length !== 4) return [];
  const [a, b, c, d] = sizes as [string, string, string, string];
  const small = [a, b].map((l) => ({
    id: `${s}.${l}.total-over-direct`,
    description: `${s} ${l}: total ≤ direct + 10 ms (ms over direct)`,
    scenario: s,
    op: '<=' as const,
    threshold: 10,
    value: combine(s, `totalMs_${l}`, `directTotalMs_${l}`, 'minus'),
  }));
  const large = [c, d].flatMap((l) => [
    {
      id: `${s}.${l}.ttfb-over-direct`,
      description: `${s} ${l}: TTFB ≤ direct + 10 ms (ms over direct)`,
      scenario: s,
      op: '<=' as const,
      threshold: 10,
      value: combine(s, `ttfbMs_${l}`, `directTtfbMs_${l}`, 'minus'),
    },
    {
      id: `${s}.${l}.total-vs-direct`,
      description: `${s} ${l}: total ≤ 2.0 × direct`,
      scenario: s,
      op: '<=' as const,
      threshold: 2,
      value: combine(s, `totalMs_${l}`, `directTotalMs_${l}`, 'over'),
    },
    {
      id: `${s}.${l}.vs-distribution`,
      description: `${s} ${l}: total ≤ 0.5 × the distribution proxy's`,
      scenario: s,
      op: '<=' as const,
      threshold: 0.5,
      value: (r: ScenarioResult[]) => ratio(r, s, `peer-distribution-${s}`, `totalMs_${l}`),
    },
  ]);
  return [
    ...small,
    ...large,
    {
      id: `${s}.peak-rss`,
      description: `${s}: peak RSS of the lone misses (largest ${d}) ≤ 150 MiB`,
      scenario: s,
      op: '<=',
      threshold: 150,
      value: fig(s, 'peakRssMiB'),
    },
  ];
}

/** The chain and the stampede from the origin at full speed. */
const FAST: TargetDef[] = [
  {
    id: 'chain-cold-fast.ratio',
    description: 'chain-cold-fast: two tiers ≤ 1.3 × one tier (sum of the sizes’ totals)',
    scenario: 'chain-cold-fast',
    op: '<=',
    threshold: 1.3,
    value: fig('chain-cold-fast', 'chainOverOneTier'),
  },
  {
    id: 'cold-stampede-fast.upstream-gets',
    description: 'cold-stampede-fast: upstream GETs = 1',
    scenario: 'cold-stampede-fast',
    op: '==',
    threshold: 1,
    value: fig('cold-stampede-fast', 'upstreamGets'),
  },
  {
    id: 'cold-stampede-fast.wall-vs-nginx',
    description: 'cold-stampede-fast: wall ≤ 1.0 × nginx proxy_cache_lock',
    scenario: 'cold-stampede-fast',
    op: '<=',
    threshold: 1,
    value: (r) => ratio(r, 'cold-stampede-fast', 'peer-nginx-cold-stampede-fast', 'wallMs'),
  },
  {
    id: 'cold-stampede-fast.wall-vs-direct',
    description: 'cold-stampede-fast: wall ≤ 1.1 × the same clients straight from the origin',
    scenario: 'cold-stampede-fast',
    op: '<=',
    threshold: 1.1,
    value: fig('cold-stampede-fast', 'wallOverDirect'),
  },
  {
    id: 'cold-stampede-fast.ttfb-p99-vs-nginx',
    description: "cold-stampede-fast: TTFB p99 below nginx's (ratio < 1)",
    scenario: 'cold-stampede-fast',
    op: '<',
    threshold: 1,
    value: (r) => ratio(r, 'cold-stampede-fast', 'peer-nginx-cold-stampede-fast', 'ttfbP99Ms'),
  },
  {
    id: 'cold-stampede-fast.peak-rss',
    description: 'cold-stampede-fast: peak RSS summed over the processes ≤ 300 MiB',
    scenario: 'cold-stampede-fast',
    op: '<=',
    threshold: 300,
    value: fig('cold-stampede-fast', 'peakRssMiB'),
  },
];

function holds(v: number, op: TargetResult['op'], t: number): boolean {
  switch (op) {
    case '<=':
      return v <= t;
    case '<':
      return v < t;
    case '>=':
      return v >= t;
    case '>':
      return v > t;
    case '==':
      return v === t;
  }
}

/** The targets whose scenario ran in this run, once per `processes` setting of our scenarios. */
export function evaluateTargets(results: ScenarioResult[]): TargetResult[] {
  const settings: Array<Processes | null> = [];
  for (const r of results) {
    if (r.subject === 'dtr-cache' && !settings.includes(r.processes)) settings.push(r.processes);
  }
  return settings.flatMap((p) => {
    const view = results.filter((r) => r.subject !== 'dtr-cache' || r.processes === p);
    const defs = [...FAR, ...HITS_VS_NGINX, ...coldSingleFast(view), ...FAST];
    return defs
      .filter((d) => view.some((r) => r.name === d.scenario))
      .map((d) => {
        const value = d.value(view);
        return {
          id: d.id,
          description: d.description,
          scenario: d.scenario,
          value,
          op: d.op,
          threshold: d.threshold,
          pass: value === null ? null : holds(value, d.op, d.threshold),
          processes: p,
        };
      });
  });
}
