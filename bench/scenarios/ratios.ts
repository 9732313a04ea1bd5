// Ratios: our figure ÷ a peer's, same run, for the metrics where the comparison means
// something. With `--processes 1,auto` each of our results gets its own ratios against the
// one run of each peer.
import type { Figure, Ratio, ScenarioResult } from './types.js';

interface RatioDef {
  ours: string;
  peer: string;
  /** The metrics compared: fixed names, or those of our figures that match. */
  metrics: string[] | RegExp;
  better: 'higher' | 'lower';
}

const PEERS = ['distribution', 'nginx', 'node-naive', 'node-relay'];
const higher = 'higher' as const;
const lower = 'lower' as const;

const RATIO_DEFS: RatioDef[] = PEERS.flatMap((p) => [
  { ours: 'hit-small-h1', peer: `peer-${p}-hit-small-h1`, metrics: ['reqPerSec'], better: higher },
  { ours: 'hit-small-h1', peer: `peer-${p}-hit-small-h1`, metrics: ['p99Ms', 'cpuUsPerReq'], better: lower },
  { ours: 'hit-small-h2', peer: `peer-${p}-hit-small-h2`, metrics: ['reqPerSec'], better: higher },
  { ours: 'hit-small-h2', peer: `peer-${p}-hit-small-h2`, metrics: ['p99Ms', 'cpuUsPerReq'], better: lower },
  { ours: 'hit-large', peer: `peer-${p}-hit-large`, metrics: ['h1MiBps', 'h2MiBps'], better: higher },
  { ours: 'hit-large', peer: `peer-${p}-hit-large`, metrics: ['h1CpuMsPerGiB', 'h2CpuMsPerGiB'], better: lower },
  {
    ours: 'cold-stampede',
    peer: `peer-${p}-cold-stampede`,
    metrics: ['wallMs', 'ttfbP99Ms', 'upstreamGets'],
    better: lower,
  },
  { ours: 'cold-single-fast', peer: `peer-${p}-cold-single-fast`, metrics: /^(ttfb|total)Ms_/, better: lower },
  {
    ours: 'cold-stampede-fast',
    peer: `peer-${p}-cold-stampede-fast`,
    metrics: ['wallMs', 'ttfbP99Ms', 'upstreamGets'],
    better: lower,
  },
]).concat(
  (['mirror-cold', 'mirror-warm'] as const).map((ours) => ({
    ours,
    peer: `peer-distribution-${ours}`,
    metrics: ['upstreamRequests', 'upstreamBlobGets', 'wallMs', 'ttfbP99Ms'],
    better: lower,
  })),
);

function okFigure(r: ScenarioResult, metric: string): Figure {
  return r.status === 'ok' ? (r.figures[metric] ?? null) : null;
}

/** Fills `ratios` of our scenarios with every peer comparison this run can make. */
export function addRatios(results: ScenarioResult[]): void {
  for (const d of RATIO_DEFS) {
    const peer = results.find((x) => x.name === d.peer);
    if (peer === undefined) continue;
    for (const ours of results.filter((x) => x.name === d.ours)) {
      const metrics = Array.isArray(d.metrics)
        ? d.metrics
        : Object.keys(ours.figures).filter((k) => (d.metrics as RegExp).test(k));
      for (const metric of metrics) {
        const a = okFigure(ours, metric);
        const b = okFigure(peer, metric);
        const value = a !== null && b !== null && b !== 0 ? Math.round((a / b) * 100) / 100 : null;
        ours.ratios.push({ against: d.peer, metric, value, better: d.better } satisfies Ratio);
      }
    }
  }
}
