// A spool's owner record (spool.ts): the JSON in its claim file naming the writing process
// and its data file. Created with the claim, then replaced whole (written beside, renamed
// over) whenever the owner learns more: the size, the verdict, a take-over.
import { readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';

export interface SpoolOwner {
  host: string;
  pid: number;
  startedAt: number;
  /** Names this writer's data file. */
  writer: string;
  /** The blob's size, once the writer has its upstream headers (followers need it). */
  size?: number;
  /** Set when the writer's digest check passed: followers release their last byte then. */
  verified?: boolean;
}

/** Writes the owner into the claim this process just created, and closes it. */
export async function fillRecord(record: FileHandle, owner: SpoolOwner): Promise<void> {
  try {
    await record.writeFile(JSON.stringify(owner));
  } finally {
    await record.close();
  }
}

/** Where a new record is written before it replaces the claim's. */
export function recordBeside(claimPath: string, owner: SpoolOwner): string {
  return `${claimPath}.${owner.writer}.tmp`;
}

export async function writeRecordBeside(claimPath: string, owner: SpoolOwner): Promise<void> {
  const tmp = recordBeside(claimPath, owner);
  try {
    await writeFile(tmp, JSON.stringify(owner));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function renameRecord(tmp: string, claimPath: string): Promise<void> {
  try {
    await rename(tmp, claimPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function replaceRecord(claimPath: string, owner: SpoolOwner): Promise<void> {
  await writeRecordBeside(claimPath, owner);
  await renameRecord(recordBeside(claimPath, owner), claimPath);
}

export async function readRecord(claimPath: string): Promise<SpoolOwner | null> {
  try {
    const parsed = JSON.parse(await readFile(claimPath, 'utf8')) as Partial<SpoolOwner>;
    const { host, pid, startedAt, writer, size, verified } = parsed;
    if (typeof host !== 'string' || typeof pid !== 'number' || typeof startedAt !== 'number') return null;
    if (typeof writer !== 'string') return null;
    const owner: SpoolOwner = { host, pid, startedAt, writer };
    if (typeof size === 'number') owner.size = size;
    if (verified === true) owner.verified = true;
    return owner;
  } catch {
    // Missing, or not a record (a spool of an older version): an unknown owner.
    return null;
  }
}
