// What one mirror knows per repository, on disk beside the blob store so that it survives
// restarts and is shared by every process on the root:
//   <dir>/<repo>/_tags/<tag>                → {"digest","mediaType","size","checkedAt"}  the tag's manifest
//   <dir>/<repo>/_manifests/<alg>-<hex>     → {"mediaType","size"}           the upstream has it here
//   <dir>/<repo>/_blobs/<alg>-<hex>         → (empty)                        the upstream has it here
// A record is what lets the mirror serve stored bytes to a client of that repository without
// asking the upstream (private content, offline pulls); a file's mtime is its last pull, for
// `ttl`. Repository path components never start with `_` (the name grammar), so the record
// directories cannot collide with a repository. Each file is written whole (temp + rename).
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { Digest } from '../store/digest.js';

export interface TagRecord {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

/** A tag's record and when the upstream last confirmed it (by any process on the root; 0: never). */
export interface CheckedTag extends TagRecord {
  readonly checkedAt: number;
}

export interface ManifestRecord {
  readonly mediaType: string;
  readonly size: number;
}

export type RecordKind = 'tags' | 'manifests' | 'blobs';

export interface RecordFile {
  kind: RecordKind;
  repo: string;
  /** The tag, or `<alg>-<hex>`. */
  key: string;
  path: string;
  lastPull: number;
}

const CACHED = 50_000;

export class RepoRecords {
  readonly dir: string;
  readonly #tmp: string;
  readonly #now: () => number;
  /** How often a pull moves a record's mtime at most (a tenth of ttl, at most a minute). */
  readonly #touchEveryMs: number;
  readonly #tags = new LRUCache<string, CheckedTag & { touched: number }>({ max: CACHED });
  readonly #manifests = new LRUCache<string, ManifestRecord & { touched: number }>({ max: CACHED });
  readonly #blobs = new LRUCache<string, { touched: number }>({ max: CACHED });

  constructor(dir: string, tmpDir: string, ttlMs: number | null, now: () => number = Date.now) {
    this.dir = dir;
    this.#tmp = tmpDir;
    this.#now = now;
    this.#touchEveryMs = ttlMs === null ? 60_000 : Math.min(60_000, ttlMs / 10);
  }

  /**
   * The tag's record, from memory, or from disk with `reread` (another process of the node
   * may have checked it since).
   */
  async tag(repo: string, tag: string, reread = false): Promise<CheckedTag | null> {
    const path = this.#path('tags', repo, tag);
    const hit = this.#tags.get(path);
    if (hit !== undefined && !reread) return hit;
    const rec = parseTag(await readText(path));
    if (rec === null) {
      this.#tags.delete(path);
      return null;
    }
    const entry = { ...rec, touched: hit?.touched ?? this.#now() };
    this.#tags.set(path, entry);
    return entry;
  }

  /** Records the tag's manifest as checked upstream now (also when unchanged: the check is shared). */
  async setTag(repo: string, tag: string, rec: TagRecord): Promise<void> {
    const path = this.#path('tags', repo, tag);
    const now = this.#now();
    const checked: CheckedTag = { digest: rec.digest, mediaType: rec.mediaType, size: rec.size, checkedAt: now };
    this.#tags.set(path, { ...checked, touched: now });
    await this.#write(path, JSON.stringify(checked));
  }

  async dropTag(repo: string, tag: string): Promise<void> {
    const path = this.#path('tags', repo, tag);
    this.#tags.delete(path);
    await rm(path, { force: true });
  }

  async manifest(repo: string, digest: Digest): Promise<ManifestRecord | null> {
    const path = this.#path('manifests', repo, fileKey(digest));
    const hit = this.#manifests.get(path);
    if (hit !== undefined) return hit;
    const rec = parseManifest(await readText(path));
    if (rec !== null) this.#manifests.set(path, { ...rec, touched: this.#now() });
    return rec;
  }

  async setManifest(repo: string, digest: Digest, rec: ManifestRecord): Promise<void> {
    const path = this.#path('manifests', repo, fileKey(digest));
    if ((await this.manifest(repo, digest)) !== null) return;
    this.#manifests.set(path, { ...rec, touched: this.#now() });
    await this.#write(path, JSON.stringify(rec));
  }

  async hasBlob(repo: string, digest: Digest): Promise<boolean> {
    const path = this.#path('blobs', repo, fileKey(digest));
    if (this.#blobs.has(path)) return true;
    const found = await stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (found) this.#blobs.set(path, { touched: this.#now() });
    return found;
  }

  async setBlob(repo: string, digest: Digest): Promise<void> {
    if (await this.hasBlob(repo, digest)) return;
    const path = this.#path('blobs', repo, fileKey(digest));
    this.#blobs.set(path, { touched: this.#now() });
    await this.#write(path, '');
  }

  /** A pull of a record: its mtime moves (at most once per touch period), so `ttl` counts from here. */
  touch(kind: RecordKind, repo: string, key: string): void {
    const path = this.#path(kind, repo, key);
    const entry =
      kind === 'tags' ? this.#tags.get(path) : kind === 'manifests' ? this.#manifests.get(path) : this.#blobs.get(path);
    const now = this.#now();
    if (entry === undefined || now - entry.touched < this.#touchEveryMs) return;
    entry.touched = now;
    void this.#touchFile(path, now);
  }

  /** Forgets a record a sweep removed. */
  forget(file: RecordFile): void {
    (file.kind === 'tags' ? this.#tags : file.kind === 'manifests' ? this.#manifests : this.#blobs).delete(file.path);
  }

  /** Every record file, depth first; for retention sweeps. */
  async *walk(): AsyncGenerator<RecordFile> {
    yield* this.#walk(this.dir, '');
  }

  async *#walk(dir: string, repo: string): AsyncGenerator<RecordFile> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name === '_tags' || e.name === '_manifests' || e.name === '_blobs') {
        if (repo === '') continue;
        const kind = e.name.slice(1) as RecordKind;
        const sub = join(dir, e.name);
        for (const name of await readdir(sub).catch(() => [])) {
          const path = join(sub, name);
          const st = await stat(path).catch(() => null);
          if (st?.isFile() === true) yield { kind, repo, key: name, path, lastPull: st.mtimeMs };
        }
      } else if (!e.name.startsWith('_') && !e.name.startsWith('.')) {
        yield* this.#walk(join(dir, e.name), repo === '' ? e.name : `${repo}/${e.name}`);
      }
    }
  }

  #path(kind: RecordKind, repo: string, key: string): string {
    return join(this.dir, repo, `_${kind}`, key);
  }

  async #write(path: string, text: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await mkdir(this.#tmp, { recursive: true });
    const tmp = join(this.#tmp, `record-${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, text);
    await rename(tmp, path);
  }

  async #touchFile(path: string, now: number): Promise<void> {
    const t = new Date(now);
    await utimes(path, t, t).catch(() => undefined);
  }
}

/** `sha256-<hex>`: one file name per digest. */
export function fileKey(digest: Digest): string {
  return `${digest.algorithm}-${digest.hex}`;
}

async function readText(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null);
}

function parseTag(text: string | null): CheckedTag | null {
  const v = parseObject(text);
  if (v === null || typeof v['digest'] !== 'string' || typeof v['mediaType'] !== 'string') return null;
  if (typeof v['size'] !== 'number') return null;
  const checkedAt = typeof v['checkedAt'] === 'number' ? v['checkedAt'] : 0;
  return { digest: v['digest'], mediaType: v['mediaType'], size: v['size'], checkedAt };
}

function parseManifest(text: string | null): ManifestRecord | null {
  const v = parseObject(text);
  if (v === null || typeof v['mediaType'] !== 'string' || typeof v['size'] !== 'number') return null;
  return { mediaType: v['mediaType'], size: v['size'] };
}

function parseObject(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
