// Spool files: where a fill's bytes land before they are verified and renamed into place.
// One spool per digest, created exclusively, with a `.owner` file naming the writing
// process; replicas sharing the root use it to tell a live fill from a dead one.
import { hostname } from 'node:os';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from './digest.js';
import type { Layout } from './layout.js';

export interface SpoolOwner {
  host: string;
  pid: number;
  startedAt: number;
  /** The blob's size, once the writer has its upstream headers (followers need it). */
  size?: number;
}

/** A spool that has not grown for this long, whose writer we cannot see, is dead. */
export const SPOOL_STALE_MS = 60_000;

export const THIS_PROCESS: SpoolOwner = { host: hostname(), pid: process.pid, startedAt: Date.now() };

export type SpoolClaim =
  { kind: 'created'; path: string; reader: FileHandle } | { kind: 'exists'; path: string; owner: SpoolOwner | null };

function ownerPath(spoolPath: string): string {
  return `${spoolPath}.owner`;
}

/** Creates the digest's spool exclusively, or reports that one exists (another fill owns it). */
export async function claimSpool(layout: Layout, d: Digest): Promise<SpoolClaim> {
  const path = layout.spool(d);
  await mkdir(layout.spoolDir, { recursive: true });
  let writer: FileHandle;
  try {
    writer = await open(path, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { kind: 'exists', path, owner: await readOwner(path) };
  }
  await writer.close();
  await writeFile(ownerPath(path), JSON.stringify(THIS_PROCESS));
  // The main thread keeps its own read handle: it stays valid after the worker renames
  // the spool into place, so readers never race the rename.
  const reader = await open(path, 'r');
  return { kind: 'created', path, reader };
}

export async function readOwner(spoolPath: string): Promise<SpoolOwner | null> {
  try {
    const parsed = JSON.parse(await readFile(ownerPath(spoolPath), 'utf8')) as Partial<SpoolOwner>;
    if (typeof parsed.host === 'string' && typeof parsed.pid === 'number' && typeof parsed.startedAt === 'number') {
      const owner: SpoolOwner = { host: parsed.host, pid: parsed.pid, startedAt: parsed.startedAt };
      if (typeof parsed.size === 'number') owner.size = parsed.size;
      return owner;
    }
  } catch {
    // Missing or half-written owner file: treated as unknown owner.
  }
  return null;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A spool is dead when its owner is a process on this host that no longer runs (or is
 * this very process restarted), or when it has not grown for `staleMs` (an owner on
 * another host, or no owner at all).
 */
export async function spoolIsDead(spoolPath: string, staleMs: number, now = Date.now()): Promise<boolean> {
  const owner = await readOwner(spoolPath);
  if (owner !== null && owner.host === THIS_PROCESS.host) {
    if (owner.pid === THIS_PROCESS.pid) return owner.startedAt !== THIS_PROCESS.startedAt;
    // A live writer on this host is never taken over, however slow its upstream is.
    return !processAlive(owner.pid);
  }
  try {
    const st = await stat(spoolPath);
    return now - st.mtimeMs > staleMs;
  } catch {
    return true;
  }
}

/** The writer records the blob size for replicas following its spool. */
export async function recordSpoolOwner(spoolPath: string, size: number): Promise<void> {
  const tmp = `${ownerPath(spoolPath)}.${process.pid}`;
  await writeFile(tmp, JSON.stringify({ ...THIS_PROCESS, size }));
  await rename(tmp, ownerPath(spoolPath));
}

/**
 * Claims a dead writer's spool for this process, exclusively among replicas: the winner
 * creates `<spool>.takeover` first. A lock older than `staleMs` is a dead taker's.
 */
export async function claimTakeover(spoolPath: string, size: number, staleMs: number): Promise<boolean> {
  const lock = `${spoolPath}.takeover`;
  try {
    const st = await stat(lock);
    if (Date.now() - st.mtimeMs < staleMs) return false;
    await rm(lock, { force: true });
  } catch {
    // No lock: free to try.
  }
  try {
    await (await open(lock, 'wx')).close();
  } catch {
    return false;
  }
  try {
    await recordSpoolOwner(spoolPath, size);
  } finally {
    await rm(lock, { force: true });
  }
  return true;
}

export async function removeSpool(spoolPath: string): Promise<void> {
  await rm(spoolPath, { force: true });
  await removeOwner(spoolPath);
}

/** After the worker renamed (or deleted) the data file, only the owner file is left. */
export async function removeOwner(spoolPath: string): Promise<void> {
  await rm(ownerPath(spoolPath), { force: true });
}

/** Start-up clean-up: removes the spools of dead writers; returns how many went. */
export async function removeDeadSpools(layout: Layout, staleMs: number): Promise<number> {
  let names: string[];
  try {
    names = await readdir(layout.spoolDir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    // Leftovers of an owner-file update (`.owner.<pid>`) or a take-over lock: removed when
    // their process is gone, or when old.
    const tmpPid = /\.owner\.(\d+)$/.exec(name)?.[1];
    if (tmpPid !== undefined || name.endsWith('.takeover')) {
      const st = await stat(join(layout.spoolDir, name)).catch(() => null);
      const orphan = tmpPid !== undefined && Number(tmpPid) !== process.pid && !processAlive(Number(tmpPid));
      if (st !== null && (orphan || Date.now() - st.mtimeMs > staleMs))
        await rm(join(layout.spoolDir, name), { force: true });
      continue;
    }
    if (name.endsWith('.owner')) {
      const data = join(layout.spoolDir, name.slice(0, -'.owner'.length));
      if (!names.includes(name.slice(0, -'.owner'.length))) {
        await rm(join(layout.spoolDir, name), { force: true });
      } else if (await spoolIsDead(data, staleMs)) {
        await removeSpool(data);
        removed++;
      }
    } else if (!names.includes(`${name}.owner`) && (await spoolIsDead(join(layout.spoolDir, name), staleMs))) {
      // A data file without an owner: its writer died between creating it and the owner file.
      await removeSpool(join(layout.spoolDir, name));
      removed++;
    }
  }
  return removed;
}
