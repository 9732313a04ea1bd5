// Ratios (our figure ÷ a peer's, same run) and the targets, computed from the
// scenario results. A missed target is reported, never fatal.
import type { Figure, Ratio, ScenarioResult, TargetResult } from './types.js';

interface RatioDef {
  ours: string;
  peer: string;
  metric: string;
  better: 'higher' | 'lower';
}

const PEERS = ['distribution', 'nginx', 'node-naive'];

const RATIO_DEFS: RatioDef[] = [
  ...PEERS.flatMap((p) => [
    { ours: 'hit-small-h1', peer: `peer-${p}-hit-small-h1`, metric: 'reqPerSec', better: 'higher' as const },
    { ours: 'hit-small-h1', peer: `peer-${p}-hit-small-h1`, metric: 'p99Ms', better: 'lower' as const },
    { ours: 'hit-large', peer: `peer-${p}-hit-large`, metric: 'h1MiBps', better: 'higher' as const },
    { ours: 'hit-large', peer: `peer-${p}-hit-large`, metric: 'h2MiBps', better: 'higher' as const },
    { ours: 'cold-stampede', peer: `peer-${p}-cold-stampede`, metric: 'wallMs', better: 'lower' as const },
    { ours: 'cold-stampede', peer: `peer-${p}-cold-stampede`, metric: 'ttfbP99Ms', better: 'lower' as const },
    { ours: 'cold-stampede', peer: `peer-${p}-cold-stampede`, metric: 'upstreamGets', better: 'lower' as const },
  ]),
];

function figure(results: ScenarioResult[], name: string, metric: string): Figure {
  const r = results.find((x) => x.name === name && x.status === 'ok');
  return r?.figures[metric] ?? null;
}

/** Fills `ratios` of our scenarios with every peer comparison this run can make. */
export function addRatios(results: ScenarioResult[]): void {
  for (const d of RATIO_DEFS) {
    const ours = results.find((x) => x.name === d.ours);
    const peer = results.find((x) => x.name === d.peer);
    if (ours === undefined || peer === undefined) continue;
    const a = figure(results, d.ours, d.metric);
    const b = figure(results, d.peer, d.metric);
    const value = a !== null && b !== null && b !== 0 ? Math.round((a / b) * 100) / 100 : null;
    const ratio: Ratio = { against: d.peer, metric: d.metric, value, better: d.better };
    ours.ratios.push(ratio);
  }
}

function ratio(results: ScenarioResult[], ours: string, peer: string, metric: string): Figure {
  return (
    results.find((x) => x.name === ours)?.ratios.find((r) => r.against === peer && r.metric === metric)?.value ?? null
  );
}

interface TargetDef {
  id: string;
  description: string;
  scenario: string;
  op: TargetResult['op'];
  threshold: number;
  value: (r: ScenarioResult[]) => Figure;
}

const fig = (scenario: string, metric: string) => (r: ScenarioResult[]) => figure(r, scenario, metric);

const TARGET_DEFS: TargetDef[] = [
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

/** The targets whose scenario ran in this run. */
export function evaluateTargets(results: ScenarioResult[]): TargetResult[] {
  return TARGET_DEFS.filter((d) => results.some((r) => r.name === d.scenario)).map((d) => {
    const value = d.value(results);
    return {
      id: d.id,
      description: d.description,
      scenario: d.scenario,
      value,
      op: d.op,
      threshold: d.threshold,
      pass: value === null ? null : holds(value, d.op, d.threshold),
    };
  });
}
