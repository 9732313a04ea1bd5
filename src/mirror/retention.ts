// `ttl` for mirrors, which never deletes the last copy of a tag's content while the upstream
// is unreachable (distribution's proxy does, and its pulls then fail through a long outage).
// Each mirror forgets records (tags, and manifests and blobs confirmed in a repository) that
// nobody pulled for its ttl, but only after its upstream answered a probe; and the evictor,
// before it lets expired blobs go, asks `protect()` for the digests it must keep: everything
// a mirror whose upstream does not answer has a record of.
import type { Logger } from 'pino';
import { parseDigest } from '../store/digest.js';
import { rm } from 'node:fs/promises';
import { Periodic } from '../store/periodic.js';
import type { Mirror } from './mirror.js';

const TEN_MINUTES = 10 * 60_000;

export class Retention {
  readonly #mirrors: readonly Mirror[];
  readonly #log: Logger;
  readonly #periodic = new Periodic(() => this.#sweep());

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
    if (period !== null) this.#periodic.start(period);
  }

  stop(): void {
    this.#periodic.stop();
  }

  /** One pass over every mirror's records; concurrent callers share it. */
  sweep(): Promise<void> {
    return this.#periodic.run();
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

  /**
   * Asked afresh each time (once per mirror and sweep): an answer kept even for seconds
   * could let content expire just after its upstream went away.
   */
  #reachable(m: Mirror): Promise<boolean> {
    return m.upstream.reachable();
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
