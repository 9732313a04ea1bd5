// The result schema of `npm run bench` (bench/README.md, "Results"). Changing a field's
// meaning means bumping SCHEMA; adding a field does not.

export const SCHEMA = 'dtr-cache-bench/1';

/** A figure is a number, or null when it could not be measured (the note says why). */
export type Figure = number | null;

/** Our figure ÷ the peer's, for one metric. */
export interface Ratio {
  /** The peer scenario compared against, e.g. `peer-distribution-hit-small-h1`. */
  against: string;
  metric: string;
  value: Figure;
  /** Whether a higher ratio is better for us (req/s) or a lower one (seconds). */
  better: 'higher' | 'lower';
}

export type ScenarioStatus = 'ok' | 'skipped' | 'error';

/** `http.processes` as the cache was given it: `auto` (one per core) or a count. */
export type Processes = 'auto' | number;

/**
 * What the load driver can measure at all: the same driver and load shape against nginx
 * serving the same files statically. A figure within 10 % of it may be the driver's limit
 * rather than the subject's.
 */
export interface Ceiling {
  /** The figure it bounds (`reqPerSec`, `h1MiBps`, `h2MiBps`). */
  metric: string;
  driver: string;
  /** The driver's figure against nginx static; null when nginx is not installed or it failed. */
  value: Figure;
  /** This scenario's figure ÷ the ceiling. */
  ofCeiling: Figure;
  /** True when the figure is within 10 % of the ceiling (or above it): bound by the driver. */
  driverBound: boolean | null;
}

export interface ScenarioResult {
  name: string;
  /** What was measured: `dtr-cache` or a peer (`distribution`, `nginx`, `node-naive`, `node-relay`). */
  subject: string;
  status: ScenarioStatus;
  /** Why it was skipped or failed; other remarks. */
  note: string | null;
  /** The shape that ran: sizes, concurrency, durations, protocol. */
  params: Record<string, number | string | boolean>;
  /** Measured values; units are in the names (`reqPerSec`, `p99Ms`, `MBps`, `peakRssMiB`). */
  figures: Record<string, Figure>;
  /** Failed requests: errors, non-2xx answers, short bodies. The run fails when any is > 0. */
  errors: number;
  /** A few error messages, for the reader. */
  errorSamples: string[];
  ratios: Ratio[];
  /**
   * The subject's serving processes: the cache's `http.processes` (`auto` or a count);
   * nginx `auto` (worker_processes); 1 for distribution and the naive Node server (each one
   * process, distribution's Go runtime on every core); null for scenarios of no one subject.
   */
  processes: Processes | null;
  /** Hit scenarios: the driver's ceiling for each throughput figure. Empty elsewhere. */
  ceilings: Ceiling[];
  durationMs: number;
  /**
   * Share of all CPU time the hypervisor took for other guests while the scenario ran
   * (percent, /proc/stat `steal`); null off Linux or when skipped. Figures of runs with
   * high steal understate the subject, a single-threaded one most.
   */
  stealPct: Figure;
}

export interface TargetResult {
  id: string;
  description: string;
  scenario: string;
  /** The measured ratio or value the threshold applies to. */
  value: Figure;
  op: '<=' | '<' | '>=' | '>' | '==';
  threshold: number;
  /** null when the value could not be measured (scenario skipped, figure missing). */
  pass: boolean | null;
  /** The `processes` of the scenario measured (a run with `--processes 1,auto` has one target per setting). */
  processes: Processes | null;
}

export interface BenchReport {
  schema: typeof SCHEMA;
  mode: Mode;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  machine: { node: string; platform: string; arch: string; cpus: number; cpuModel: string; memMiB: number };
  /** The far DTR the mock plays (the `*-fast` scenarios use another mock: no latency, no cap). */
  origin: { latencyMs: number; bandwidthBytesPerSec: number };
  /** The load driver of each kind of load in this run. */
  drivers: { smallH1: string; largeH1: string; h2: string };
  /** The `http.processes` settings measured; `keySupported` false: the build has no such key, 1 ran. */
  processes: { settings: Processes[]; keySupported: boolean };
  /** Whether every subject wrote a line per request (`--access-log`): ours, nginx and distribution alike. */
  accessLog: boolean;
  scenarios: ScenarioResult[];
  targets: TargetResult[];
  /** false when a scenario errored (request errors, a crashed process); targets do not count. */
  ok: boolean;
}

export type Mode = 'full' | 'quick' | 'smoke';
