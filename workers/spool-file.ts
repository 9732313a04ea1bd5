// A spool's data file, written with O_DIRECT where the filesystem takes it: the bytes go
// from an aligned staging buffer to the disk without a copy into the page cache, which on
// virtual machines that hand fresh pages back to the host costs CPU (bench/NOTES.md, "Where a
// lone miss spent its CPU"). Direct I/O needs whole blocks at aligned offsets from aligned
// memory; the unaligned ends of a write, and every write where direct I/O is refused (tmpfs,
// some FUSE mounts), go through the ordinary handle. The file grows in order either way: a
// replica reading it sees only written bytes.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** File offsets and lengths of direct writes are whole multiples of this. */
const BLOCK = 4096;
/** Bytes per direct write (one staging buffer). */
const STAGING_SIZE = 1 << 20;
/** WebAssembly memory grows in pages of 64 KiB. */
const WASM_PAGE = 64 << 10;

/** The one part of the WebAssembly API used here (TypeScript declares it only with the DOM's libraries). */
declare const WebAssembly: { Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer } };

/**
 * The staging buffers of this thread: slices of one WebAssembly memory, because that memory
 * starts on a page boundary and a Buffer's need not. Memory aligned only to the disk's 512-byte
 * sectors is taken by O_DIRECT too, but each 1 MiB write then crosses 257 pages, and the
 * writes went at a quarter of the speed (bench/NOTES.md, "O_DIRECT from page-aligned memory").
 * A spool that finds every slice in use writes through the page cache.
 */
export class StagingArena {
  readonly #memory: { readonly buffer: ArrayBuffer };
  readonly #free: number[];

  constructor(slots: number) {
    this.#memory = new WebAssembly.Memory({ initial: (slots * STAGING_SIZE) / WASM_PAGE });
    this.#free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  }

  /** A page-aligned buffer of STAGING_SIZE bytes, or null when all are in use. */
  take(): Buffer | null {
    const slot = this.#free.pop();
    return slot === undefined ? null : Buffer.from(this.#memory.buffer, slot * STAGING_SIZE, STAGING_SIZE);
  }

  give(buf: Buffer): void {
    this.#free.push(buf.byteOffset / STAGING_SIZE);
  }
}

/** Concurrent direct spools per thread; more go through the page cache (8 MiB per thread). */
const STAGING_SLOTS = 8;
let arena: StagingArena | null | undefined;

/**
 * This thread's arena, made on first use; null if the runtime cannot make the memory (out of
 * memory or address space): every spool of the thread then writes through the page cache
 * rather than failing.
 */
function threadArena(): StagingArena | null {
  if (arena === undefined) {
    try {
      arena = new StagingArena(STAGING_SLOTS);
    } catch {
      arena = null;
    }
  }
  return arena;
}

/** The O_DIRECT handle and the staging buffer it writes from: both, or neither. */
interface DirectPath {
  readonly fh: FileHandle;
  readonly staging: Buffer;
  readonly arena: StagingArena;
}

export class SpoolFile {
  /** The ordinary handle: unaligned ends, fsync, and the fallback. */
  readonly fh: FileHandle;
  #direct: DirectPath | null;

  private constructor(fh: FileHandle, direct: DirectPath | null) {
    this.fh = fh;
    this.#direct = direct;
  }

  /**
   * Opens an existing data file for writing; `direct: false` writes through the page cache
   * only. `staging`: where this file's staging buffer comes from (this thread's, by default).
   */
  static async open(path: string, direct = true, staging?: StagingArena): Promise<SpoolFile> {
    const fh = await open(path, 'r+');
    // O_DIRECT is Linux's; elsewhere, or where the filesystem refuses it, the page cache it is.
    const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
    // The arena is made only for a spool that may write direct: none with the page cache.
    const arena = direct && flag !== undefined ? (staging ?? threadArena()) : null;
    const buf = arena?.take() ?? null;
    if (arena === null || buf === null || flag === undefined) return new SpoolFile(fh, null);
    const directFh = await open(path, constants.O_WRONLY | flag).catch(() => null);
    if (directFh === null) {
      arena.give(buf);
      return new SpoolFile(fh, null);
    }
    return new SpoolFile(fh, { fh: directFh, staging: buf, arena });
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
    await this.#closeDirect();
    await this.fh.close().catch(() => undefined);
  }

  /** Writes the blocks of [from, to) of the file (bytes of `buf`, which starts at `base`); returns where it stopped. */
  async #writeDirect(buf: Buffer, base: number, from: number, to: number): Promise<number> {
    let at = from;
    for (let d = this.#direct; at < to && d !== null; d = this.#direct) {
      const n = Math.min(to - at, STAGING_SIZE);
      buf.copy(d.staging, 0, at - base, at - base + n);
      let written: number;
      try {
        ({ bytesWritten: written } = await d.fh.write(d.staging, 0, n, at));
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

  /** Stops direct writes for good: the handle closed, the staging buffer back to the arena. */
  async #closeDirect(): Promise<void> {
    const direct = this.#direct;
    if (direct === null) return;
    this.#direct = null;
    direct.arena.give(direct.staging);
    await direct.fh.close().catch(() => undefined);
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
