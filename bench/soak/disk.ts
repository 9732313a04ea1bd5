// The edge's small disk: a tmpfs the soak mounts (as root) for the edge's root, and a
// ballast file that fills it for the disk-full fault. Mounting needs root (CAP_SYS_ADMIN);
// elsewhere the edge's root is an ordinary directory and the disk-full fault is skipped,
// since filling the machine's real disk is not something a soak may do.
import { execFile } from 'node:child_process';
import { mkdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class SmallDisk {
  readonly #ballast: string[] = [];
  #full = false;
  #filler: Promise<void> | null = null;
  /** Bytes in use on the disk at its fullest (ballast and the edge's files). */
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
   * a failed fill's spool) is taken again within half a second. fallocate(1) reserves the
   * blocks at once, where writing them would take seconds on a busy machine.
   */
  async fill(): Promise<void> {
    let n = 0;
    const topUp = async (): Promise<void> => {
      // The edge writes meanwhile: a reservation that no longer fits is tried again smaller.
      for (let tries = 0; tries < 4; tries++) {
        const free = await this.freeBytes();
        if (free < 4096) break;
        const file = join(this.dir, `ballast-${n++}`);
        const ok = await run('fallocate', ['-l', String(free - (free % 4096)), file]).then(
          () => true,
          () => false,
        );
        if (ok) this.#ballast.push(file);
        else await rm(file, { force: true });
      }
      this.peakBallast = Math.max(this.peakBallast, this.sizeBytes - (await this.freeBytes()));
    };
    this.#full = true;
    await topUp();
    this.#filler = (async () => {
      while (this.#full) {
        await new Promise((r) => setTimeout(r, 500));
        if (this.#full) await topUp();
      }
    })();
  }

  /** Space returns. */
  async release(): Promise<void> {
    this.#full = false;
    await this.#filler;
    this.#filler = null;
    for (const f of this.#ballast.splice(0)) await rm(f, { force: true });
  }

  async unmount(): Promise<void> {
    await this.release();
    await run('umount', ['-l', this.dir]).catch(() => undefined);
  }
}
