// Following another replica's fill (issue #5, replicas on one rootdirectory). Its spool is
// read through our own handle as it grows; the blob counts as published when the final
// path holds the very inode we are reading (the writer renamed it after verifying). A
// writer that died (its pid is gone on this host, or the spool stopped growing) is
// reported as stale, for the caller to take over from the bytes already there.
import { stat, type FileHandle } from 'node:fs/promises';
import { readOwner, spoolIsDead } from '../store/spool.js';

export type FollowOutcome = { kind: 'published' } | { kind: 'failed' } | { kind: 'stale'; offset: number };

export interface FollowOptions {
  spoolPath: string;
  finalPath: string;
  /** No growth for this long (and no live writer we can see) means the writer is gone. */
  staleMs: number;
  pollMs?: number;
  /** Called with the bytes on disk whenever they grow. */
  onGrow: (bytes: number) => void;
  /** True once nobody needs the fill any more. */
  abandoned: () => boolean;
}

const sameFile = async (path: string, ino: number): Promise<boolean> =>
  (await stat(path).catch(() => null))?.ino === ino;

/** Waits for the writer to record the blob size; null when it died first. */
export async function followerSize(opts: FollowOptions): Promise<number | null> {
  const deadline = Date.now() + opts.staleMs;
  for (;;) {
    const owner = await readOwner(opts.spoolPath);
    if (owner?.size !== undefined) return owner.size;
    if (Date.now() > deadline || (await spoolIsDead(opts.spoolPath, opts.staleMs))) return null;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 50));
  }
}

export async function follow(reader: FileHandle, size: number, opts: FollowOptions): Promise<FollowOutcome> {
  const poll = opts.pollMs ?? 50;
  let bytes = -1;
  let grewAt = Date.now();
  for (;;) {
    const st = await reader.stat();
    if (st.size > bytes) {
      bytes = st.size;
      grewAt = Date.now();
      opts.onGrow(Math.min(bytes, size));
    }
    if (await sameFile(opts.finalPath, st.ino)) return { kind: 'published' };
    if (!(await sameFile(opts.spoolPath, st.ino))) {
      // Gone from the spool and not at the final path: the writer discarded it. One more
      // look at the final path covers a rename between the two checks.
      return (await sameFile(opts.finalPath, st.ino)) ? { kind: 'published' } : { kind: 'failed' };
    }
    const quiet = Date.now() - grewAt;
    if (quiet > poll * 4 && (await spoolIsDead(opts.spoolPath, opts.staleMs)))
      return { kind: 'stale', offset: Math.min(bytes, size) };
    if (opts.abandoned()) return { kind: 'failed' };
    await new Promise((r) => setTimeout(r, poll));
  }
}
