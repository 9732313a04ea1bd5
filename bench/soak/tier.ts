// One cache tier of the soak: `dtr-cache serve` as its own process, configured as an
// operator would, that the schedule can kill -9 and start again on the same root and port.
// A death the schedule did not cause is a crash: it is recorded with the log's tail, and
// the tier is started again so the soak goes on.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CACHE_CLI,
  cliNodeFlags,
  killServingProcesses,
  writeCacheConfig,
  type CacheSpec,
} from '../../testkit/cache-process.js';
import type { Leaf } from '../../testkit/pki.js';
import { Layout } from '../../src/store/layout.js';
import { findLogLine, freePort, spawnLogged, tail, waitReady, type Proc } from '../scenarios/procs.js';

export interface TierSpec {
  name: string;
  /** Config and log files. */
  dir: string;
  root: string;
  upstreams: CacheSpec['upstreams'];
  caPath: string;
  leaf: Leaf;
  /** `maxsize` (e.g. `512MiB`), or none. */
  maxSize: string | null;
  /** Upstream `timeouts.bodyidle`: how soon a stalled transfer is given up. */
  bodyIdle: string;
}

export interface Incarnation {
  pid: number;
  startedAt: number;
  endedAt: number | null;
  /** How it ended: 'kill -9', 'crash: <code or signal>', 'stop'; null while alive. */
  end: string | null;
}

export interface Crash {
  tier: string;
  at: number;
  exit: string;
  logTail: string;
}

export class Tier {
  readonly incarnations: Incarnation[] = [];
  readonly crashes: Crash[] = [];
  readonly layout: Layout;
  #proc: Proc | null = null;
  #port = 0;
  #configPath = '';
  /** Set while the schedule (or the end of the run) is the one ending the process. */
  #expectedEnd: string | null = null;
  #running = false;

  constructor(readonly spec: TierSpec) {
    this.layout = new Layout(spec.root);
  }

  get url(): string {
    return `https://localhost:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** The pid of the live process, or null while it is down. */
  get pid(): number | null {
    return this.#proc !== null && this.#proc.child.exitCode === null && this.#proc.child.signalCode === null
      ? this.#proc.pid
      : null;
  }

  async start(): Promise<void> {
    if (this.#configPath === '') {
      this.#port = await freePort();
      const s = this.spec;
      const maxSize = s.maxSize === null ? '' : `          maxsize: ${s.maxSize}\n`;
      const { path } = await writeCacheConfig(s.dir, {
        upstreams: s.upstreams,
        cas: [s.caPath],
        tls: s.leaf,
        root: s.root,
        logLevel: 'info',
        extraOptions: `${maxSize}          timeouts:\n            connect: 2s\n            headers: 15s\n            bodyidle: ${s.bodyIdle}\n`,
      });
      this.#configPath = path;
    }
    this.#running = true;
    await this.#spawn();
  }

  async #spawn(): Promise<void> {
    const n = this.incarnations.length + 1;
    const proc = await spawnLogged({
      name: `${this.spec.name}#${n}`,
      command: process.execPath,
      args: [...(await cliNodeFlags()), CACHE_CLI, 'serve', '--config', this.#configPath],
      // The same port every time: clients and the link find the tier where it was.
      env: { REGISTRY_HTTP_ADDR: `127.0.0.1:${this.#port}` },
      logFile: join(this.spec.dir, `${this.spec.name}-${n}.log`),
    });
    const life: Incarnation = { pid: proc.pid, startedAt: Date.now(), endedAt: null, end: null };
    this.incarnations.push(life);
    this.#proc = proc;
    this.#expectedEnd = null;
    void proc.exited.then((code) => this.#onExit(proc, life, String(code)));
    await waitReady(proc, 30_000, () =>
      findLogLine(proc.logFile, (l) => (l['msg'] === 'dtr-cache listening' ? true : undefined)),
    );
  }

  #onExit(proc: Proc, life: Incarnation, code: string): void {
    life.endedAt = Date.now();
    life.end = this.#expectedEnd ?? `crash: ${code}`;
    if (this.#expectedEnd !== null || !this.#running || this.#proc !== proc) return;
    void tail(proc.logFile, 30).then((logTail) =>
      this.crashes.push({ tier: this.spec.name, at: life.endedAt ?? Date.now(), exit: code, logTail }),
    );
    // Keep the soak going: the crash is what the report says, not the end of the run.
    setTimeout(() => {
      if (this.#running && this.#proc === proc) this.#spawn().catch(() => undefined);
    }, 1_000);
  }

  /** SIGKILL: no drain, no clean-up; whatever was in flight is left as it was. */
  async kill9(): Promise<void> {
    const proc = this.#proc;
    if (proc === null || this.pid === null) return;
    this.#expectedEnd = 'kill -9';
    // A tier of several processes dies whole, its serving processes first (testkit says why).
    await killServingProcesses(proc.pid, 10_000);
    proc.child.kill('SIGKILL');
    await proc.exited;
  }

  /** Starts the next incarnation on the same root and port. */
  async restart(): Promise<void> {
    await this.#spawn();
  }

  /** Graceful stop at the end of the run. */
  async stop(): Promise<void> {
    this.#running = false;
    const proc = this.#proc;
    if (proc === null) return;
    if (this.pid !== null) this.#expectedEnd = 'stop';
    await proc.stop(10_000);
  }

  /** Spool files of fills in progress (data files only: no owner records or locks). */
  async spools(): Promise<string[]> {
    const names = await readdir(this.layout.spoolDir).catch(() => [] as string[]);
    return names.filter((n) => !n.includes('.'));
  }

  /** Every file in the spool directory, owner records and locks included. */
  async spoolFiles(): Promise<string[]> {
    return readdir(this.layout.spoolDir).catch(() => [] as string[]);
  }

  /** Log files of every incarnation so far. */
  logFiles(): string[] {
    return this.incarnations.map((_, i) => join(this.spec.dir, `${this.spec.name}-${i + 1}.log`));
  }
}
