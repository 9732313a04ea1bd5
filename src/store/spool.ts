// Spools: where a fill's bytes land before they are verified and published. Replicas that
// share the root (processes of one node, or hosts on NFS) find each other's fill of a digest
// through its claim, `<spoolDir>/<alg>-<hex>`: an owner record created exclusively, naming
// the writing process and its own data file `<claim>.<writer>`. The owner refreshes the
// record's mtime on a fixed beat; a record nobody refreshes is a dead writer's, and a
// replica may take the spool over, writing a data file of its own (docs/architecture.md,
// "Replicas").
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Digest } from './digest.js';
import { errnoCode } from '../errors/inspect.js';
import type { Layout } from './layout.js';
import {
  fillRecord,
  readRecord,
  recordBeside,
  renameRecord,
  replaceRecord,
  writeRecordBeside,
  type SpoolOwner,
} from './spool-record.js';

export type { SpoolOwner } from './spool-record.js';

export interface SpoolTiming {
  /** How often an owner refreshes its record. */
  beatMs: number;
  /** A record not refreshed for this long is a dead (or stalled) writer's. */
  staleMs: number;
}

export const DEFAULT_SPOOL_TIMING: SpoolTiming = { beatMs: 2_000, staleMs: 30_000 };

const HOST = hostname();
const HOST_TAG = createHash('sha256').update(HOST).digest('hex').slice(0, 8);
const STARTED_AT = Date.now();
const CLAIM_NAME = /^(sha256|sha512)-[0-9a-f]+$/;
const WRITER_PID = /^[0-9a-f]{8}-(\d+)-[0-9a-f]+$/;

/** True when `owner` is this very process (not a restarted one with the same pid). */
export function isThisProcess(owner: SpoolOwner): boolean {
  return owner.host === HOST && owner.pid === process.pid && owner.startedAt === STARTED_AT;
}

export type SpoolClaim = { kind: 'created'; spool: OwnedSpool } | { kind: 'exists'; owner: SpoolOwner | null };

export class SpoolDir {
  readonly dir: string;
  readonly timing: SpoolTiming;
  readonly #layout: Layout;
  #dirReady = false;

  constructor(layout: Layout, timing: SpoolTiming = DEFAULT_SPOOL_TIMING) {
    this.#layout = layout;
    this.dir = layout.spoolDir;
    this.timing = timing;
  }

  claimPath(d: Digest): string {
    return this.#layout.spool(d);
  }

  /**
   * Claims the digest's spool for this process, or reports the owner of the one that exists.
   * One exclusive create is all a miss waits for: the record's content and the data file
   * follow off its path (a follower reading the claim meanwhile sees an owner not yet known,
   * and waits for it, as it waits for the size).
   */
  async claim(d: Digest): Promise<SpoolClaim> {
    const owner = newOwner();
    let record: FileHandle;
    try {
      record = await this.#createClaim(d);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      return { kind: 'exists', owner: await this.readOwner(d) };
    }
    return { kind: 'created', spool: new OwnedSpool(this.claimPath(d), owner, null, this.timing, record) };
  }

  async #createClaim(d: Digest): Promise<FileHandle> {
    if (!this.#dirReady) {
      await mkdir(this.dir, { recursive: true });
      this.#dirReady = true;
    }
    try {
      return await open(this.claimPath(d), 'wx');
    } catch (err) {
      // The directory went (removed by hand): make it again, once.
      if (errnoCode(err) !== 'ENOENT') throw err;
      await mkdir(this.dir, { recursive: true });
      return open(this.claimPath(d), 'wx');
    }
  }

  async claimExists(d: Digest): Promise<boolean> {
    return (await stat(this.claimPath(d)).catch(() => null)) !== null;
  }

  async readOwner(d: Digest): Promise<SpoolOwner | null> {
    return readRecord(this.claimPath(d));
  }

  dataPathOf(d: Digest, owner: SpoolOwner): string {
    return dataPath(this.claimPath(d), owner.writer);
  }

  /** A writer is dead when its process is gone from this host, or its record has stopped beating. */
  async ownerIsDead(d: Digest, owner: SpoolOwner | null): Promise<boolean> {
    return this.#isDead(this.claimPath(d), owner);
  }

  async #isDead(claimPath: string, owner: SpoolOwner | null): Promise<boolean> {
    if (owner !== null && owner.host === HOST) {
      if (owner.pid === process.pid) return owner.startedAt !== STARTED_AT;
      if (!(await processAlive(owner.pid))) return true;
    }
    const st = await stat(claimPath).catch(() => null);
    return st === null || Date.now() - st.mtimeMs > this.timing.staleMs;
  }

  /**
   * Takes a dead writer's spool over: exclusive among replicas (the winner creates
   * `<claim>.takeover` first), and only if the record still names that writer. The new
   * owner writes a data file of its own; the dead writer's stays until the new one is done.
   */
  async takeOver(d: Digest, dead: SpoolOwner, size: number): Promise<OwnedSpool | null> {
    const claim = this.claimPath(d);
    const lock = `${claim}.takeover`;
    const held = await stat(lock).catch(() => null);
    if (held !== null && Date.now() - held.mtimeMs < this.timing.staleMs) return null;
    if (held !== null) await rm(lock, { force: true });
    try {
      await (await open(lock, 'wx')).close();
    } catch {
      return null;
    }
    try {
      if ((await this.readOwner(d))?.writer !== dead.writer) return null;
      const owner = { ...newOwner(), size };
      await replaceRecord(claim, owner);
      return new OwnedSpool(claim, owner, dataPath(claim, dead.writer), this.timing, null);
    } finally {
      await rm(lock, { force: true });
    }
  }

  /** Removes the claim of a writer that died before it knew the size, so the digest can be claimed again. */
  async removeDead(d: Digest, dead: SpoolOwner | null): Promise<void> {
    const claim = this.claimPath(d);
    if ((await readRecord(claim))?.writer !== dead?.writer) return;
    await rm(claim, { force: true });
    if (dead !== null) await removeDataFile(dataPath(claim, dead.writer));
  }

  /** Start-up clean-up: the claims and data files of dead writers go; returns the claims removed. */
  async sweep(): Promise<number> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const live = new Set<string>();
    const dead = new Set<string>();
    for (const name of names.filter((n) => CLAIM_NAME.test(n))) {
      const path = join(this.dir, name);
      const owner = await readRecord(path);
      if (await this.#isDead(path, owner)) {
        await rm(path, { force: true });
        dead.add(name);
      } else if (owner !== null) live.add(`${name}.${owner.writer}`);
    }
    for (const name of names.filter((n) => !CLAIM_NAME.test(n) && !live.has(n))) {
      const path = join(this.dir, name);
      if (dead.has(name.slice(0, name.indexOf('.')))) {
        await rm(path, { force: true });
        continue;
      }
      // Files of no known claim: a writer between creating its data file and linking its
      // record, or one that died there. Removed when their process is gone, or when old.
      const st = await stat(path).catch(() => null);
      if (st === null) continue;
      const pid = WRITER_PID.exec(name.slice(name.indexOf('.') + 1).replace(/\.(tmp|takeover)$/, ''))?.[1];
      const ours = name.includes(`.${HOST_TAG}-`);
      const gone = ours && pid !== undefined && Number(pid) !== process.pid && !(await processAlive(Number(pid)));
      if (gone || Date.now() - st.mtimeMs > this.timing.staleMs) await rm(path, { force: true });
    }
    return dead.size;
  }
}

/** A spool this process owns: its record (refreshed on the beat) and its data file. */
export class OwnedSpool {
  readonly claimPath: string;
  readonly dataPath: string;
  /** After a take-over: the dead writer's data file, removed with this spool. */
  readonly prefixPath: string | null;
  #owner: SpoolOwner;
  readonly #beat: NodeJS.Timeout;
  /** The record's writes, one after another (the first fills the freshly created claim). */
  #writes: Promise<void>;
  readonly #dataFile: Promise<void>;
  /** A read handle on the data file, opened as soon as the file exists; null once taken. */
  #reader: Promise<FileHandle> | null;
  /** The inode of the claim this process created (null after a take-over, whose claim was renamed in). */
  readonly #claimIno: Promise<number | null>;
  #released = false;

  /** `record`: the claim just created, still empty; null when the record is already written. */
  constructor(
    claimPath: string,
    owner: SpoolOwner,
    prefixPath: string | null,
    timing: SpoolTiming,
    record: FileHandle | null,
  ) {
    this.claimPath = claimPath;
    this.#owner = owner;
    this.dataPath = dataPath(claimPath, owner.writer);
    this.prefixPath = prefixPath;
    this.#beat = setInterval(() => this.#refresh(), timing.beatMs).unref();
    // A record the disk refuses (ENOSPC) stays empty: followers then wait for this writer to
    // finish, and the start-up sweep judges it by its age.
    this.#writes = record === null ? Promise.resolve() : fillRecord(record, owner).catch(() => undefined);
    this.#claimIno =
      record === null
        ? Promise.resolve(null)
        : record.stat().then(
            (st) => st.ino,
            () => null,
          );
    this.#dataFile = open(this.dataPath, 'wx').then((fh) => fh.close());
    // Awaited by whoever writes the file; a failure here is theirs to handle.
    this.#dataFile.catch(() => undefined);
    this.#reader = this.#dataFile.then(() => open(this.dataPath, 'r'));
    this.#reader.catch(() => undefined);
  }

  /**
   * A read handle on the data file for the fill's readers, opened while the upstream request
   * is under way: a large miss's first bytes do not wait for it (bench/NOTES.md, "The read
   * handle, opened during the upstream request"). The caller owns it and closes it.
   */
  takeReader(): Promise<FileHandle> {
    const reader = this.#reader ?? this.#dataFile.then(() => open(this.dataPath, 'r'));
    this.#reader = null;
    return reader;
  }

  /** Resolves once this writer's data file exists; rejects with the error that prevented it (ENOSPC…). */
  dataFile(): Promise<void> {
    return this.#dataFile;
  }

  /** Records the size (followers wait for it). */
  setSize(size: number): Promise<void> {
    return this.#update((o) => ({ ...o, size }));
  }

  /** Records that the digest verified (followers release their last byte). */
  setVerified(): Promise<void> {
    return this.#update((o) => ({ ...o, verified: true }));
  }

  /** Gives the spool up: the beat stops, the record and the data files go (a published blob keeps its own link). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#beat);
    // A read handle nobody took: a small blob's fill, or one that failed before its body.
    const reader = this.#reader;
    this.#reader = null;
    await reader?.then(
      (fh) => fh.close(),
      () => undefined,
    );
    await this.#writes.catch(() => undefined);
    // Ours when the record names us, or when it is the very claim we created and the disk
    // refused its record (it stays empty; nobody else writes a claim that exists).
    const record = await readRecord(this.claimPath);
    const ours =
      record?.writer === this.#owner.writer ||
      (record === null && (await stat(this.claimPath).catch(() => null))?.ino === (await this.#claimIno));
    if (ours) await rm(this.claimPath, { force: true });
    await removeDataFile(this.dataPath);
    if (this.prefixPath !== null) await removeDataFile(this.prefixPath);
  }

  #update(change: (owner: SpoolOwner) => SpoolOwner): Promise<void> {
    const next = this.#writes.then(async () => {
      const owner = change(this.#owner);
      // A writer that stalled and was taken over must not write its record back over the new
      // owner's. The check and the new record's write go side by side: followers wait for the
      // size, and a busy process takes several event-loop turns for each (bench/NOTES.md,
      // "Followers' first bytes under a stampede").
      const [current] = await Promise.all([readRecord(this.claimPath), writeRecordBeside(this.claimPath, owner)]);
      const tmp = recordBeside(this.claimPath, owner);
      if (current?.writer !== this.#owner.writer) {
        await rm(tmp, { force: true });
        return;
      }
      this.#owner = owner;
      await renameRecord(tmp, this.claimPath);
    });
    this.#writes = next.catch(() => undefined);
    return next;
  }

  #refresh(): void {
    const now = new Date();
    utimes(this.claimPath, now, now).catch(() => undefined);
  }
}

function newOwner(): SpoolOwner {
  return {
    host: HOST,
    pid: process.pid,
    startedAt: STARTED_AT,
    writer: `${HOST_TAG}-${process.pid}-${randomBytes(4).toString('hex')}`,
  };
}

/**
 * The file a reader in another process creates beside a data file it follows: the writer then
 * writes through the page cache, where that reader finds the bytes in memory.
 */
export function followedMarker(dataPath: string): string {
  return `${dataPath}.followed`;
}

/** A writer's data file and the marker its followers left beside it. */
async function removeDataFile(path: string): Promise<void> {
  await rm(path, { force: true });
  await rm(followedMarker(path), { force: true });
}

function dataPath(claimPath: string, writer: string): string {
  return `${claimPath}.${writer}`;
}

/**
 * Whether a process of this host runs. A zombie (exited, not yet reaped: a serving process
 * whose supervisor was killed, where nothing reaps orphans) answers kill(0) but writes
 * nothing: /proc says so, where there is one.
 */
async function processAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return true;
  // "<pid> (<comm>) <state> …": the command name may hold spaces and parentheses.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}
