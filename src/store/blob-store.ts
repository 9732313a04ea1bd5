// The blob store: an in-memory index over distribution's on-disk layout, rebuilt from
// disk at start. The index maps digest → size and last pull; the last pull is also the
// file's mtime, so it survives restarts and is shared by replicas on one root.
import { mkdir, open, readdir, rename, stat, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest, type Digest } from './digest.js';
import type { Layout } from './layout.js';
import { SmallBlobCache } from './small-blobs.js';

/** Blobs up to this size are kept in memory once read (configs, small layers)… */
const SMALL_BLOB = 64 << 10;
/** …up to this many bytes in all, for the whole node (a node of N processes gives each 1/N). */
export const SMALL_BLOBS_TOTAL = 32 << 20;

export interface BlobEntry {
  readonly digest: Digest;
  size: number;
  /** ms since epoch of the last pull (or of the fill). */
  lastPull: number;
  /** When lastPull was last written to disk as mtime. */
  persistedPull: number;
  /** Open readers; an entry with readers is never evicted. */
  readers: number;
}

export interface BlobStoreOptions {
  /** null = blobs never expire. */
  ttlMs: number | null;
  now?: () => number;
  /** Memory for small blobs' contents; SMALL_BLOBS_TOTAL when not given. */
  smallBlobBytes?: number;
}

export interface OpenBlob {
  entry: BlobEntry;
  fh: FileHandle;
  /** Closes the file and releases the entry for eviction; idempotent. */
  release(): Promise<void>;
}

export class BlobStore {
  readonly layout: Layout;
  readonly #entries = new Map<string, BlobEntry>();
  readonly #small: SmallBlobCache;
  readonly #ttlMs: number | null;
  readonly #now: () => number;
  #bytes = 0;

  constructor(layout: Layout, opts: BlobStoreOptions) {
    this.layout = layout;
    this.#ttlMs = opts.ttlMs;
    this.#now = opts.now ?? Date.now;
    this.#small = new SmallBlobCache(SMALL_BLOB, opts.smallBlobBytes ?? SMALL_BLOBS_TOTAL);
  }

  get count(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  entries(): IterableIterator<BlobEntry> {
    return this.#entries.values();
  }

  expired(entry: BlobEntry): boolean {
    return this.#ttlMs !== null && this.#now() - entry.lastPull > this.#ttlMs;
  }

  /**
   * The entry for a digest, or null. On an index miss the disk is checked too, so a blob
   * another replica published is found (issue: replicas on one rootdirectory). Expired
   * entries are not returned (not served, whatever the sweep has done yet) unless
   * `includeExpired`: a mirror serves its last copy while its upstream is unreachable.
   * Before an entry counts as expired, the pulls of the node's other processes (and other
   * replicas) are taken in from the file's mtime: a blob hot there is not fetched again here.
   */
  async lookup(d: Digest, opts: { includeExpired?: boolean } = {}): Promise<BlobEntry | null> {
    let entry = this.#entries.get(d.value) ?? null;
    if (entry === null) {
      try {
        const st = await stat(this.layout.blobData(d));
        if (!st.isFile()) return null;
        entry = this.#entries.get(d.value) ?? this.#insert(d, st.size, st.mtimeMs);
      } catch {
        return null;
      }
    }
    if (this.expired(entry) && opts.includeExpired !== true) {
      if (!(await this.adoptDiskPull(entry)) || this.expired(entry)) return null;
    }
    return entry;
  }

  /**
   * Another process or replica on this root may have served the blob since this one last
   * did: its pulls move the file's mtime (touch). That becomes our last pull too. False
   * when the file is gone, and then it is forgotten here as well.
   */
  async adoptDiskPull(entry: BlobEntry): Promise<boolean> {
    try {
      const st = await stat(this.layout.blobData(entry.digest));
      if (st.mtimeMs > entry.lastPull + 1) {
        entry.lastPull = st.mtimeMs;
        entry.persistedPull = st.mtimeMs;
      }
      return true;
    } catch {
      this.forget(entry);
      return false;
    }
  }

  /** Records a blob the fill just published; a small one's bytes are kept in memory at once. */
  add(d: Digest, size: number, bytes?: Buffer): BlobEntry {
    if (bytes !== undefined) this.#small.set(d.value, bytes);
    const now = this.#now();
    const existing = this.#entries.get(d.value);
    if (existing) {
      // An expired copy fetched again: publishing found the old file in place (its mtime the
      // old last pull). This pull must reach the disk too, or a restart or another process
      // of the node takes the blob for expired again.
      this.touch(existing);
      return existing;
    }
    const entry = this.#insert(d, size, now);
    entry.persistedPull = now;
    return entry;
  }

  #insert(d: Digest, size: number, lastPull: number): BlobEntry {
    const entry: BlobEntry = { digest: d, size, lastPull, persistedPull: lastPull, readers: 0 };
    this.#entries.set(d.value, entry);
    this.#bytes += size;
    return entry;
  }

  /** Forgets an entry (the caller deletes the file). */
  forget(entry: BlobEntry): void {
    this.#small.delete(entry.digest.value);
    if (this.#entries.get(entry.digest.value) === entry) {
      this.#entries.delete(entry.digest.value);
      this.#bytes -= entry.size;
    }
  }

  /**
   * A file found bad (its size changed under us) is moved to the trash, not just forgotten:
   * otherwise the next lookup would find it on disk again and index it at its wrong size.
   */
  async quarantine(entry: BlobEntry): Promise<void> {
    this.forget(entry);
    try {
      await mkdir(this.layout.trashDir, { recursive: true });
      await rename(this.layout.blobData(entry.digest), this.layout.trash(entry.digest, this.#now()));
    } catch {
      // Already gone (another replica quarantined or evicted it).
    }
  }

  /**
   * The bytes of a small blob, from memory, or read once from disk and remembered; null
   * for a blob too large to keep, or one whose file is gone or the wrong size.
   */
  async smallBytes(entry: BlobEntry): Promise<Buffer | null> {
    if (entry.size > this.#small.maxEntry) return null;
    const cached = this.#small.get(entry.digest.value);
    if (cached !== undefined) return cached;
    const blob = await this.open(entry);
    if (blob === null) return null;
    try {
      const buf = Buffer.allocUnsafe(entry.size);
      const { bytesRead } = await blob.fh.read(buf, 0, entry.size, 0);
      if (bytesRead !== entry.size) {
        await this.quarantine(entry);
        return null;
      }
      this.#small.set(entry.digest.value, buf);
      return buf;
    } finally {
      await blob.release();
    }
  }

  /**
   * Opens a blob for reading. A size that disagrees with the index means the file was
   * truncated or replaced under us: the entry is dropped and null returned, so the
   * caller treats it as a miss rather than serve a bad blob.
   */
  async open(entry: BlobEntry): Promise<OpenBlob | null> {
    let fh: FileHandle;
    try {
      fh = await open(this.layout.blobData(entry.digest), 'r');
    } catch {
      this.forget(entry);
      return null;
    }
    const st = await fh.stat().catch(async (err: unknown) => {
      await fh.close();
      throw err;
    });
    if (st.size !== entry.size) {
      await fh.close();
      await this.quarantine(entry);
      return null;
    }
    entry.readers++;
    let released = false;
    return {
      entry,
      fh,
      release: async () => {
        if (released) return;
        released = true;
        entry.readers--;
        await fh.close();
      },
    };
  }

  /**
   * Marks a pull. blobttl counts from the last pull, so the mtime on disk is moved too,
   * but at most once per tenth of the TTL (or minute), to keep writes off the hot path.
   */
  touch(entry: BlobEntry): void {
    const now = this.#now();
    entry.lastPull = now;
    const every = this.#ttlMs === null ? 60_000 : Math.min(60_000, this.#ttlMs / 10);
    if (now - entry.persistedPull >= every) {
      entry.persistedPull = now;
      const t = new Date(now);
      utimes(this.layout.blobData(entry.digest), t, t).catch(() => undefined);
    }
  }

  /** Rebuilds the index from disk: linear in the number of blobs. */
  async scan(): Promise<{ count: number; bytes: number }> {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const algDir = join(this.layout.blobsDir, algorithm);
      for (const prefix of await readdirOrEmpty(algDir)) {
        const hexes = await readdirOrEmpty(join(algDir, prefix));
        await Promise.all(
          hexes.map(async (hex) => {
            let d: Digest;
            try {
              d = parseDigest(`${algorithm}:${hex}`);
            } catch {
              return;
            }
            try {
              const st = await stat(this.layout.blobData(d));
              if (st.isFile() && !this.#entries.has(d.value)) this.#insert(d, st.size, st.mtimeMs);
            } catch {
              // A directory without data (distribution leaves these after deletes): skip.
            }
          }),
        );
      }
    }
    return { count: this.count, bytes: this.bytes };
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
