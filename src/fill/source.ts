// What a response reads blob bytes from: a stored file (a hit) or a fill in progress.
// Both are positional reads on one file handle, so a slow client never holds up anyone.
import type { OpenBlob } from '../store/blob-store.js';

export interface BlobSource {
  readonly size: number;
  /** The whole blob, when it is in memory: a full response is then one write. */
  readonly bytes?: Buffer;
  read(buf: Buffer, position: number, length: number): Promise<number>;
  /**
   * The response reads nothing below `position`: a fill streaming through memory may drop
   * those bytes for this reader before its first read (a Range client waiting for bytes
   * that have not arrived must not pin the memory below them).
   */
  startingAt?(position: number): void;
  /** Exclusive end of the bytes that may be sent now (a fill holds back its last byte until verified). */
  available(): number;
  /** Set once the bytes can never be completed or trusted; the response must be reset. */
  failure(): Error | null;
  /** Resolves when available() grows or the source fails. */
  waitForMore(): Promise<void>;
  release(): Promise<void>;
}

export function fileSource(blob: OpenBlob): BlobSource {
  const size = blob.entry.size;
  return {
    size,
    read: async (buf, position, length) => (await blob.fh.read(buf, 0, length, position)).bytesRead,
    available: () => size,
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
    failure: () => null,
    waitForMore: () => Promise.resolve(),
    release: () => Promise.resolve(),
  };
}
