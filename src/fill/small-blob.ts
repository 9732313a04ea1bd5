// Small blobs (configs, tiny layers: most pulls start with several) take a lighter path: the
// body is buffered whole and hashed on the main thread as it arrives (a chunk at a time:
// microseconds each), served, then written and published. No ring, no worker round trip, no
// per-chunk messages: for a blob of a megabyte those cost as much as moving its bytes
// (bench/NOTES.md, "Blobs up to a megabyte through memory"). The bodies in flight hold at most
// a budget; past it, a blob takes the worker path (streamed.ts).
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { BUFFERED_FILLS_TOTAL } from '../cluster/budget.js';
import { publish } from '../../workers/publish.js';
import type { BodyContext } from './deps.js';
import { diskFullCode } from '../errors/inspect.js';
import { spoolWriteFailed } from './disk-full.js';
import type { ByteSink, Download } from './download.js';
import type { OwnedSpool } from '../store/spool.js';
import { FillFailure, spoolFailure, type FillOutcome } from './outcome.js';

export const SMALL_BLOB_MAX = 1 << 20;

/** This process's share of the node's budget for bodies buffered whole (cluster/budget.ts). */
let bufferedBudget = BUFFERED_FILLS_TOTAL;
let bufferedInUse = 0;

export function setBufferedFillBudget(bytes: number): void {
  bufferedBudget = Math.max(SMALL_BLOB_MAX, bytes);
}

/**
 * Reserves `size` bytes of the budget for one fill's body: the release function (call it once
 * nobody reads the body any more), or null when the blob is too large or the budget spent.
 */
export function reserveSmallBody(size: number): (() => void) | null {
  if (size > SMALL_BLOB_MAX || bufferedInUse + size > bufferedBudget) return null;
  bufferedInUse += size;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    bufferedInUse -= size;
  };
}

export class SmallBody implements ByteSink {
  readonly bytes: Buffer;
  readonly #hash: Hash;
  #received = 0;

  constructor(size: number, algorithm: string) {
    this.bytes = Buffer.allocUnsafe(size);
    this.#hash = createHash(algorithm);
  }

  arrived(): number {
    return this.#received;
  }

  read(buf: Buffer, pos: number, length: number): Promise<number> {
    return Promise.resolve(this.bytes.copy(buf, 0, pos, Math.min(this.#received, pos + length)));
  }

  write(chunk: Buffer): boolean {
    const taken = chunk.copy(this.bytes, this.#received);
    this.#hash.update(chunk.subarray(0, taken));
    this.#received += taken;
    return true;
  }

  onDrain(resume: () => void): void {
    resume();
  }

  /** The hex digest of the whole body (call once, after every byte has arrived). */
  hex(): string {
    return this.#hash.digest('hex');
  }
}

/**
 * A small fill whose upstream is slow writes what it has to its data file this often:
 * followers in other processes read that file, and their clients would otherwise get
 * nothing until the verdict (an idle timeout could cut them first). A fast fill writes once.
 */
const FOLLOWERS_FLUSH_MS = 1_000;

/** Writes the bytes received so far to the data file every FOLLOWERS_FLUSH_MS, until stopped. */
class FlushForFollowers {
  readonly #body: SmallBody;
  readonly #spool: OwnedSpool;
  readonly #timer: NodeJS.Timeout;
  #written = 0;
  #writes: Promise<void> = Promise.resolve();

  constructor(body: SmallBody, spool: OwnedSpool) {
    this.#body = body;
    this.#spool = spool;
    this.#timer = setInterval(() => this.#flush(), FOLLOWERS_FLUSH_MS).unref();
  }

  /** Stops; resolves once no write is under way (the final write then has the file to itself). */
  stop(): Promise<void> {
    clearInterval(this.#timer);
    return this.#writes;
  }

  #flush(): void {
    const from = this.#written;
    const to = this.#body.arrived();
    if (to === from) return;
    this.#written = to;
    const { bytes } = this.#body;
    const spool = this.#spool;
    this.#writes = this.#writes
      .then(async () => {
        await spool.dataFile();
        const fh = await open(spool.dataPath, 'r+');
        try {
          await fh.write(bytes, from, to - from, from);
        } finally {
          await fh.close();
        }
      })
      // The final write after the verdict reports the disk's errors; followers wait for it.
      .catch(() => clearInterval(this.#timer));
  }
}

/** Downloads a small blob whole, checks it, releases its clients, then keeps it when it can. */
export async function fillSmall(fill: BodyContext, download: Download): Promise<FillOutcome> {
  const { deps, digest, size, spool } = fill;
  const body = new SmallBody(size, digest.algorithm);
  const flush = spool === null ? null : new FlushForFollowers(body, spool);
  fill.opened(body);
  try {
    await download.run(fill.sink(body));
  } finally {
    await flush?.stop();
  }
  const hex = body.hex();
  if (hex !== digest.hex) {
    download.blameBadBytes(hex);
    throw new FillFailure(
      'digest-mismatch',
      spoolFailure({ ok: false, reason: 'digest-mismatch', size, actualHex: hex }),
    );
  }
  fill.verified();
  if (spool === null) return 'not-stored';
  // Followers in other processes read these verified bytes from the data file: their clients'
  // last byte may go once it holds them all, not after the fsync and the publication.
  spool.setVerified().catch(() => undefined);
  let published: boolean;
  try {
    await spool.dataFile();
    published = await storeSmall(body.bytes, spool.dataPath, fill.finalPath, deps.publishDelayMs ?? 0);
  } catch (err) {
    const code = diskFullCode(err);
    if (code !== null) spoolWriteFailed(deps, digest, code);
    else deps.log.error({ digest: digest.value, err }, 'could not store a verified small blob');
    return 'not-stored';
  }
  deps.store.add(digest, size, body.bytes);
  // False: a replica that took this spool over while it stalled published the blob first.
  return published ? 'published' : 'published-by-replica';
}

/**
 * Writes a verified small blob to its data file, makes it durable and publishes it; false
 * when another writer published it first. `delayMs`: FillDeps.publishDelayMs.
 */
export async function storeSmall(bytes: Buffer, dataPath: string, finalPath: string, delayMs = 0): Promise<boolean> {
  const fh = await open(dataPath, 'r+');
  try {
    await fh.writeFile(bytes);
    // Unreferenced: a process that stops while a test holds its publication exits anyway.
    if (delayMs > 0) await delay(delayMs, undefined, { ref: false });
    return await publish(fh, dataPath, finalPath);
  } finally {
    await fh.close();
  }
}
