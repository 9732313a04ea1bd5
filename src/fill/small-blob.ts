// Small blobs (configs, tiny layers: most pulls start with several) take a lighter path: the
// body is buffered whole and hashed on the main thread as it arrives (a chunk at a time:
// microseconds each), served, then written and published. No ring, no worker round trip, no
// per-chunk messages: for a blob of a megabyte those cost as much as moving its bytes
// (bench/NOTES.md, "Blobs up to a megabyte through memory"). The bodies in flight hold at most
// a budget; past it, a blob takes the worker path (streamed.ts).
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { BUFFERED_FILLS_TOTAL } from '../cluster/budget.js';
import { publish } from '../../workers/publish.js';
import type { BodyContext } from './deps.js';
import { diskFullCode } from '../errors/inspect.js';
import { spoolWriteFailed } from './disk-full.js';
import type { ByteSink, Download } from './download.js';
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

/** Downloads a small blob whole, checks it, releases its clients, then keeps it when it can. */
export async function fillSmall(fill: BodyContext, download: Download): Promise<FillOutcome> {
  const { deps, digest, size, spool } = fill;
  const body = new SmallBody(size, digest.algorithm);
  fill.opened(body);
  await download.run(fill.sink(body));
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
  try {
    await spool.dataFile();
    await storeSmall(body.bytes, spool.dataPath, fill.finalPath);
  } catch (err) {
    const code = diskFullCode(err);
    if (code !== null) spoolWriteFailed(deps, digest, code);
    else deps.log.error({ digest: digest.value, err }, 'could not store a verified small blob');
    return 'not-stored';
  }
  deps.store.add(digest, size, body.bytes);
  return 'published';
}

/** Writes a verified small blob to its data file, makes it durable and publishes it. */
export async function storeSmall(bytes: Buffer, dataPath: string, finalPath: string): Promise<boolean> {
  const fh = await open(dataPath, 'r+');
  try {
    await fh.writeFile(bytes);
    return await publish(fh, dataPath, finalPath);
  } finally {
    await fh.close();
  }
}
