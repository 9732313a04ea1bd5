// Hashing files in the worker: a whole stored blob (scrub), or the prefix a take-over copies
// from a dead writer's data file into its own.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, read } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { errCode, errMessage } from './errors.js';
import { writeAll } from './spool-file.js';
import type { HashFileResult, HashFileTask } from './types.js';

const READ_SIZE = 1 << 20;

export async function hashFile(task: HashFileTask): Promise<HashFileResult> {
  const hash = createHash(task.algorithm);
  if (task.length === 0) return { ok: true, hex: hash.digest('hex'), size: 0 };
  try {
    let size = 0;
    const range = task.length === null ? {} : { start: 0, end: task.length - 1 };
    for await (const chunk of createReadStream(task.path, { highWaterMark: READ_SIZE, ...range })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return { ok: true, hex: hash.digest('hex'), size };
  } catch (err) {
    return { ok: false, code: errCode(err), message: errMessage(err) };
  }
}

/**
 * Hashes the first `length` bytes of the file open as `from`, and copies them into `to` at
 * the same offsets when there is one: the copy and the hash are one stream of bytes,
 * whatever else writes to `from`. `from` stays open (the main thread owns it). A failed
 * write (disk full) stops the copy, not the hash: it is returned with the offset it failed at.
 */
export async function copyPrefix(
  from: number,
  to: FileHandle | null,
  length: number,
  hash: Hash,
): Promise<{ offset: number; err: unknown } | null> {
  const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, Math.max(1, length)));
  let failed: { offset: number; err: unknown } | null = null;
  for (let at = 0; at < length;) {
    const n = await new Promise<number>((resolve, reject) =>
      read(from, buf, 0, Math.min(buf.length, length - at), at, (err, bytes) => (err ? reject(err) : resolve(bytes))),
    );
    if (n === 0) throw Object.assign(new Error(`prefix ended at ${at} of ${length} bytes`), { code: 'ESHORT' });
    const chunk = buf.subarray(0, n);
    hash.update(chunk);
    if (to !== null && failed === null)
      await writeAll(to, chunk, at).catch((err: unknown) => (failed = { offset: at, err }));
    at += n;
  }
  return failed;
}
