// Publishing a verified spool: durable first, then visible. fsync before the link, so after
// a crash the published name never points at bytes that were not on disk; the directory is
// synced after, so the name itself survives (POSIX rename(2)/link(2), fsync(2)).
import { access, link, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Publishes `dataPath` at `finalPath`. A hard link rather than a rename: it fails when the
 * name exists, so of two writers of one blob (a stalled one and the replica that took its
 * spool over) exactly one publishes. Returns false when the blob was already there.
 */
export async function publish(fh: FileHandle, dataPath: string, finalPath: string): Promise<boolean> {
  await fh.sync();
  await mkdir(dirname(finalPath), { recursive: true });
  let published = true;
  try {
    await link(dataPath, finalPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // EEXIST: published by another writer. ENOENT: a replica took our stalled spool over,
    // finished first and removed our file; what it published is the blob.
    if (code === 'EEXIST' || (code === 'ENOENT' && (await exists(finalPath)))) published = false;
    // Filesystems without hard links: a rename, which replaces a twin with the same bytes.
    else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') await rename(dataPath, finalPath);
    else throw err;
  }
  await rm(dataPath, { force: true });
  if (published) await syncDir(dirname(finalPath));
  return published;
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
