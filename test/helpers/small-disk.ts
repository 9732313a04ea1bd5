// A small filesystem for disk-full tests: an 8 MiB tmpfs mounted for the test and unmounted
// after it, or the test skipped where mounting is not allowed.
import { execFile } from 'node:child_process';
import { mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** An 8 MiB tmpfs for the test, unmounted after it; null (test skipped) where mounting is not allowed. */
export async function smallDisk(t: TestContext): Promise<string | null> {
  const mnt = await mkdtemp(join(tmpdir(), 'dtr-cache-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
  } catch (err) {
    await rmdir(mnt);
    t.skip(
      `mounting a tmpfs is not permitted here (${(err as Error).message.split('\n')[0]}); the disk-full test needs a small filesystem`,
    );
    return null;
  }
  // Lazily: a cache process may still hold files open; the mount point is then an empty directory.
  t.after(() =>
    run('umount', ['-l', mnt])
      .then(() => rmdir(mnt))
      .catch(() => undefined),
  );
  return mnt;
}
