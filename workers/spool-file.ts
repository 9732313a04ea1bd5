// A spool's data file, written with O_DIRECT where the filesystem takes it: the bytes go
// from an aligned staging buffer to the disk without a copy into the page cache, which on
// virtual machines that hand fresh pages back to the host costs more CPU than the disk
// write itself (bench/NOTES.md, "Where a lone miss spent its CPU"). Direct I/O needs whole
// blocks at aligned offsets from aligned memory; the unaligned ends of a write, and every
// write where direct I/O is refused (tmpfs, some FUSE mounts), go through the ordinary
// handle. The file grows in order either way: a replica reading it sees only written bytes.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** File offsets and lengths of direct writes are whole multiples of this. */
const BLOCK = 4096;
/** Bytes per direct write (one staging buffer). */
const STAGING_SIZE = 1 << 20;
/** Staging buffers kept per thread for the next spools. */
const POOL_MAX = 4;

/** A buffer and the offset in it where memory is aligned for direct I/O (null: not found yet). */
interface Staging {
  buf: Buffer;
  aligned: number | null;
}

const pool: Staging[] = [];

export class SpoolFile {
  /** The ordinary handle: unaligned ends, fsync, and the fallback. */
  readonly fh: FileHandle;
  #direct: FileHandle | null;
  #staging: Staging | null;

  private constructor(fh: FileHandle, direct: FileHandle | null) {
    this.fh = fh;
    this.#direct = direct;
    this.#staging =
      direct === null ? null : (pool.pop() ?? { buf: Buffer.allocUnsafeSlow(STAGING_SIZE + BLOCK), aligned: null });
  }

  /** Opens an existing data file for writing; `direct: false` writes through the page cache only. */
  static async open(path: string, direct = true): Promise<SpoolFile> {
    const fh = await open(path, 'r+');
    // O_DIRECT is Linux's; elsewhere, or where the filesystem refuses it, the page cache it is.
    const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
    const directFh =
      direct && flag !== undefined ? await open(path, constants.O_WRONLY | flag).catch(() => null) : null;
    return new SpoolFile(fh, directFh);
  }

  /** Whether whole blocks still go straight to the disk. */
  get direct(): boolean {
    return this.#direct !== null;
  }

  /** From now on every write goes through the page cache. */
  async throughPageCache(): Promise<void> {
    await this.#closeDirect();
  }

  /** Writes all of `buf` at `position`. */
  async write(buf: Buffer, position: number): Promise<void> {
    const end = position + buf.length;
    const first = Math.ceil(position / BLOCK) * BLOCK;
    const last = Math.floor(end / BLOCK) * BLOCK;
    let at = position;
    if (this.#direct !== null && last > first) {
      if (first > position) await writeAll(this.fh, buf.subarray(0, first - position), position);
      at = await this.#writeDirect(buf, position, first, last);
    }
    if (at < end) await writeAll(this.fh, buf.subarray(at - position), at);
  }

  async close(): Promise<void> {
    const staging = this.#staging;
    this.#staging = null;
    if (staging !== null && staging.aligned !== null && pool.length < POOL_MAX) pool.push(staging);
    await this.#closeDirect();
    await this.fh.close().catch(() => undefined);
  }

  /** Writes the blocks of [from, to) of the file (bytes of `buf`, which starts at `base`); returns where it stopped. */
  async #writeDirect(buf: Buffer, base: number, from: number, to: number): Promise<number> {
    let at = from;
    while (at < to && this.#direct !== null && this.#staging !== null) {
      const staging = this.#staging;
      const n = Math.min(to - at, STAGING_SIZE);
      if (staging.aligned === null) {
        const probed = await this.#findAlignment(staging, buf, at - base, at);
        if (probed === null) break;
        at += probed;
        if (probed !== BLOCK) break;
        continue;
      }
      buf.copy(staging.buf, staging.aligned, at - base, at - base + n);
      let written: number;
      try {
        ({ bytesWritten: written } = await this.#direct.write(staging.buf, staging.aligned, n, at));
      } catch (err) {
        if (!isRefusal(err)) throw err;
        await this.#closeDirect();
        break;
      }
      at += written;
      // A short write leaves the rest to the page cache, where any length is fine.
      if (written !== n) break;
    }
    return at;
  }

  /**
   * Finds where in the staging buffer memory is aligned for this device, by writing the
   * block at `position` from candidate offsets (malloc aligns to 16): a refused write writes
   * nothing, and the one that succeeds has put real bytes in their place. Returns the bytes
   * written, or null when no offset works (direct I/O is then off for this file).
   */
  async #findAlignment(staging: Staging, buf: Buffer, index: number, position: number): Promise<number | null> {
    for (let k = 0; k < BLOCK && this.#direct !== null; k += 16) {
      buf.copy(staging.buf, k, index, index + BLOCK);
      try {
        const { bytesWritten } = await this.#direct.write(staging.buf, k, BLOCK, position);
        staging.aligned = k;
        return bytesWritten;
      } catch (err) {
        if (!isRefusal(err)) throw err;
      }
    }
    await this.#closeDirect();
    return null;
  }

  async #closeDirect(): Promise<void> {
    const direct = this.#direct;
    this.#direct = null;
    await direct?.close().catch(() => undefined);
  }
}

/** EINVAL: direct I/O refused here (alignment, filesystem); anything else is a real failure. */
function isRefusal(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'EINVAL';
}

export async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}
