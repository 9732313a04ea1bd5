// Collapse across the processes of a node (http.processes) and replicas on one root: the
// first process to create a key's claim file exclusively asks the upstream; the others wait
// for the file to go, then read what it left in the records, and ask only if it left nothing
// usable. Within a process, SingleFlight does this in memory first (single-flight.ts).
// A claim whose owner stopped refreshing it (killed mid-request) is taken over once stale.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode } from '../errors/inspect.js';

export interface ClaimTiming {
  /** How often a holder refreshes its claim's mtime. */
  beatMs: number;
  /** A claim not refreshed for this long is a dead holder's. */
  staleMs: number;
  /** How often a waiter looks whether the claim is gone. */
  pollMs: number;
}

const DEFAULT_TIMING: ClaimTiming = { beatMs: 2_000, staleMs: 15_000, pollMs: 20 };
/** What a claim file holds: its holder, so a waiter on the same host sees a dead one at once. */
const HOLDER = `${hostname()} ${process.pid}`;

export class ClaimDir {
  readonly #dir: string;
  readonly #t: ClaimTiming;

  constructor(dir: string, timing: Partial<ClaimTiming> = {}) {
    this.#dir = dir;
    this.#t = { ...DEFAULT_TIMING, ...timing };
  }

  /**
   * `work()` in the one process holding `key`'s claim; elsewhere, once the holder is done,
   * `after()`: what it left (null: nothing usable, so this process claims in its turn).
   */
  async run<T>(key: string, work: () => Promise<T>, after: () => Promise<T | null>): Promise<T> {
    const path = join(this.#dir, createHash('sha256').update(key).digest('hex'));
    for (;;) {
      if (await this.#create(path)) return this.#hold(path, work);
      await this.#waitGone(path);
      const left = await after();
      if (left !== null) return left;
    }
  }

  async #create(path: string): Promise<boolean> {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(HOLDER);
      } finally {
        await fh.close();
      }
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        await mkdir(this.#dir, { recursive: true });
        return this.#create(path);
      }
      if (errnoCode(err) === 'EEXIST') return false;
      throw err;
    }
  }

  async #hold<T>(path: string, work: () => Promise<T>): Promise<T> {
    const beat = setInterval(() => {
      const now = new Date();
      void utimes(path, now, now).catch(() => undefined);
    }, this.#t.beatMs).unref();
    try {
      return await work();
    } finally {
      clearInterval(beat);
      await rm(path, { force: true });
    }
  }

  /** Until the claim is gone, or stale (then removed, for whoever claims next). */
  async #waitGone(path: string): Promise<void> {
    for (;;) {
      const st = await stat(path).catch(() => null);
      if (st === null) return;
      if (Date.now() - st.mtimeMs > this.#t.staleMs || (await holderDead(path))) {
        await rm(path, { force: true });
        return;
      }
      await sleep(this.#t.pollMs);
    }
  }
}

/** True when the claim names a process of this host that no longer runs (killed mid-request). */
async function holderDead(path: string): Promise<boolean> {
  const [host, pid] = (await readFile(path, 'utf8').catch(() => '')).split(' ');
  if (host !== hostname() || pid === undefined || !/^\d+$/.test(pid)) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (err) {
    return errnoCode(err) === 'ESRCH';
  }
}
