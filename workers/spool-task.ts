// The spool task: bytes a fill receives, named by ring region, are hashed and appended to
// this writer's own data file. At the end the verdict (size and digest) goes back at once,
// since it is what releases every client's last byte; the fsync and the publication follow,
// off the clients' path.
import { createHash, type Hash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { errCode, errMessage } from './errors.js';
import { copyPrefix, writeAll } from './hash-file.js';
import { publish } from './publish.js';
import type { SpoolMessage, SpoolProgress, SpoolResult, SpoolTask } from './types.js';

export async function spool(task: SpoolTask): Promise<SpoolResult> {
  const writer = new SpoolWriter(task);
  try {
    await writer.open();
    return await writer.run();
  } catch (err) {
    return { ok: false, reason: 'io', code: errCode(err), message: errMessage(err) };
  } finally {
    task.port.close();
    await writer.close();
  }
}

class SpoolWriter {
  readonly #task: SpoolTask;
  readonly #hash: Hash;
  #fh: FileHandle | null = null;
  /** Bytes hashed so far (absolute offset). */
  #offset: number;
  /** Bytes in the file: the same as #offset until a write fails. */
  #written: number;
  /** Set by the first failed write (ENOSPC…): from then on bytes are only hashed. */
  #writeError: { code: string; message: string } | null = null;
  #published = false;

  constructor(task: SpoolTask) {
    this.#task = task;
    this.#hash = createHash(task.algorithm);
    this.#offset = this.#written = task.startOffset;
  }

  async open(): Promise<void> {
    const { dataPath, prefixFd, startOffset } = this.#task;
    if (dataPath === null) this.#writeError = { code: 'ENOSPC', message: 'no spool file' };
    else this.#fh = await open(dataPath, 'r+');
    if (prefixFd === null) return;
    const failed = await copyPrefix(prefixFd, this.#fh, startOffset, this.#hash);
    if (failed !== null) this.#failWrite(failed.offset, failed.err);
  }

  /** Processes messages one at a time, in order: file and hash see the bytes as upstream sent them. */
  async run(): Promise<SpoolResult> {
    const inbox = new Inbox(this.#task.port);
    for (;;) {
      const msg = await inbox.next();
      if (msg.type === 'chunk') await this.#chunk(Buffer.from(this.#task.ring, msg.at, msg.length));
      else if (msg.type === 'abort') return this.#discard({ ok: false, reason: 'aborted', size: this.#offset });
      else return this.#end(msg.expectedSize);
    }
  }

  async close(): Promise<void> {
    await this.#fh?.close().catch(() => undefined);
    this.#fh = null;
  }

  async #chunk(buf: Buffer): Promise<void> {
    const at = this.#offset;
    // The write runs on libuv's pool while this thread hashes the same bytes.
    const written = this.#writeError === null && this.#fh !== null ? writeAll(this.#fh, buf, at) : null;
    this.#hash.update(buf);
    this.#offset += buf.length;
    if (written !== null) {
      try {
        await written;
      } catch (err) {
        this.#failWrite(at, err);
      }
    }
    if (this.#writeError === null) this.#written = this.#offset;
    this.#post({ type: 'progress', done: this.#offset, written: this.#written });
  }

  async #end(expectedSize: number): Promise<SpoolResult> {
    const size = this.#offset;
    const actualHex = this.#hash.digest('hex');
    const ok = size === expectedSize && actualHex === this.#task.expectedHex;
    this.#post({ type: 'verdict', ok, size, actualHex });
    if (size !== expectedSize) return this.#discard({ ok: false, reason: 'size-mismatch', size, expectedSize });
    if (!ok) return this.#discard({ ok: false, reason: 'digest-mismatch', size, actualHex });
    if (this.#writeError !== null || this.#fh === null || this.#task.dataPath === null) {
      const code = this.#writeError?.code ?? 'ENOSPC';
      return this.#discard({ ok: false, reason: 'not-stored', size, digestMatches: true, code });
    }
    if (this.#task.publishDelayMs > 0) await delay(this.#task.publishDelayMs);
    try {
      const published = await publish(this.#fh, this.#task.dataPath, this.#task.finalPath);
      this.#published = true;
      return { ok: true, size, published };
    } catch (err) {
      return this.#discard({ ok: false, reason: 'io', code: errCode(err), message: errMessage(err) });
    }
  }

  async #discard(result: SpoolResult): Promise<SpoolResult> {
    if (!this.#published && this.#task.dataPath !== null) await rm(this.#task.dataPath, { force: true });
    return result;
  }

  /** From `offset` on, bytes are only hashed: the main thread keeps them in memory for its readers. */
  #failWrite(offset: number, err: unknown): void {
    this.#writeError = { code: errCode(err), message: errMessage(err) };
    this.#written = offset;
    this.#post({ type: 'write-failed', offset, ...this.#writeError });
  }

  #post(msg: SpoolProgress): void {
    this.#task.port.postMessage(msg);
  }
}

/** The port's messages as an ordered queue that a loop awaits one at a time. */
class Inbox {
  readonly #queue: SpoolMessage[] = [];
  #wake: (() => void) | null = null;

  constructor(port: SpoolTask['port']) {
    port.on('message', (msg: SpoolMessage) => {
      this.#queue.push(msg);
      this.#wake?.();
      this.#wake = null;
    });
  }

  async next(): Promise<SpoolMessage> {
    for (;;) {
      const msg = this.#queue.shift();
      if (msg !== undefined) return msg;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}
