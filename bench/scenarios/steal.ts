// CPU time the hypervisor gave to other guests while a scenario ran (`steal` in /proc/stat,
// proc(5)). On this shared VM it is the main source of run-to-run noise: one hit-large run
// read 480 MiB/s with 12–36 % steal, the next 899 MiB/s with 0–8 %. A single-threaded
// server loses more to it than a multi-threaded one, so the report carries it per scenario.
import { readFile } from 'node:fs/promises';
import type { Figure } from './types.js';

export interface CpuTimes {
  steal: number;
  total: number;
}

/** The machine's cumulative CPU time (all CPUs) and its steal part, in clock ticks; null off Linux. */
export async function cpuTimes(): Promise<CpuTimes | null> {
  const text = await readFile('/proc/stat', 'utf8').catch(() => null);
  const line = text?.split('\n', 1)[0];
  if (line === undefined || !line.startsWith('cpu ')) return null;
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 8 || f.some((n) => !Number.isFinite(n))) return null;
  return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
}

/** Steal as a percentage of all CPU time between two readings. */
export function stealPct(before: CpuTimes | null, after: CpuTimes | null): Figure {
  if (before === null || after === null || after.total <= before.total) return null;
  // Some hypervisors' steal counter has been seen to step backwards: clamp to 0–100.
  const pct = Math.round((1000 * (after.steal - before.steal)) / (after.total - before.total)) / 10;
  return Math.min(100, Math.max(0, pct));
}
