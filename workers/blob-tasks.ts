// Piscina tasks. Each takes a small descriptor and returns a typed result (see types.ts).
// These run on worker threads, so blocking hashing and writes never touch the main loop.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HashFileResult, HashFileTask, SpoolMessage, SpoolProgress, SpoolResult, SpoolTask } from './types.js';

function errCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : 'EIO';
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Hashes the first `length` bytes of an existing file into `hash` (a take-over
 * continues a dead writer's spool, so its bytes must enter the digest too).
 */
async function hashPrefix(path: string, length: number, hash: Hash): Promise<void> {
  if (length === 0) return;
  const stream = createReadStream(path, { start: 0, end: length - 1, highWaterMark: 1 << 20 });
  for await (const chunk of stream) hash.update(chunk as Buffer);
}

export async function spool(task: SpoolTask): Promise<SpoolResult> {
  const { port } = task;
  const hash = createHash(task.algorithm);
  let fh: FileHandle | null = null;
  let offset = task.startOffset;
  /** Set by the first failed write (ENOSPC…): from then on bytes are only hashed. */
  let writeError: { code: string; message: string } | null = null;
  try {
    if (task.spoolPath !== null) {
      await hashPrefix(task.spoolPath, task.startOffset, hash);
      fh = await open(task.spoolPath, 'r+');
    } else {
      writeError = { code: 'ENOSPC', message: 'no spool' };
    }
    const handle = fh;
    // Messages arrive in order; each is processed fully before the next, so the
    // file and the hash see the bytes in the same order the upstream sent them.
    const result = await new Promise<SpoolResult>((resolve) => {
      let chain: Promise<void> = Promise.resolve();
      port.on('message', (msg: SpoolMessage) => {
        chain = chain.then(async () => {
          if (msg.type === 'chunk') {
            const buf = Buffer.from(task.ring, msg.at, msg.length);
            if (writeError === null && handle !== null) {
              try {
                let done = 0;
                while (done < buf.length) {
                  const { bytesWritten } = await handle.write(buf, done, buf.length - done, offset + done);
                  done += bytesWritten;
                }
              } catch (err) {
                writeError = { code: errCode(err), message: errMessage(err) };
                const failed: SpoolProgress = { type: 'write-failed', offset, ...writeError };
                port.postMessage(failed);
              }
            }
            hash.update(buf);
            offset += buf.length;
            const progress: SpoolProgress = { type: writeError === null ? 'written' : 'hashed', offset };
            port.postMessage(progress);
          } else if (msg.type === 'abort') {
            resolve({ ok: false, reason: 'aborted', size: offset });
          } else if (writeError !== null) {
            const sizeOk = msg.expectedSize === null || msg.expectedSize === offset;
            resolve({
              ok: false,
              reason: 'not-stored',
              size: offset,
              digestMatches: sizeOk && hash.digest('hex') === task.expectedHex,
              code: writeError.code,
            });
          } else {
            resolve(
              await finish(
                handle!,
                { ...task, spoolPath: task.spoolPath! },
                hash.digest('hex'),
                offset,
                msg.expectedSize,
              ),
            );
          }
        });
      });
    });
    if (!result.ok && task.spoolPath !== null) await rm(task.spoolPath, { force: true });
    return result;
  } catch (err) {
    if (task.spoolPath !== null) await rm(task.spoolPath, { force: true }).catch(() => undefined);
    return { ok: false, reason: 'io', code: errCode(err), message: errMessage(err) };
  } finally {
    port.close();
    await fh?.close().catch(() => undefined);
  }
}

async function finish(
  fh: FileHandle,
  task: SpoolTask & { spoolPath: string },
  actualHex: string,
  size: number,
  expectedSize: number | null,
): Promise<SpoolResult> {
  if (expectedSize !== null && size !== expectedSize) return { ok: false, reason: 'size-mismatch', size, expectedSize };
  if (actualHex !== task.expectedHex) return { ok: false, reason: 'digest-mismatch', size, actualHex };
  try {
    // fsync before rename: after a crash the published name never points at bytes
    // that were not on disk (the rename itself is atomic on one filesystem).
    await fh.sync();
    await mkdir(dirname(task.finalPath), { recursive: true });
    await rename(task.spoolPath, task.finalPath);
    await syncDir(dirname(task.finalPath));
    return { ok: true, size, published: task.finalPath };
  } catch (err) {
    return { ok: false, reason: 'io', code: errCode(err), message: errMessage(err) };
  }
}

/** Makes a rename durable: the directory entry itself must reach the disk (POSIX rename(2), fsync(2)). */
async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export async function hashFile(task: HashFileTask): Promise<HashFileResult> {
  try {
    const hash = createHash(task.algorithm);
    let size = 0;
    const opts =
      task.length === null ? { highWaterMark: 1 << 20 } : { highWaterMark: 1 << 20, start: 0, end: task.length - 1 };
    if (task.length === 0) return { ok: true, hex: hash.digest('hex'), size: 0 };
    for await (const chunk of createReadStream(task.path, opts)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return { ok: true, hex: hash.digest('hex'), size };
  } catch (err) {
    return { ok: false, code: errCode(err), message: errMessage(err) };
  }
}
