// A full disk is an episode, not an error per fill: it is logged when it starts and when a
// publication shows there is room again, and fills stream through memory in between.
import { diskFullCode } from '../errors/inspect.js';
import type { Digest } from '../store/digest.js';
import type { FillDeps } from './deps.js';

/** A spool write failed with `code`: a full disk starts an episode, anything else is logged per fill. */
export function spoolWriteFailed(deps: FillDeps, digest: Digest, code: string): void {
  if (diskFullCode({ code }) === null) {
    deps.log.error({ code, digest: digest.value }, 'spool write failed: streaming this blob through without caching');
    return;
  }
  deps.onDiskFull?.();
  if (deps.disk.full) return;
  deps.disk.full = true;
  deps.log.error(
    { code, digest: digest.value },
    'disk full: blobs stream through to clients without caching until space returns',
  );
}

/** What `attempt` gives, or null when the disk is full (reported as above); other failures are thrown. */
export async function unlessDiskFull<T>(deps: FillDeps, digest: Digest, attempt: () => Promise<T>): Promise<T | null> {
  try {
    return await attempt();
  } catch (err) {
    const code = diskFullCode(err);
    if (code === null) throw err;
    spoolWriteFailed(deps, digest, code);
    return null;
  }
}

/** A blob was published: a disk-full episode, if any, is over. */
export function spaceReturned(deps: FillDeps, digest: Digest): void {
  if (!deps.disk.full) return;
  deps.disk.full = false;
  deps.log.info({ digest: digest.value }, 'disk has room again: caching resumed');
}
