// The end of a run: a table on stdout, and the JSON report (bench/README.md, "Results")
// as `latest.json` plus a timestamped copy.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchReport, Ceiling, Figure, ScenarioResult, TargetResult } from './types.js';

function show(v: Figure): string {
  return v === null ? '—' : String(v);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function ceilingRow(c: Ceiling): string {
  // Far above its ceiling: the ceiling's own load was disturbed (steal, other work), not a limit.
  const low = c.ofCeiling !== null && c.ofCeiling > 1.1 ? ' (the ceiling measured low: noise)' : '';
  const bound = c.driverBound === true ? `  DRIVER-BOUND${low}` : '';
  return `ceiling: ${c.metric} ${show(c.value)} (${c.driver} against nginx static); this figure is ${show(c.ofCeiling)} × it${bound}`;
}

function scenarioRows(results: ScenarioResult[]): string[] {
  const w = Math.max(...results.map((r) => r.name.length), 8) + 2;
  const rows = [
    `${pad('scenario', w)}${pad('procs', 7)}${pad('status', 9)}${pad('errors', 8)}${pad('steal%', 8)}figures`,
  ];
  for (const r of results) {
    const figs = Object.entries(r.figures)
      .map(([k, v]) => `${k}=${show(v)}`)
      .join('  ');
    rows.push(
      `${pad(r.name, w)}${pad(String(r.processes ?? '—'), 7)}${pad(r.status, 9)}${pad(String(r.errors), 8)}${pad(show(r.stealPct), 8)}${figs}`,
    );
    for (const c of r.ceilings) rows.push(`${pad('', w)}${ceilingRow(c)}`);
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
        `${pad(r.name, 19)}${pad(String(r.processes ?? '—'), 6)}${pad(q.metric, 20)}÷ ${pad(q.against, 38)}${pad(show(q.value), 8)}(${q.better} is better)`,
      );
    }
  }
  return rows;
}

function targetRows(targets: TargetResult[]): string[] {
  return targets.map((t) => {
    const verdict = t.pass === null ? 'n/a ' : t.pass ? 'PASS' : 'FAIL';
    return `${verdict}  ${pad(String(t.processes ?? '—'), 6)}${pad(t.description, 82)}${show(t.value)} ${t.op} ${t.threshold}`;
  });
}

export function formatTable(report: BenchReport): string {
  const out = [
    `dtr-cache bench (${report.mode}): origin ${report.origin.latencyMs} ms + ${(report.origin.bandwidthBytesPerSec / 1e6).toFixed(1)} MB/s per connection (*-fast: 0 ms, no cap); ${report.machine.cpus} × ${report.machine.cpuModel}, Node ${report.machine.node}`,
    `drivers: ${report.drivers.smallH1} (small h1), ${report.drivers.largeH1} (large h1), ${report.drivers.h2} (h2); http.processes: ${report.processes.settings.join(', ')}${report.processes.keySupported ? '' : ' (this build has no such key: 1 process)'}`,
    '',
    ...scenarioRows(report.scenarios),
  ];
  const ratios = ratioRows(report.scenarios);
  if (ratios.length > 0) out.push('', 'ratios (ours ÷ peer, same run; procs: http.processes)', ...ratios);
  if (report.targets.length > 0)
    out.push('', 'targets (reported, never fatal; column 2: http.processes)', ...targetRows(report.targets));
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
