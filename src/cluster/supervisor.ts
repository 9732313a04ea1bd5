// The supervisor of a node of N serving processes (http.processes > 1). It serves no
// request: it starts the processes on one port (each binds it with SO_REUSEPORT and owns
// its accept queue), replaces one that dies or stops answering, and keeps what must be one per node: the TLS
// certificate (read once, sent to all on SIGHUP), the session ticket keys (shared, rotated),
// the per-IP connection count, the debug server (one /metrics, one /debug/health), and
// the stop (SIGTERM drains every process, then exits 0).
import type { Logger } from 'pino';
import { createServer, type Server } from 'node:net';
import { secretsOf } from '../config/secret.js';
import type { Config } from '../config/types.js';
import { openDebugServer, type DebugServer } from '../server/debug-server.js';
import { listenOn } from '../server/listen.js';
import { TicketKeys } from '../server/ticket-keys.js';
import { readTls, type TlsMaterial } from '../server/tls.js';
import { listenFailed } from '../startup/errors.js';
import { removeDeadSpoolsAtStart } from '../startup/store.js';
import { viaName } from '../startup/via.js';
import { processBudget } from './budget.js';
import { IpTable } from './ip-table.js';
import { MemberProcess } from './member-process.js';
import type { FromMember, HostStandingMessage, ToMember } from './messages.js';
import { nodeHealth, type MemberHealth, type NodeHealthReport } from './node-health.js';
import type { NodeMetrics } from './node-metrics.js';
import { Watchdog } from './watchdog.js';

/** How long a scrape or a health check waits for each process. */
const ASK_MS = 2_000;
/** A process that dies sooner than this after its start is restarted after a growing pause. */
const STEADY_MS = 10_000;
const MAX_RESTART_PAUSE_MS = 30_000;

export class Supervisor {
  readonly #config: Config;
  readonly #log: Logger;
  readonly #processes: number;
  readonly #members: Array<MemberProcess | null>;
  readonly #ips: IpTable;
  readonly #tickets = new TicketKeys();
  #metrics: NodeMetrics | null = null;
  #tls: TlsMaterial | null = null;
  #port = 0;
  #removedSpools = 0;
  readonly #via: string;
  #debug: DebugServer | null = null;
  #stopping: Promise<number> | null = null;
  readonly #restartPause = new Map<number, number>();
  #started: { resolve(): void; reject(err: Error): void } | null = null;
  readonly #exitCodes: Array<number | null> = [];
  /** The last word on each upstream host (by URL), for a replacement's init. */
  readonly #hostStandings = new Map<string, HostStandingMessage>();
  readonly #watchdog = new Watchdog(
    () => this.#ready(),
    (m, silentMs) => this.#onStuck(m, silentMs),
  );

  constructor(config: Config, log: Logger, processes: number) {
    this.#config = config;
    this.#log = log;
    this.#processes = processes;
    this.#members = Array.from({ length: processes }, () => null);
    this.#ips = new IpTable(config.http.limits.maxConnectionsPerIp);
    this.#via = viaName(config);
  }

  /** Starts every process; resolves once all listen, rejects if one fails before that. */
  async start(): Promise<{ port: number }> {
    if (this.#config.http.debug?.prometheus === true) {
      const { NodeMetrics } = await import('./node-metrics.js');
      this.#metrics = new NodeMetrics(() => this.#ready().length);
    }
    this.#removedSpools = await removeDeadSpoolsAtStart(this.#config);
    this.#tls = await readTls(this.#config);
    const reservation = await this.#reservePort();
    this.#tickets.onRotate((keys) => this.#broadcast({ t: 'ticket-keys', keys: keys.toString('base64') }));
    this.#tickets.start();
    try {
      await new Promise<void>((resolve, reject) => {
        this.#started = { resolve, reject };
        for (let i = 0; i < this.#processes; i++) this.#spawn(i);
      });
    } catch (err) {
      // The node does not start: nothing is replaced, the CLI exits 1.
      this.#stopping = Promise.resolve(1);
      throw err;
    } finally {
      this.#started = null;
      reservation?.close();
    }
    // Spools were removed once, before the first processes; a replacement removes none.
    this.#removedSpools = 0;
    this.#watchdog.start();
    this.#debug = await openDebugServer(this.#config.http.debug, {
      health: () => this.health(),
      render: this.#metrics === null ? null : () => this.renderMetrics(),
      log: this.#log,
    });
    this.#log.info(
      {
        addr: this.#config.http.host,
        port: this.#port,
        tls: this.#tls !== null,
        processes: this.#processes,
        upstreams: [...this.#config.downstream.upstreams.hosts, this.#config.downstream.upstreams.origin].filter(
          (u) => u !== null,
        ),
      },
      'dtr-cache listening',
    );
    return { port: this.#port };
  }

  /** SIGHUP: the certificate read once, then swapped in every process; their key sets reloaded. */
  async reload(): Promise<void> {
    let material: TlsMaterial | null;
    try {
      material = await readTls(this.#config);
    } catch (err) {
      this.#log.error({ err }, 'reload refused; keeping the current certificate and keys');
      return;
    }
    this.#tls = material;
    const answers = await Promise.allSettled(
      this.#ready().map((m) =>
        m.ask((id) => ({ t: 'reload', id, tls: material }), ['reloaded', 'reload-failed'], 10_000),
      ),
    );
    const failed = answers.flatMap((a) =>
      a.status === 'rejected' ? [String(a.reason)] : a.value.t === 'reload-failed' ? [a.value.error] : [],
    );
    const keys = answers.flatMap((a) => (a.status === 'fulfilled' && a.value.t === 'reloaded' ? [a.value.keys] : []));
    if (failed.length > 0) {
      // The pair loaded here; a process that failed to take it (or did not answer) keeps its old one.
      this.#log.error({ failed, reloaded: keys.length }, 'reload failed in some serving processes');
      return;
    }
    // Each process reloads its own key set: the smallest count is what every one has at least.
    this.#log.info(
      { tls: material !== null, keys: keys.length === 0 ? 0 : Math.min(...keys), processes: keys.length },
      'reloaded TLS certificate and key set',
    );
  }

  /** SIGTERM: every process drains (each up to http.draintimeout); resolves the exit code. */
  stop(): Promise<number> {
    this.#stopping ??= (async () => {
      this.#log.info({ processes: this.#ready().length, deadlineMs: this.#config.http.drainTimeoutMs }, 'draining');
      this.#tickets.stop();
      this.#watchdog.stop();
      const live = this.#members.filter((m): m is MemberProcess => m !== null && m.state !== 'gone');
      const exited = live.map((m) => new Promise<void>((resolve) => m.worker.once('exit', () => resolve())));
      const starting = new Set(live.filter((m) => m.state === 'starting'));
      for (const m of live) {
        // One still starting serves nothing yet: it just stops.
        if (starting.has(m)) m.worker.process.kill('SIGKILL');
        else m.send({ t: 'drain' });
      }
      // Each process keeps its own deadline; past it and a margin, one that still runs is killed.
      const killer = setTimeout(() => {
        for (const m of live) if (m.state !== 'gone') m.worker.process.kill('SIGKILL');
      }, this.#config.http.drainTimeoutMs + 10_000).unref();
      await Promise.all(exited);
      clearTimeout(killer);
      await this.#debug?.close();
      const code = live.every((m) => starting.has(m) || this.#exitCodes[m.index] === 0) ? 0 : 1;
      this.#log.info({ exitCodes: this.#exitCodes }, 'stopped');
      return code;
    })();
    return this.#stopping;
  }

  async health(): Promise<NodeHealthReport> {
    const members = await Promise.all(
      this.#members.map(async (m, index): Promise<MemberHealth> => {
        if (m === null || m.state !== 'ready')
          return { index, pid: m?.pid ?? null, state: m?.state ?? 'gone', report: null };
        const report = await m
          .ask((id) => ({ t: 'health', id }), ['health'], ASK_MS)
          .then((a) => a.report)
          .catch(() => null);
        return { index, pid: m.pid ?? null, state: m.state, report };
      }),
    );
    return nodeHealth(members, this.#stopping !== null);
  }

  async renderMetrics(): Promise<{ contentType: string; body: string }> {
    const answers = await Promise.all(
      this.#ready().map(async (m) => ({
        id: m.worker.id,
        snapshot: await m
          .ask((id) => ({ t: 'scrape', id }), ['metrics'], ASK_MS)
          .then((a) => a.metrics)
          .catch(() => null),
      })),
    );
    if (this.#metrics === null) throw new Error('metrics are not enabled');
    return this.#metrics.render(answers);
  }

  #ready(): MemberProcess[] {
    return this.#members.filter((m): m is MemberProcess => m !== null && m.state === 'ready');
  }

  #broadcast(m: ToMember, except?: MemberProcess): void {
    for (const member of this.#members) if (member !== null && member !== except) member.send(m);
  }

  /**
   * Port 0 (tests): a free port is chosen here and held open, with SO_REUSEPORT, until every
   * process has bound it too. No client knows the port before 'dtr-cache listening'.
   * A given port is first bound plainly, and let go: SO_REUSEPORT lets any process of this
   * user join a port's group, so a second node started on the port of a running one would
   * silently share its clients; it fails with EADDRINUSE instead, as a one-process node does.
   */
  async #reservePort(): Promise<Server | null> {
    this.#port = this.#config.http.port;
    const { host } = this.#config.http;
    const named = (err: unknown): never => {
      throw listenFailed('http.addr', { host, port: this.#port }, err);
    };
    if (this.#port !== 0) {
      const probe = createServer();
      await listenOn(probe, host, this.#port).catch(named);
      await new Promise((resolve) => probe.close(resolve));
      return null;
    }
    const reservation = createServer();
    this.#port = (await listenOn(reservation, host, 0, { reusePort: true }).catch(named)).port;
    return reservation;
  }

  /** `nodeKeys`: for a replacement, the key set a running process trusts (init's nodeKeys). */
  #spawn(index: number, nodeKeys: unknown = null): void {
    const member = new MemberProcess(index, () => this.#init(index, nodeKeys), {
      message: (m, msg) => this.#onMessage(m, msg),
      exit: (m, code, signal) => this.#onExit(m, code, signal),
    });
    this.#members[index] = member;
  }

  #init(index: number, nodeKeys: unknown): ToMember {
    return {
      t: 'init',
      index,
      processes: this.#processes,
      config: this.#config,
      secrets: secretsOf(this.#config),
      tls: this.#tls,
      ticketKeys: this.#tickets.current.toString('base64'),
      port: this.#port,
      budget: processBudget(this.#processes),
      removedSpools: this.#removedSpools,
      via: this.#via,
      nodeKeys,
      hostStandings: [...this.#hostStandings.values()],
    };
  }

  /** The trusted key set of a running process, or null (none answers, or none has keys). */
  async #nodeKeys(): Promise<unknown> {
    for (const m of this.#ready()) {
      const jwks = await m
        .ask((id) => ({ t: 'keys', id }), ['keys'], ASK_MS)
        .then((a) => a.jwks)
        .catch(() => null);
      if (jwks !== null) return jwks;
    }
    return null;
  }

  #onMessage(member: MemberProcess, m: Exclude<FromMember, { id: number } | { t: 'hello' }>): void {
    switch (m.t) {
      case 'listening':
        member.state = 'ready';
        if (this.#started !== null && this.#ready().length === this.#processes) this.#started.resolve();
        return;
      case 'conn-open':
        if (!this.#ips.open(member.worker.id, m.conn, m.ip)) member.send({ t: 'refuse', conn: m.conn });
        return;
      case 'conn-close':
        return this.#ips.close(member.worker.id, m.conn);
      case 'published':
        return this.#broadcast({ t: 'published', digest: m.digest, size: m.size }, member);
      case 'host-standing':
        this.#hostStandings.set(m.url, m);
        return this.#broadcast(m, member);
      case 'fill-credential':
        return this.#broadcast(m, member);
    }
  }

  /** A process that stopped answering is killed; its exit replaces it (#onExit). */
  #onStuck(member: MemberProcess, silentMs: number): void {
    if (this.#stopping !== null || member.state === 'gone') return;
    this.#log.error(
      { index: member.index, servingPid: member.pid, silentMs },
      'serving process does not answer; killing it',
    );
    member.worker.process.kill('SIGKILL');
  }

  #onExit(member: MemberProcess, code: number | null, signal: string | null): void {
    this.#ips.forget(member.worker.id);
    void this.#metrics?.retire(member.worker.id);
    if (this.#stopping !== null) {
      this.#exitCodes[member.index] = code;
      return;
    }
    const lived = Date.now() - member.startedAt;
    this.#log.error(
      { index: member.index, servingPid: member.pid, code, signal, livedMs: lived },
      'serving process exited',
    );
    if (this.#started !== null) {
      // At start, a process that cannot start (port taken, store unreadable) stops the node.
      this.#started.reject(new Error(`serving process ${member.index} exited with ${code ?? signal} while starting`));
      for (const m of this.#members) if (m !== null && m.state !== 'gone') m.worker.process.kill('SIGKILL');
      return;
    }
    this.#metrics?.restarted();
    // One that dies at once again and again is restarted after a growing pause, not in a loop.
    const pause =
      lived < STEADY_MS ? Math.min(MAX_RESTART_PAUSE_MS, (this.#restartPause.get(member.index) ?? 250) * 2) : 0;
    this.#restartPause.set(member.index, pause === 0 ? 250 : pause);
    this.#log.info({ index: member.index, inMs: pause }, 'replacing serving process');
    // With the keys the node trusts now: a replacement that cannot reach the origin (down)
    // could not verify a token without them, and would die again until the origin is back.
    setTimeout(() => {
      void this.#nodeKeys().then((keys) => {
        if (this.#stopping === null) this.#spawn(member.index, keys);
      });
    }, pause);
  }
}
