// Small blobs (configs, tiny layers: every pull starts with some) take a lighter path: the
// body is buffered whole, hashed on the main thread (at most 64 KiB: microseconds), served,
// then written and published. No ring, no worker round trip, no per-chunk messages.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Digest } from '../store/digest.js';
import { publish } from '../../workers/publish.js';
import type { BodyContext } from './deps.js';
import { diskFullCode } from '../errors/inspect.js';
import { spoolWriteFailed } from './disk-full.js';
import type { ByteSink, Download } from './download.js';
import { FillFailure, spoolFailure, type FillOutcome } from './outcome.js';

export const SMALL_BLOB_MAX = 64 << 10;

export class SmallBody implements ByteSink {
  readonly bytes: Buffer;
  #received = 0;

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size);
  }

  arrived(): number {
    return this.#received;
  }

  read(buf: Buffer, pos: number, length: number): Promise<number> {
    return Promise.resolve(this.bytes.copy(buf, 0, pos, Math.min(this.#received, pos + length)));
  }

  write(chunk: Buffer): boolean {
    this.#received += chunk.copy(this.bytes, this.#received);
    return true;
  }

  onDrain(resume: () => void): void {
    resume();
  }

  /** The hex digest of the whole body (call once every byte has arrived). */
  hash(d: Digest): string {
    return createHash(d.algorithm).update(this.bytes).digest('hex');
  }
}

/** Downloads a small blob whole, checks it, releases its clients, then keeps it when it can. */
export async function fillSmall(fill: BodyContext, download: Download): Promise<FillOutcome> {
  const { deps, digest, size, spool } = fill;
  const body = new SmallBody(size);
  fill.opened(body);
  await download.run(fill.sink(body));
  const hex = body.hash(digest);
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
