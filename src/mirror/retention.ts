// `ttl` for mirrors, which never deletes the last copy of a tag's content while the upstream
// is unreachable (distribution's proxy does, and its pulls then fail through a long outage).
// Each mirror forgets records (tags, and manifests and blobs confirmed in a repository) that
// nobody pulled for its ttl, but only after its upstream answered a probe; and the evictor,
// before it lets expired blobs go, asks `protect()` for the digests it must keep: everything
// a mirror whose upstream does not answer has a record of.
import type { Logger } from 'pino';
import { parseDigest } from '../store/digest.js';
import type { Mirror } from './mirror.js';
import { rm } from 'node:fs/promises';

const TEN_MINUTES = 10 * 60_000;
/** One probe answer serves a sweep and the evictor's question right after it. */
const PROBE_REUSE_MS = 5_000;

export class Retention {
  readonly #mirrors: readonly Mirror[];
  readonly #log: Logger;
  readonly #probes = new Map<Mirror, { at: number; ok: Promise<boolean> }>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(mirrors: readonly Mirror[], log: Logger) {
    this.#mirrors = mirrors;
    this.#log = log;
  }

  /** min(ttl / 2, 10 min) over the mirrors that expire anything. */
  get periodMs(): number | null {
    const ttls = this.#mirrors.map((m) => m.config.ttlMs).filter((t): t is number => t !== null);
    if (ttls.length === 0) return null;
    return Math.max(50, Math.min(TEN_MINUTES, ...ttls.map((t) => t / 2)));
  }

  start(): void {
    const period = this.periodMs;
    if (period === null) return;
    const tick = (): void => {
      void this.sweep().finally(() => {
        if (this.#timer !== null) this.#timer = setTimeout(tick, period).unref();
      });
    };
    this.#timer = setTimeout(tick, period).unref();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** One pass over every mirror's records; concurrent callers share it. */
  sweep(): Promise<void> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /**
   * Digests the evictor must not expire now: every manifest and blob recorded by a mirror
   * whose upstream does not answer. Called once per eviction sweep.
   */
  async protect(): Promise<ReadonlySet<string>> {
    const keep = new Set<string>();
    for (const m of this.#mirrors) {
      if (m.config.ttlMs === null || (await this.#reachable(m))) continue;
      let n = 0;
      for await (const file of m.records.walk()) {
        if (file.kind === 'tags') continue;
        const digest = digestOfKey(file.key);
        if (digest !== null) {
          keep.add(digest);
          n++;
        }
      }
      this.#log.warn(
        { registry: m.registry, upstream: m.upstream.url, digests: n },
        'mirror upstream unreachable: keeping its content past ttl',
      );
    }
    return keep;
  }

  async #sweep(): Promise<void> {
    for (const m of this.#mirrors) {
      const ttl = m.config.ttlMs;
      if (ttl === null) continue;
      if (!(await this.#reachable(m))) {
        this.#log.warn(
          { registry: m.registry, upstream: m.upstream.url },
          'mirror upstream unreachable: records kept past ttl',
        );
        continue;
      }
      const now = m.now();
      let forgotten = 0;
      for await (const file of m.records.walk()) {
        if (now - file.lastPull <= ttl) continue;
        m.records.forget(file);
        await rm(file.path, { force: true });
        forgotten++;
      }
      if (forgotten > 0) this.#log.info({ registry: m.registry, records: forgotten }, 'mirror records expired');
    }
  }

  #reachable(m: Mirror): Promise<boolean> {
    const now = m.now();
    const last = this.#probes.get(m);
    if (last !== undefined && now - last.at < PROBE_REUSE_MS) return last.ok;
    const ok = m.upstream.reachable();
    this.#probes.set(m, { at: now, ok });
    return ok;
  }
}

/** `sha256-<hex>` → `sha256:<hex>`, or null for a stray file name. */
function digestOfKey(key: string): string | null {
  const dash = key.indexOf('-');
  try {
    return parseDigest(`${key.slice(0, dash)}:${key.slice(dash + 1)}`).value;
  } catch {
    return null;
  }
}
