// Hashing files in the worker: a whole stored blob (scrub), or the prefix a take-over copies
// from a dead writer's data file into its own.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { errCode, errMessage } from './errors.js';
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
 * Copies the first `length` bytes of `from` into `to` at the same offsets, hashing what it
 * copies: the copy and the hash are one stream of bytes, whatever else writes to `from`.
 */
export async function copyPrefix(from: string, to: FileHandle, length: number, hash: Hash): Promise<void> {
  if (length === 0) return;
  let at = 0;
  for await (const chunk of createReadStream(from, { start: 0, end: length - 1, highWaterMark: READ_SIZE })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    await writeAll(to, buf, at);
    at += buf.length;
  }
  if (at !== length) throw Object.assign(new Error(`prefix ended at ${at} of ${length} bytes`), { code: 'ESHORT' });
}

export async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}
