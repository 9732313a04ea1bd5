// Expiry and eviction. blobttl counts from the last pull; a sweep every
// min(blobttl / 2, 10 min) deletes what nobody pulled in time. `maxsize` evicts the least
// recently pulled blobs down to a low watermark. A blob being read or filled is never
// evicted. Evicted files are first renamed into a trash directory and deleted after a
// grace period: a replica on shared storage (NFS) may still be reading them.
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobEntry, BlobStore } from './blob-store.js';
import { errnoCode } from '../errors/inspect.js';
import { Periodic } from './periodic.js';

export type EvictionReason = 'expired' | 'size';

export interface EvictorOptions {
  ttlMs: number | null;
  maxSize: number | null;
  /** Evict down to this fraction of maxSize, so one eviction makes room for many fills. */
  lowWatermark?: number;
  /** Digests with a fill in progress (never evicted). */
  busy: (digest: string) => boolean;
  /** How long a trashed file is kept for readers elsewhere. */
  trashGraceMs?: number;
  onEvict?: (reason: EvictionReason, entry: BlobEntry) => void;
  /**
   * Digests not to expire in this sweep (asked once per sweep): a mirror's content while its
   * upstream is unreachable. The size cap still applies to them.
   */
  protect?: () => Promise<ReadonlySet<string>>;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
}

const TEN_MINUTES = 10 * 60_000;
const NONE: ReadonlySet<string> = new Set();

export class Evictor {
  readonly #store: BlobStore;
  readonly #opts: EvictorOptions;
  readonly #now: () => number;
  readonly #trashDir: string;
  readonly #periodic = new Periodic(() => this.#sweep());

  constructor(store: BlobStore, opts: EvictorOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#trashDir = store.layout.trashDir;
  }

  /** The sweep period: min(blobttl / 2, 10 min); with only maxsize, every 10 min. */
  get periodMs(): number {
    return this.#opts.ttlMs === null ? TEN_MINUTES : Math.max(50, Math.min(this.#opts.ttlMs / 2, TEN_MINUTES));
  }

  start(): void {
    if (this.#opts.ttlMs === null && this.#opts.maxSize === null) return;
    this.#periodic.start(this.periodMs);
  }

  stop(): void {
    this.#periodic.stop();
  }

  /** Runs one sweep (expiry, size, trash); concurrent callers share it. */
  sweep(): Promise<void> {
    return this.#periodic.run();
  }

  /**
   * The disk is full: the trash goes now, whatever its grace period. Space for fills that
   * are under way matters more than a replica that may still read an evicted file.
   */
  diskFull(): void {
    void this.#emptyTrash(true);
  }

  /** Called after a publish: evicts only when over the cap, so the hot path stays cheap. */
  afterPublish(): void {
    const max = this.#opts.maxSize;
    if (max !== null && this.#store.bytes > max) void this.sweep();
  }

  async #sweep(): Promise<void> {
    if (this.#opts.ttlMs !== null) {
      const expired = [...this.#store.entries()].filter((e) => this.#store.expired(e));
      const keep = expired.length === 0 ? NONE : await this.#protected();
      for (const entry of expired) {
        if (keep === null || keep.has(entry.digest.value)) continue;
        if (this.#store.expired(entry) && this.#evictable(entry) && !(await this.#pulledElsewhere(entry, 'expired'))) {
          await this.#evict(entry, 'expired');
        }
      }
    }
    const max = this.#opts.maxSize;
    if (max !== null && this.#store.bytes > max) {
      const target = max * (this.#opts.lowWatermark ?? 0.9);
      const byAge = [...this.#store.entries()].sort((a, b) => a.lastPull - b.lastPull);
      for (const entry of byAge) {
        if (this.#store.bytes <= target) break;
        if (this.#evictable(entry) && !(await this.#pulledElsewhere(entry, 'size'))) await this.#evict(entry, 'size');
      }
    }
    await this.#emptyTrash();
  }

  /** What `protect` keeps this sweep; null (expire nothing) when it could not say. */
  async #protected(): Promise<ReadonlySet<string> | null> {
    if (this.#opts.protect === undefined) return NONE;
    try {
      return await this.#opts.protect();
    } catch (err) {
      this.#opts.log?.warn({ err }, 'could not tell which blobs to keep: no expiry in this sweep');
      return null;
    }
  }

  #evictable(entry: BlobEntry): boolean {
    return entry.readers === 0 && !this.#opts.busy(entry.digest.value);
  }

  /**
   * Another replica on the same root may have served the blob since we last looked: its
   * pull moved the file's mtime. Take that as our last pull too, and keep the blob.
   */
  async #pulledElsewhere(entry: BlobEntry, reason: EvictionReason): Promise<boolean> {
    const before = entry.lastPull;
    // Gone already (another replica evicted it): forgotten here too.
    if (!(await this.#store.adoptDiskPull(entry))) return true;
    // No longer the least recently pulled, or no longer expired: keep it.
    if (entry.lastPull > before) return reason === 'size' || !this.#store.expired(entry);
    return false;
  }

  async #evict(entry: BlobEntry, reason: EvictionReason): Promise<void> {
    const path = this.#store.layout.blobData(entry.digest);
    this.#store.forget(entry);
    try {
      await mkdir(this.#trashDir, { recursive: true });
      await rename(path, this.#store.layout.trash(entry.digest, this.#now()));
      // distribution leaves the <hex>/ directory; remove it when empty, as GC would.
      await rmdir(join(path, '..')).catch(() => undefined);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') {
        this.#opts.log?.warn({ digest: entry.digest.value, err }, 'eviction failed');
        return;
      }
    }
    this.#opts.onEvict?.(reason, entry);
    this.#opts.log?.info(
      { digest: entry.digest.value, size: entry.size, reason, lastPull: new Date(entry.lastPull).toISOString() },
      'blob evicted',
    );
  }

  /**
   * Deletes trashed files past their grace period, and, while the store and the trash
   * together are over `maxsize` (or `all`: the disk is full), the oldest before that:
   * `maxsize` bounds what the cache keeps on disk, the trash included.
   */
  async #emptyTrash(all = false): Promise<void> {
    const grace = this.#opts.trashGraceMs ?? 15 * 60_000;
    let names: string[];
    try {
      names = await readdir(this.#trashDir);
    } catch {
      return;
    }
    const trashed = names
      .map((name) => ({ name, at: Number(name.slice(name.lastIndexOf('-') + 1)) }))
      .filter((t) => Number.isFinite(t.at))
      .sort((a, b) => a.at - b.at);
    const max = this.#opts.maxSize;
    let trashBytes = 0;
    const sizes = new Map<string, number>();
    if (max !== null && !all) {
      for (const t of trashed) {
        const size = (await stat(join(this.#trashDir, t.name)).catch(() => null))?.size ?? 0;
        sizes.set(t.name, size);
        trashBytes += size;
      }
    }
    for (const t of trashed) {
      const overCap = max !== null && this.#store.bytes + trashBytes > max;
      if (!all && !overCap && this.#now() - t.at <= grace) continue;
      await rm(join(this.#trashDir, t.name), { force: true });
      trashBytes -= sizes.get(t.name) ?? 0;
    }
  }
}
