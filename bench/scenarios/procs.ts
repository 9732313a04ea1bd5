// Every process the benchmark starts: servers (mock, caches, peers) and load drivers.
// Server output goes to a file, not through a pipe we parse: at tens of thousands of
// requests per second the cache logs a line per request, and parsing those in the harness
// would take CPU from the processes being measured on this 2-core machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** True when it exited without being asked to. */
  crashed(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Proc>();

export interface SpawnSpec {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts a process with stdout and stderr appended to `logFile`. */
export async function spawnLogged(spec: SpawnSpec): Promise<Proc> {
  const fh = await open(spec.logFile, 'a');
  const child = spawn(spec.command, spec.args, {
    env: { ...process.env, ...(spec.env ?? {}) },
    cwd: spec.cwd,
    stdio: ['ignore', fh.fd, fh.fd],
  });
  await fh.close(); // the child holds its own copy of the descriptor
  let stopping = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (err) => resolve(`spawn error: ${err.message}`));
  });
  const proc: Proc = {
    name: spec.name,
    child,
    pid: child.pid ?? -1,
    logFile: spec.logFile,
    exited,
    crashed: () => !stopping && (child.exitCode !== null || child.signalCode !== null),
    async stop(graceMs = 5_000) {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      live.delete(proc);
    },
  };
  live.add(proc);
  void exited.then(() => {
    if (stopping) live.delete(proc);
  });
  return proc;
}

/** Polls `check` every 50 ms until it returns a value, the process dies, or `ms` pass. */
export async function waitReady<T>(proc: Proc, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(
        `${proc.name} exited (${String(await proc.exited)}) before it was ready:\n${await tail(proc.logFile)}`,
      );
    }
    if (Date.now() > end) throw new Error(`${proc.name} not ready after ${ms} ms:\n${await tail(proc.logFile)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first JSON line of the log that `match` accepts. */
export async function findLogLine<T>(
  logFile: string,
  match: (l: Record<string, unknown>) => T | undefined,
): Promise<T | undefined> {
  for (const l of await logLines(logFile)) {
    const v = match(l);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** The JSON lines of a log file so far. */
export async function logLines(logFile: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a half-written line: the next poll sees it whole
    }
  }
  return out;
}

export async function tail(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

/** Peak resident set size of a live process (VmHWM, /proc/PID/status), in bytes. */
export async function peakRss(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** `pid` and every process below it (children, their children…), from /proc. */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const e of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    // Field 4 is the parent; the command name (field 2) may hold spaces, so read after its ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!Number.isInteger(ppid)) continue;
    const kids = parents.get(ppid) ?? [];
    kids.push(Number(e));
    parents.set(ppid, kids);
  }
  const out: number[] = [];
  const queue = [pid];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    out.push(p);
    queue.push(...(parents.get(p) ?? []));
  }
  return out;
}

/** Linux's USER_HZ: the unit of utime and stime in /proc/PID/stat (100 on every Linux ABI we run on). */
const CLOCK_TICKS = 100;

/**
 * CPU seconds (user + system, every thread) the tree's live processes have used so far.
 * Read before and after a load, it gives the server's CPU per request: a figure the
 * shared VM's noise moves much less than throughput, which also depends on what the
 * hypervisor and the driver leave to the server.
 */
export async function cpuSecondsTree(pid: number): Promise<number> {
  let ticks = 0;
  for (const p of await processTree(pid)) {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    // Fields 14 and 15 (utime, stime), counted after the command name's ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += (Number(f[11]) || 0) + (Number(f[12]) || 0);
  }
  return ticks / CLOCK_TICKS;
}

/**
 * Peak RSS of a live process tree: each process's VmHWM, summed (a supervisor and its
 * serving processes, nginx's master and workers). The peaks of different processes may
 * fall at different moments, so this is an upper bound of the tree's peak at one instant.
 */
export async function peakRssTree(pid: number): Promise<number | null> {
  const each = await Promise.all((await processTree(pid)).map((p) => peakRss(p)));
  const known = each.filter((v): v is number => v !== null);
  return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
}

/**
 * The tree's proportional set size (Pss of /proc/PID/smaps_rollup, summed), sampled every
 * `everyMs` until `stop`, which resolves with the highest sum seen (bytes; null if none).
 * Unlike summed RSS, it counts pages the processes share (the node binary's code) once.
 */
export function samplePssTree(pid: number, everyMs = 250): { stop(): Promise<number | null> } {
  let peak: number | null = null;
  let running = true;
  const pss = async (p: number): Promise<number> => {
    const text = await readFile(`/proc/${p}/smaps_rollup`, 'utf8').catch(() => '');
    return Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
  };
  const loop = (async () => {
    while (running) {
      const each = await Promise.all((await processTree(pid)).map(pss));
      const sum = each.reduce((a, b) => a + b, 0);
      if (sum > 0 && (peak === null || sum > peak)) peak = sum;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** A port that was free a moment ago, for servers that cannot be told to pick one (Go, nginx). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Kills whatever is still running: at the end, on errors, and on Ctrl-C. */
export async function stopAll(graceMs = 3_000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** Synchronous last resort for `process.on('exit')`: SIGKILL to every child still alive. */
export function killAllNow(): void {
  for (const p of live) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
}

/** CPU time (user + system, all threads) of the processes in `pids`, in clock ticks. */
async function cpuTicks(pids: number[]): Promise<number> {
  let sum = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state(3) ppid … utime is field 14, stime field 15 (proc(5)).
    sum += Number(f[11] ?? 0) + Number(f[12] ?? 0);
  }
  return sum;
}

/**
 * Waits until the trees under `roots` used at most 5 % of a core over a 200 ms window (a
 * fill's tail, a spool's hashing and renaming are done), or `maxMs` passed. Returns the
 * milliseconds waited. Before a timed single fetch, so that one fetch's after-work does not
 * land in the next one's time.
 */
export async function quiet(roots: number[], maxMs = 15_000): Promise<number> {
  const started = performance.now();
  const window = 200;
  const allowedTicks = Math.max(1, Math.round((0.05 * window) / 10)); // 100 ticks a second
  for (;;) {
    const pids = (await Promise.all(roots.map((r) => processTree(r)))).flat();
    const before = await cpuTicks(pids);
    await new Promise((r) => setTimeout(r, window));
    const used = (await cpuTicks(pids)) - before;
    const waited = performance.now() - started;
    if (used <= allowedTicks || waited >= maxMs) return Math.round(waited);
  }
}
