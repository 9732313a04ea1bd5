// Following another replica's fill of a blob (processes of one node, or hosts sharing the
// root on NFS). Its data file is read through our own handle as it grows; its record says
// when the digest verified (our clients' last byte) and the blob is published when the
// final path holds the very inode we read. A writer whose record stops beating is taken
// over: we continue from the bytes it left, in a data file of our own.
import { watch, type FSWatcher } from 'node:fs';
import { open, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Digest } from '../store/digest.js';
import { followedMarker, type OwnedSpool, type SpoolDir, type SpoolOwner } from '../store/spool.js';
import { FrontierReads } from './frontier-reads.js';
import type { Signal } from './signal.js';

export type FollowOutcome =
  /** The writer published the blob. */
  | { kind: 'published' }
  /** The writer gave up (its file is gone and nothing was published). */
  | { kind: 'failed' }
  /** Every client of this fill left while the writer was still at it. */
  | { kind: 'abandoned' }
  /** The writer died and we own its spool now, continuing at `offset`. */
  | { kind: 'took-over'; spool: OwnedSpool; offset: number };

/** Polling covers what inotify cannot see (a writer on another NFS host). */
const POLL_MS = 50;

export class ReplicaFollower {
  readonly #spools: SpoolDir;
  readonly #digest: Digest;
  readonly #finalPath: string;
  readonly #progress: Signal;
  /** The writer followed (null until its record could be read). */
  #owner: SpoolOwner | null;
  #file: FileHandle | null = null;
  #ino = -1;
  #size = 0;
  #arrived = 0;
  #verified = false;
  #wake: (() => void) | null = null;
  /**
   * A change seen while we were not asleep (reading the record, stat-ing the file): the next
   * sleep returns at once, or that change would wait for the next poll.
   */
  #woken = false;
  #watcher: FSWatcher | null = null;
  /** Our clients' reads of the file, one per block near its end (frontier-reads.ts). */
  readonly #reads = new FrontierReads(async (buf, pos, length) =>
    this.#file === null ? 0 : (await this.#file.read(buf, 0, length, pos)).bytesRead,
  );
  readonly #directWrites: boolean;
  readonly #pollMs: number;

  /**
   * `directWrites`: the node's writers bypass the page cache (`downstream.directwrites`), so a
   * follower asks the writer of its file to stop doing so (markFollowed); otherwise nobody
   * reads the marker, and it is not made. `pollMs`: how often to look when no inotify event
   * comes.
   */
  constructor(
    spools: SpoolDir,
    digest: Digest,
    finalPath: string,
    owner: SpoolOwner | null,
    progress: Signal,
    directWrites: boolean,
    pollMs = POLL_MS,
  ) {
    this.#spools = spools;
    this.#digest = digest;
    this.#finalPath = finalPath;
    this.#owner = owner;
    this.#progress = progress;
    this.#directWrites = directWrites;
    this.#pollMs = pollMs;
  }

  /** The file being followed: kept by a take-over as the source of the bytes before its offset. */
  get file(): FileHandle | null {
    return this.#file;
  }

  arrived(): number {
    return this.#arrived;
  }

  verified(): boolean {
    return this.#verified;
  }

  read(buf: Buffer, pos: number, length: number): Promise<number> {
    return this.#reads.read(buf, pos, length, this.#arrived);
  }

  /** Waits for the writer to record the blob size; null when the writer died first. */
  async size(): Promise<number | null> {
    this.#startWatching();
    for (;;) {
      const owner = await this.#spools.readOwner(this.#digest);
      if (owner?.size !== undefined) {
        this.#owner = owner;
        this.#size = owner.size;
        return owner.size;
      }
      if (owner === null && !(await this.#spools.claimExists(this.#digest))) {
        // The writer is done already: published (its size is the file's), or it gave up.
        const published = await stat(this.#finalPath).catch(() => null);
        if (published === null) return null;
        this.#size = published.size;
        return published.size;
      }
      if (await this.#spools.ownerIsDead(this.#digest, owner ?? this.#owner)) return null;
      // The writer is waiting for its upstream's head: open its data file meanwhile, so that
      // following starts reading at once (a file not there yet is opened when following).
      if (owner !== null && this.#file === null) {
        this.#owner = owner;
        await this.#open();
      }
      await this.#sleep();
    }
  }

  /** Follows the writer until it publishes, fails, or dies and is taken over by us. */
  async follow(abandoned: () => boolean): Promise<FollowOutcome> {
    let grewAt = Date.now();
    for (;;) {
      const record = await this.#spools.readOwner(this.#digest);
      const owner = record ?? this.#owner;
      // No writer was ever seen: it finished before we looked.
      if (owner === null) return (await this.#open()) === 'published' ? { kind: 'published' } : { kind: 'failed' };
      if (owner.writer !== this.#owner?.writer || this.#file === null) {
        // First look, or another replica took the spool over: follow its data file.
        const previous = this.#owner;
        this.#owner = owner;
        const opened = await this.#open();
        if (opened === 'published') return { kind: 'published' };
        if (opened === 'absent' || opened === 'behind') {
          // A new owner's data file comes just after its record (a take-over renames the
          // record in, then creates the file), and holds the bytes we have announced only once
          // its writer has copied them from the previous file: until then the file we hold is
          // still the previous writer's, and #owner must keep naming it, or the next look would
          // take that file for the new owner's and find it gone from the spool ('failed').
          this.#owner = previous;
          // The writer creates its data file just after its claim, and removes it once the
          // blob is published: wait for it while the claim stands and its writer lives; give
          // up when either is gone (the fill then goes on by itself).
          if (record === null && !(await this.#spools.claimExists(this.#digest))) return { kind: 'failed' };
          if (record !== null && (await this.#spools.ownerIsDead(this.#digest, record))) return { kind: 'failed' };
          if (abandoned()) return { kind: 'abandoned' };
          await this.#sleep();
          continue;
        }
      }
      const st = await this.#file!.stat();
      if (Math.min(st.size, this.#size) > this.#arrived) {
        this.#arrived = Math.min(st.size, this.#size);
        grewAt = Date.now();
        this.#progress.notify();
      }
      if (owner.verified === true && owner.writer === this.#owner.writer && !this.#verified) {
        this.#verified = true;
        this.#progress.notify();
      }
      if (await this.#isPublished()) return { kind: 'published' };
      if (!(await sameFile(this.#spools.dataPathOf(this.#digest, this.#owner), this.#ino))) {
        // Gone from the spool and not published: the writer discarded it (one more look at
        // the final path covers a publication between the two checks).
        return (await this.#isPublished()) ? { kind: 'published' } : { kind: 'failed' };
      }
      if (Date.now() - grewAt > POLL_MS * 4 && (await this.#spools.ownerIsDead(this.#digest, owner))) {
        const spool = await this.#spools.takeOver(this.#digest, owner, this.#size);
        if (spool !== null) return { kind: 'took-over', spool, offset: this.#arrived };
      }
      if (abandoned()) return { kind: 'abandoned' };
      await this.#sleep();
    }
  }

  /**
   * The writer linked the blob into place: every byte of the file we read is good, and
   * nothing is left to watch for. Our clients go on reading the file.
   */
  markPublished(): void {
    this.#arrived = this.#size;
    this.#verified = true;
    this.#stopWatching();
    this.#progress.notify();
  }

  /**
   * Whether the spool directory is still watched for us. A watch left open would keep this
   * follower, and the blocks its clients read, for the life of the process.
   */
  get watching(): boolean {
    return this.#watcher !== null;
  }

  async close(keepFile: boolean): Promise<void> {
    this.#stopWatching();
    this.#reads.clear();
    if (!keepFile) await this.#file?.close().catch(() => undefined);
  }

  /**
   * Opens the writer's data file, or, when it has gone, the published blob (the writer
   * finished before we looked); 'absent' when neither is there, 'behind' when the data file
   * of a writer taking over does not yet hold the bytes already read from the previous one.
   */
  async #open(): Promise<'following' | 'published' | 'absent' | 'behind'> {
    const places = [
      ...(this.#owner === null ? [] : [[this.#spools.dataPathOf(this.#digest, this.#owner), 'following'] as const]),
      [this.#finalPath, 'published'] as const,
    ];
    for (const [path, found] of places) {
      try {
        const file = await open(path, 'r');
        const st = await file.stat();
        if (found === 'following' && st.size < this.#arrived) {
          await file.close().catch(() => undefined);
          return 'behind';
        }
        await this.#file?.close().catch(() => undefined);
        this.#file = file;
        this.#reads.clear();
        this.#ino = st.ino;
        if (found === 'following' && this.#directWrites) void markFollowed(path, this.#ino);
        return found;
      } catch {
        // Not there: the next place, or 'absent'.
      }
    }
    return 'absent';
  }

  async #isPublished(): Promise<boolean> {
    return this.#ino >= 0 && (await sameFile(this.#finalPath, this.#ino));
  }

  /** inotify on the spool directory wakes us at each write of the data file and each record change. */
  #startWatching(): void {
    if (this.#watcher !== null) return;
    const prefix = basename(this.#spools.claimPath(this.#digest));
    try {
      this.#watcher = watch(this.#spools.dir, { persistent: false }, (_event, name) => {
        if (name === null || name.startsWith(prefix)) this.#wakeUp();
      });
      this.#watcher.on('error', () => undefined);
    } catch {
      // No inotify here (or the directory is gone): polling alone.
    }
  }

  #stopWatching(): void {
    this.#watcher?.close();
    this.#watcher = null;
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    if (wake === null) this.#woken = true;
    else wake();
  }

  #sleep(): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#wakeUp(), this.#pollMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/**
 * Tells the writer of the data file at `path` (inode `ino`) to write through the page cache,
 * where a follower reads its bytes from memory. The writer removes the marker with its file;
 * a marker made after that (the writer finished while we opened the file) is taken back here,
 * or it would be left in the spool directory.
 */
export async function markFollowed(path: string, ino: number): Promise<void> {
  const marker = followedMarker(path);
  await writeFile(marker, '', { flag: 'a' }).catch(() => undefined);
  if (!(await sameFile(path, ino))) await rm(marker, { force: true }).catch(() => undefined);
}

async function sameFile(path: string, ino: number): Promise<boolean> {
  return (await stat(path).catch(() => null))?.ino === ino;
}
