// The edge's small disk: a tmpfs the soak mounts (as root) for the edge's root, and a
// ballast file that fills it for the disk-full fault. Mounting needs root (CAP_SYS_ADMIN);
// elsewhere the edge's root is an ordinary directory and the disk-full fault is skipped,
// since filling the machine's real disk is not something a soak may do.
import { execFile } from 'node:child_process';
import { mkdir, open, rm, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CHUNK = Buffer.alloc(1 << 20);

export class SmallDisk {
  #ballast: FileHandle | null = null;
  #filler: Promise<void> | null = null;
  /** Bytes the ballast holds at its fullest. */
  peakBallast = 0;

  private constructor(
    readonly dir: string,
    readonly sizeBytes: number,
  ) {}

  /** Mounts a tmpfs of `sizeBytes` at `dir`; the reason it could not otherwise. */
  static async mount(dir: string, sizeBytes: number): Promise<SmallDisk | string> {
    await mkdir(dir, { recursive: true });
    if (process.getuid?.() !== 0) return 'not root: mounting a tmpfs needs root';
    try {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir]);
    } catch (err) {
      return `mount failed: ${(err as Error).message.split('\n')[0] ?? ''}`;
    }
    return new SmallDisk(dir, sizeBytes);
  }

  async freeBytes(): Promise<number> {
    const s = await statfs(this.dir);
    return s.bavail * s.bsize;
  }

  /**
   * Fills the disk and keeps it full until release(): whatever the edge frees (eviction,
   * a failed fill's spool) is taken again within half a second.
   */
  async fill(): Promise<void> {
    this.#ballast = await open(join(this.dir, 'ballast'), 'w');
    const fh = this.#ballast;
    let written = 0;
    const topUp = async (): Promise<void> => {
      for (;;) {
        // A short write or ENOSPC: the disk is full to the byte.
        const r = await fh.write(CHUNK, 0, CHUNK.length, written).catch(() => null);
        written += r?.bytesWritten ?? 0;
        if (r === null || r.bytesWritten < CHUNK.length) break;
      }
      this.peakBallast = Math.max(this.peakBallast, written);
    };
    await topUp();
    this.#filler = (async () => {
      while (this.#ballast === fh) {
        await new Promise((r) => setTimeout(r, 500));
        if (this.#ballast === fh) await topUp();
      }
    })();
  }

  /** Space returns. */
  async release(): Promise<void> {
    const fh = this.#ballast;
    this.#ballast = null;
    await this.#filler;
    this.#filler = null;
    await fh?.close();
    await rm(join(this.dir, 'ballast'), { force: true });
  }

  async unmount(): Promise<void> {
    await this.release();
    await run('umount', ['-l', this.dir]).catch(() => undefined);
  }
}
