// What a response reads blob bytes from: a stored file (a hit), a buffer (a small blob in
// memory), or a fill in progress. All are positional reads, so a slow client holds up nobody.
import type { OpenBlob } from '../store/blob-store.js';

export interface BlobSource {
  readonly size: number;
  /** The whole blob, when it is in memory and verified: a full response is then one write. */
  readonly bytes?: Buffer;
  read(buf: Buffer, position: number, length: number): Promise<number>;
  /**
   * The response reads nothing below `position`: a fill streaming through memory may drop
   * those bytes for this reader before its first read (a Range client waiting for bytes
   * that have not arrived must not pin the memory below them).
   */
  startingAt?(position: number): void;
  /**
   * The response has read every byte it will send and only waits for the verdict: a fill
   * then keeps nothing in memory for it and is not paced by it. (A reader that held its
   * place at the end of a range would hold the very bytes the verdict needs.)
   */
  doneReading?(): void;
  /** Exclusive end of the bytes that have arrived and can be read now. */
  available(): number;
  /**
   * True once every byte is known good. Until then a response keeps its own last byte back,
   * so no client can end cleanly on bytes a digest check may still reject.
   */
  verified(): boolean;
  /** Set once the bytes can never be completed or trusted; the response must be reset. */
  failure(): Error | null;
  /** Resolves when available() or verified() changes, or the source fails. */
  waitForMore(): Promise<void>;
  release(): Promise<void>;
}

export function fileSource(blob: OpenBlob): BlobSource {
  const size = blob.entry.size;
  return {
    size,
    read: async (buf, position, length) => (await blob.fh.read(buf, 0, length, position)).bytesRead,
    available: () => size,
    verified: () => true,
    failure: () => null,
    waitForMore: () => Promise.resolve(),
    release: () => blob.release(),
  };
}

export function bufferSource(bytes: Buffer): BlobSource {
  return {
    size: bytes.length,
    bytes,
    read: (buf, position, length) => Promise.resolve(bytes.copy(buf, 0, position, position + length)),
    available: () => bytes.length,
    verified: () => true,
    failure: () => null,
    waitForMore: () => Promise.resolve(),
    release: () => Promise.resolve(),
  };
}
