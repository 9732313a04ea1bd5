// The spool task: bytes a fill receives, named by ring region, are hashed as they come and
// appended to this writer's own data file in batches. At the end the verdict (size and digest)
// goes back at once, since it is what releases every client's last byte; the last batch's
// write, the fsync and the publication follow, off the clients' path.
import { createHash, type Hash } from 'node:crypto';
import { access, rm } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { errCode, errMessage } from './errors.js';
import { copyPrefix } from './hash-file.js';
import { SpoolFile } from './spool-file.js';
import { publish } from './publish.js';
import type { SpoolMessage, SpoolProgress, SpoolResult, SpoolTask } from './types.js';

/**
 * Regions are written together, at least this much at a time: on this kind of disk a small
 * write costs far more than its bytes (bench/NOTES.md, "Where a lone miss spent its CPU").
 */
const WRITE_BATCH = 1 << 20;
/** A smaller batch is written when no region has come for this long (a slow or stalled upstream). */
const HOLD_MS = 10;

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
  #file: SpoolFile | null = null;
  /** Bytes hashed so far (absolute offset). */
  #offset: number;
  /** Bytes in the file: the same as #offset until a write fails. */
  #written: number;
  /** Set by the first failed write (ENOSPC…): from then on bytes are only hashed. */
  #writeError: { code: string; message: string } | null = null;
  #published = false;
  /** Hashed regions not yet written: contiguous in the ring, at file offset `offset`. */
  #held: { at: number; length: number; offset: number } | null = null;
  /** The write in flight (never rejects). */
  #writing: Promise<void> = Promise.resolve();
  /**
   * Whether a batch has gone out yet. The first region is written alone, at once: a reader
   * that follows this file from another process (a node's other serving processes) then gets
   * its first bytes after one region, not after a megabyte of a slow upstream
   * (bench/NOTES.md, "First bytes for followers").
   */
  #started = false;

  constructor(task: SpoolTask) {
    this.#task = task;
    this.#hash = createHash(task.algorithm);
    this.#offset = this.#written = task.startOffset;
  }

  async open(): Promise<void> {
    const { dataPath, prefixFd, startOffset } = this.#task;
    if (dataPath === null) this.#writeError = { code: 'ENOSPC', message: 'no spool file' };
    else this.#file = await SpoolFile.open(dataPath, this.#task.directWrites);
    if (prefixFd === null) return;
    const failed = await copyPrefix(prefixFd, this.#file?.fh ?? null, startOffset, this.#hash);
    if (failed !== null) this.#failWrite(failed.offset, failed.err);
  }

  /** Processes messages one at a time, in order: file and hash see the bytes as upstream sent them. */
  async run(): Promise<SpoolResult> {
    const inbox = new Inbox(this.#task.port);
    for (;;) {
      const msg = await inbox.next(this.#held === null ? null : HOLD_MS);
      if (msg === null) this.#startWrite();
      else if (msg.type === 'chunk') await this.#chunk(msg.at, msg.length);
      else {
        this.#startWrite();
        if (msg.type === 'end') return this.#end(msg.expectedSize);
        await this.#writing;
        return this.#discard({ ok: false, reason: 'aborted', size: this.#offset });
      }
    }
  }

  async close(): Promise<void> {
    await this.#writing;
    await this.#file?.close();
    this.#file = null;
  }

  /** Hashes a region at once; its write joins the held batch, which goes out once it is large enough. */
  async #chunk(at: number, length: number): Promise<void> {
    this.#hash.update(Buffer.from(this.#task.ring, at, length));
    const held = this.#held;
    if (held !== null && held.at + held.length !== at) this.#startWrite();
    if (this.#held === null) this.#held = { at, length, offset: this.#offset };
    else this.#held.length += length;
    this.#offset += length;
    if (!this.#started || this.#held.length >= WRITE_BATCH) {
      await this.#writing;
      this.#startWrite();
    }
  }

  /**
   * Writes the held batch after the write in flight (one at a time, in order), then reports
   * its region done: only then may the main thread reuse that ring space.
   */
  #startWrite(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    this.#started = true;
    const buf = Buffer.from(this.#task.ring, held.at, held.length);
    this.#writing = this.#writing.then(async () => {
      if (this.#writeError === null && this.#file !== null) {
        try {
          if (this.#file.direct && (await this.#followed())) await this.#file.throughPageCache();
          await this.#file.write(buf, held.offset);
        } catch (err) {
          this.#failWrite(held.offset, err);
        }
      }
      const done = held.offset + held.length;
      if (this.#writeError === null) this.#written = done;
      this.#post({ type: 'progress', done, written: this.#written });
    });
  }

  /** Whether a reader in another process follows this data file (its marker exists). */
  async #followed(): Promise<boolean> {
    const marker = this.#task.followedMarker;
    return (
      marker !== null &&
      (await access(marker).then(
        () => true,
        () => false,
      ))
    );
  }

  async #end(expectedSize: number): Promise<SpoolResult> {
    const size = this.#offset;
    const actualHex = this.#hash.digest('hex');
    const ok = size === expectedSize && actualHex === this.#task.expectedHex;
    // Every byte is hashed: the verdict goes now, while the last batch is still being written
    // (the main thread holds unwritten bytes in its ring until their region is done).
    this.#post({ type: 'verdict', ok, size, actualHex });
    await this.#writing;
    if (size !== expectedSize) return this.#discard({ ok: false, reason: 'size-mismatch', size, expectedSize });
    if (!ok) return this.#discard({ ok: false, reason: 'digest-mismatch', size, actualHex });
    if (this.#writeError !== null || this.#file === null || this.#task.dataPath === null) {
      const code = this.#writeError?.code ?? 'ENOSPC';
      return this.#discard({ ok: false, reason: 'not-stored', size, digestMatches: true, code });
    }
    if (this.#task.publishDelayMs > 0) await delay(this.#task.publishDelayMs);
    try {
      const published = await publish(this.#file.fh, this.#task.dataPath, this.#task.finalPath);
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

  /** The next message; null when `timeoutMs` passes first (no timeout: waits for one). */
  async next(timeoutMs: number | null): Promise<SpoolMessage | null> {
    const msg = this.#queue.shift();
    if (msg !== undefined) return msg;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      if (timeoutMs !== null) timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    this.#wake = null;
    return this.#queue.shift() ?? null;
  }
}
