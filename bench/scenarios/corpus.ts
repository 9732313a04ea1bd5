// The blobs of a run, written once into the mock's directory storage, which both mock
// processes (tokens on, tokens off) and the static peers read. Content is a random
// megabyte stamped with the blob's serial number and offset, so every blob (and every
// megabyte of it) is distinct without paying for a random number generator per byte.
import { createHash, randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectoryStorage } from '../dtr-mock/storage.js';

export const REPO = 'bench/app';
const CHUNK = 1 << 20;

export interface Blob {
  digest: string;
  size: number;
  /** The file the mock serves it from (for nginx and the naive Node peer). */
  file: string;
}

export class Corpus {
  readonly #storage: DirectoryStorage;
  readonly #base = randomBytes(CHUNK);
  #serial = 0;

  constructor(readonly root: string) {
    this.#storage = new DirectoryStorage(root);
  }

  async init(): Promise<void> {
    await this.#storage.init();
  }

  /** Where DirectoryStorage keeps a blob; checked after each write, so a layout change fails loudly. */
  fileOf(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  async add(size: number): Promise<Blob> {
    const serial = ++this.#serial;
    const base = this.#base;
    const hash = createHash('sha256');
    async function* bytes(): AsyncGenerator<Buffer> {
      for (let off = 0; off < size; off += CHUNK) {
        const chunk = Buffer.from(base.subarray(0, Math.min(CHUNK, size - off)));
        // 16 bytes of stamp: serial and offset (as far as a small blob has room for).
        const stamp = Buffer.alloc(16);
        stamp.writeUInt32BE(serial, 0);
        stamp.writeDoubleBE(off, 8);
        stamp.copy(chunk, 0, 0, Math.min(16, chunk.length));
        hash.update(chunk);
        yield chunk;
      }
    }
    const up = this.#storage.newUpload();
    await up.append(bytes());
    const digest = `sha256:${hash.digest('hex')}`;
    if (!(await up.finalize(digest))) throw new Error('corpus: blob digest mismatch after write');
    const file = this.fileOf(digest);
    await access(file).catch(() => {
      throw new Error(`corpus: the mock's storage layout changed (no ${file})`);
    });
    return { digest, size, file };
  }

  /** Adds blobs of the given sizes, a few at a time. */
  async addMany(sizes: number[], parallel = 8): Promise<Blob[]> {
    const out: Blob[] = new Array<Blob>(sizes.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        for (let i = next++; i < sizes.length; i = next++) out[i] = await this.add(sizes[i] ?? 0);
      }),
    );
    return out;
  }
}
