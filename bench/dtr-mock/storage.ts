// Blob storage of the mock origin: in memory, or in a directory. Uploads and
// seeding stream through a hash into the target, so a directory store never
// holds a whole layer in memory; the memory store holds bytes by design.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { splitDigest } from './names.js';

const READ_CHUNK = 1024 * 1024;

/** An upload in progress (distribution spec, "Pushing blobs"). */
export interface UploadTarget {
  readonly id: string;
  /** Bytes received so far. */
  readonly size: number;
  /** Streams `src` onto the end of the upload; resolves when all of it is stored. */
  append(src: AsyncIterable<Buffer> | Readable): Promise<void>;
  /** Checks the bytes against `digest` and publishes them; false (and the upload gone) on a mismatch. */
  finalize(digest: string): Promise<boolean>;
  abort(): Promise<void>;
}

export interface BlobStorage {
  readonly kind: 'memory' | 'directory';
  init(): Promise<void>;
  /** Size of a stored blob, or undefined. */
  statBlob(digest: string): Promise<number | undefined>;
  /** Bytes `start..end` (inclusive) of a stored blob. */
  readBlob(digest: string, start: number, end: number): Readable;
  readAll(digest: string): Promise<Buffer | undefined>;
  newUpload(): UploadTarget;
}

/** Tees `src` through `hash` while counting, for `pipeline`. */
function hashing(hash: Hash, count: (n: number) => void) {
  return async function* (source: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      hash.update(b);
      count(b.length);
      yield b;
    }
  };
}

function digestOf(alg: 'sha256' | 'sha512', parts: Buffer[]): string {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return `${alg}:${h.digest('hex')}`;
}

export class MemoryStorage implements BlobStorage {
  readonly kind = 'memory' as const;
  private readonly blobs = new Map<string, Buffer>();

  async init(): Promise<void> {}

  async statBlob(digest: string): Promise<number | undefined> {
    return this.blobs.get(digest)?.length;
  }

  readBlob(digest: string, start: number, end: number): Readable {
    const buf = this.blobs.get(digest);
    if (buf === undefined) throw new Error(`blob ${digest} vanished`);
    const slice = buf.subarray(start, end + 1);
    return Readable.from(
      (function* () {
        for (let o = 0; o < slice.length; o += READ_CHUNK) yield slice.subarray(o, o + READ_CHUNK);
      })(),
    );
  }

  async readAll(digest: string): Promise<Buffer | undefined> {
    return this.blobs.get(digest);
  }

  newUpload(): UploadTarget {
    const chunks: Buffer[] = [];
    let size = 0;
    const blobs = this.blobs;
    return {
      id: randomUUID(),
      get size() {
        return size;
      },
      async append(src) {
        for await (const c of src as AsyncIterable<Buffer | string>) {
          const b = typeof c === 'string' ? Buffer.from(c) : c;
          chunks.push(b);
          size += b.length;
        }
      },
      async finalize(digest) {
        const [alg] = splitDigest(digest);
        if (digestOf(alg, chunks) !== digest) {
          chunks.length = 0;
          return false;
        }
        blobs.set(digest, Buffer.concat(chunks));
        chunks.length = 0;
        return true;
      },
      async abort() {
        chunks.length = 0;
      },
    };
  }
}

export class DirectoryStorage implements BlobStorage {
  readonly kind = 'directory' as const;
  constructor(readonly root: string) {}

  private blobPath(digest: string): string {
    const [alg, hex] = splitDigest(digest);
    return join(this.root, 'blobs', alg, hex);
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(this.root, 'blobs', 'sha512'), { recursive: true });
    await mkdir(join(this.root, 'uploads'), { recursive: true });
  }

  async statBlob(digest: string): Promise<number | undefined> {
    try {
      const s = await stat(this.blobPath(digest));
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  }

  readBlob(digest: string, start: number, end: number): Readable {
    if (end < start) return Readable.from([]);
    return createReadStream(this.blobPath(digest), { start, end, highWaterMark: READ_CHUNK });
  }

  async readAll(digest: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.blobPath(digest));
    } catch {
      return undefined;
    }
  }

  newUpload(): UploadTarget {
    const id = randomUUID();
    const path = join(this.root, 'uploads', id);
    const sha256 = createHash('sha256');
    let size = 0;
    let started = false;
    const publish = (digest: string) => this.blobPath(digest);
    return {
      id,
      get size() {
        return size;
      },
      async append(src) {
        // The first append creates the file, so an empty upload still has one.
        const flags = started ? 'a' : 'w';
        started = true;
        await pipeline(
          src,
          hashing(sha256, (n) => {
            size += n;
          }),
          createWriteStream(path, { flags }),
        );
      },
      async finalize(digest) {
        if (!started) {
          started = true;
          await pipeline(Readable.from([]), createWriteStream(path));
        }
        const [alg] = splitDigest(digest);
        let actual: string;
        if (alg === 'sha256') {
          actual = `sha256:${sha256.digest('hex')}`;
        } else {
          const h = createHash('sha512');
          await pipeline(
            createReadStream(path, { highWaterMark: READ_CHUNK }),
            async (source: AsyncIterable<Buffer>) => {
              for await (const c of source) h.update(c);
            },
          );
          actual = `sha512:${h.digest('hex')}`;
        }
        if (actual !== digest) {
          await rm(path, { force: true });
          return false;
        }
        // Same file system: the rename publishes the blob atomically.
        await rename(path, publish(digest));
        return true;
      },
      async abort() {
        await rm(path, { force: true });
      },
    };
  }
}

/** Stores `bytes` as a blob; returns its sha256 digest. */
export async function storeBytes(storage: BlobStorage, bytes: Buffer): Promise<string> {
  const digest = digestOf('sha256', [bytes]);
  if ((await storage.statBlob(digest)) !== undefined) return digest;
  const up = storage.newUpload();
  await up.append(Readable.from([bytes]));
  if (!(await up.finalize(digest))) throw new Error('storeBytes: digest mismatch after write');
  return digest;
}

/** Streams a file into storage (two passes: hash, then copy); returns digest and size. */
export async function storeFile(storage: BlobStorage, path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(path, { highWaterMark: READ_CHUNK }), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) {
      h.update(c);
      size += c.length;
    }
  });
  const digest = `sha256:${h.digest('hex')}`;
  if ((await storage.statBlob(digest)) === undefined) {
    const up = storage.newUpload();
    await up.append(createReadStream(path, { highWaterMark: READ_CHUNK }));
    if (!(await up.finalize(digest))) throw new Error(`storeFile: ${path} changed while it was stored`);
  }
  return { digest, size };
}
