// The end of a run: a table on stdout, and the JSON report (bench/README.md, "Results")
// as `latest.json` plus a timestamped copy.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchReport, Figure, ScenarioResult, TargetResult } from './types.js';

function show(v: Figure): string {
  return v === null ? '—' : String(v);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function scenarioRows(results: ScenarioResult[]): string[] {
  const w = Math.max(...results.map((r) => r.name.length), 8) + 2;
  const rows = [`${pad('scenario', w)}${pad('status', 9)}${pad('errors', 8)}${pad('steal%', 8)}figures`];
  for (const r of results) {
    const figs = Object.entries(r.figures)
      .map(([k, v]) => `${k}=${show(v)}`)
      .join('  ');
    rows.push(`${pad(r.name, w)}${pad(r.status, 9)}${pad(String(r.errors), 8)}${pad(show(r.stealPct), 8)}${figs}`);
    if (r.note !== null) rows.push(`${pad('', w)}note: ${r.note}`);
    for (const e of r.errorSamples.slice(0, 3)) rows.push(`${pad('', w)}error: ${e}`);
  }
  return rows;
}

function ratioRows(results: ScenarioResult[]): string[] {
  const rows: string[] = [];
  for (const r of results) {
    for (const q of r.ratios) {
      if (q.value === null) continue;
      rows.push(
        `${pad(r.name, 16)}${pad(q.metric, 14)}÷ ${pad(q.against, 34)}${pad(show(q.value), 8)}(${q.better} is better)`,
      );
    }
  }
  return rows;
}

function targetRows(targets: TargetResult[]): string[] {
  return targets.map((t) => {
    const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL';
    return `${verdict}  ${pad(t.description, 66)}${show(t.value)} ${t.op} ${t.threshold}`;
  });
}

export function formatTable(report: BenchReport): string {
  const out = [
    `dtr-cache bench (${report.mode}): origin ${report.origin.latencyMs} ms + ${(report.origin.bandwidthBytesPerSec / 1e6).toFixed(1)} MB/s per connection; ${report.machine.cpus} × ${report.machine.cpuModel}, Node ${report.machine.node}`,
    '',
    ...scenarioRows(report.scenarios),
  ];
  const ratios = ratioRows(report.scenarios);
  if (ratios.length > 0) out.push('', 'ratios (ours ÷ peer, same run)', ...ratios);
  if (report.targets.length > 0) out.push('', 'targets (reported, never fatal)', ...targetRows(report.targets));
  out.push(
    '',
    `${report.ok ? 'ok' : 'FAILED'}: ${report.scenarios.length} scenario(s) in ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  return out.join('\n');
}

/** Writes `latest.json` and `<timestamp>.json` into `dir`; returns their paths. */
export async function writeReport(dir: string, report: BenchReport): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(report, null, 2)}\n`;
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const paths = [join(dir, 'latest.json'), join(dir, `${stamp}.json`)];
  for (const p of paths) await writeFile(p, text);
  return paths;
}
