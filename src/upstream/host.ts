// One upstream host: its undici dispatcher (with the CA list passed explicitly) and its
// health. A host that keeps failing is skipped for a growing back-off, then tried again.
import type { SecureContext } from 'node:tls';
import { Pool } from 'undici';

export interface HostOptions {
  /** Trust for upstream TLS: the system roots plus `cas` (trust.ts). */
  secureContext: SecureContext;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  now?: () => number;
}

/**
 * What every upstream dispatcher is built with (a host's Pool, the key set's Agent, the
 * mirror's Agent for other origins). HTTP/1.1 only: undici 8 offers HTTP/2 by default, and over HTTP/2 all of a
 * host's fills share one connection whose flow-control windows (256 KiB a stream, 512 KiB
 * the connection) cap each fill at a window per round trip: 3 MiB/s over an 80 ms link,
 * against 60–80 MiB/s over HTTP/1.1, where each fill has a connection of its own and the
 * kernel sizes its window (docs/architecture.md, "Upstream connections").
 */
export function upstreamDispatcherOptions(opts: Omit<HostOptions, 'now'>) {
  return {
    connect: { secureContext: opts.secureContext, timeout: opts.connectTimeoutMs },
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyIdleTimeoutMs,
    allowH2: false,
  };
}

/**
 * A host's standing as one serving process of a node tells the others (cluster/messages.ts),
 * so that a tier one process found broken is left by the whole node, not by each process
 * after failures of its own. `retryAt` and `at` are wall-clock milliseconds: the processes
 * share the host's clock.
 */
export interface HostStanding {
  url: string;
  /** Failures since the last success; 0: the host answered. */
  failures: number;
  retryAt: number;
  at: number;
  detail: string;
}

const BASE_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;

export class UpstreamHost {
  readonly url: string;
  readonly dispatcher: Pool;
  /** 'origin' is the 2.2 form's fallback; 'upstream' are the round-robin hosts. */
  readonly role: 'upstream' | 'origin';
  #failures = 0;
  #retryAt = 0;
  #now: () => number;
  lastResult: { ok: boolean; at: number; detail: string } | null = null;
  /** Told of each failure and of each recovery (not of every success): the node's other processes. */
  onStanding: ((standing: HostStanding) => void) | null = null;

  constructor(url: string, role: 'upstream' | 'origin', opts: HostOptions) {
    this.url = url;
    this.role = role;
    this.#now = opts.now ?? Date.now;
    this.dispatcher = new Pool(url, { ...upstreamDispatcherOptions(opts), keepAliveTimeout: 30_000 });
  }

  /** True while the host is being penalised for recent failures. */
  get penalised(): boolean {
    return this.#failures > 0 && this.#now() < this.#retryAt;
  }

  /** Failures since the last success: among hosts under penalty, those with fewer are asked first. */
  get failures(): number {
    return this.#failures;
  }

  recordSuccess(): void {
    const recovered = this.#failures > 0;
    this.#failures = 0;
    this.#retryAt = 0;
    this.lastResult = { ok: true, at: this.#now(), detail: 'ok' };
    if (recovered) this.#tell();
  }

  /** `minPenaltyMs`: at least this long at the back of the order (a host that sent bad bytes). */
  recordFailure(detail: string, minPenaltyMs = 0): void {
    this.#failures += 1;
    const backoff = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (this.#failures - 1));
    this.#retryAt = Math.max(this.#retryAt, this.#now() + Math.max(backoff, minPenaltyMs));
    this.lastResult = { ok: false, at: this.#now(), detail };
    this.#tell();
  }

  /**
   * Another process's word on this host. A failure extends our penalty (never shortens it);
   * a recovery ends it, unless we saw the host fail since.
   */
  adopt(s: HostStanding): void {
    if (s.failures === 0) {
      if (this.lastResult !== null && this.lastResult.at > s.at) return;
      this.#failures = 0;
      this.#retryAt = 0;
    } else {
      this.#failures = Math.max(this.#failures, s.failures);
      this.#retryAt = Math.max(this.#retryAt, s.retryAt);
    }
    if (this.lastResult === null || this.lastResult.at <= s.at) {
      this.lastResult = { ok: s.failures === 0, at: s.at, detail: s.detail };
    }
  }

  #tell(): void {
    const last = this.lastResult;
    if (this.onStanding === null || last === null) return;
    this.onStanding({
      url: this.url,
      failures: this.#failures,
      retryAt: this.#retryAt,
      at: last.at,
      detail: last.detail,
    });
  }

  async close(): Promise<void> {
    await this.dispatcher.destroy();
  }
}

/**
 * In a node of several processes: each failure and recovery of these hosts (all of this
 * process's upstreams: DTR mode's chain and the mirrors') is told with `tell`.
 */
export function shareStandings(hosts: readonly UpstreamHost[], tell: (standing: HostStanding) => void): void {
  for (const host of hosts) host.onStanding = tell;
}

/** Another process's word on an upstream: every host of ours with its URL adopts it. */
export function adoptStanding(hosts: readonly UpstreamHost[], standing: HostStanding): void {
  for (const host of hosts) if (host.url === standing.url) host.adopt(standing);
}
