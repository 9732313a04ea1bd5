// Manifest bytes: read from the upstream whole (they are small: at most 4 MiB, distribution's
// own limit), hashed as they arrive, and kept in the blob store under their digest like any
// blob, so expiry, the size cap and scrub treat them alike. Nothing is stored or served
// before its bytes hash to the digest it is stored under.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isRegistryError } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import type { BlobStore } from '../store/blob-store.js';
import type { Algorithm, Digest } from '../store/digest.js';
import { discardBody, type UpstreamResponse } from '../upstream/chain.js';

/** distribution's maxManifestBodySize. */
export const MANIFEST_LIMIT = 4 << 20;

/** The body of a manifest answer and the digest of its bytes under `algorithm`. */
export async function readManifestBody(
  res: UpstreamResponse,
  algorithm: Algorithm,
): Promise<{ bytes: Buffer; digest: string }> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > MANIFEST_LIMIT) {
    discardBody(res.body);
    throw gatewayError('status', `the upstream sent a manifest over ${MANIFEST_LIMIT} bytes`);
  }
  const hash = createHash(algorithm);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MANIFEST_LIMIT)
        throw gatewayError('status', `the upstream sent a manifest over ${MANIFEST_LIMIT} bytes`);
      // Hashed chunk by chunk as it arrives: no large buffer is hashed in one go.
      hash.update(chunk);
      chunks.push(chunk);
    }
  } catch (err) {
    discardBody(res.body);
    if (isRegistryError(err)) throw err;
    throw gatewayError('reset', 'the upstream broke off a manifest', err);
  }
  return { bytes: Buffer.concat(chunks, total), digest: `${algorithm}:${hash.digest('hex')}` };
}

export class ManifestContent {
  readonly #store: BlobStore;
  readonly #tmp: string;

  constructor(store: BlobStore, tmpDir: string) {
    this.#store = store;
    this.#tmp = tmpDir;
  }

  /** Whether the bytes are stored (expired ones count: they are still there to serve offline). */
  async has(d: Digest): Promise<boolean> {
    return (await this.#store.lookup(d, { includeExpired: true })) !== null;
  }

  /** The stored bytes, a pull of them; null when absent (or expired, unless `includeExpired`). */
  async read(d: Digest, includeExpired = false): Promise<Buffer | null> {
    const entry = await this.#store.lookup(d, { includeExpired });
    if (entry === null || entry.size > MANIFEST_LIMIT) return null;
    let bytes = await this.#store.smallBytes(entry);
    if (bytes === null) {
      const blob = await this.#store.open(entry);
      if (blob === null) return null;
      try {
        const buf = Buffer.allocUnsafe(entry.size);
        const { bytesRead } = await blob.fh.read(buf, 0, entry.size, 0);
        if (bytesRead !== entry.size) return null;
        bytes = buf;
      } finally {
        await blob.release();
      }
    }
    this.#store.touch(entry);
    return bytes;
  }

  /** Publishes verified bytes under their digest: temp file, fsync, rename, index. */
  async put(d: Digest, bytes: Buffer): Promise<void> {
    if ((await this.#store.lookup(d, { includeExpired: true })) !== null) return;
    const path = this.#store.layout.blobData(d);
    await mkdir(this.#tmp, { recursive: true });
    const tmp = join(this.#tmp, `manifest-${d.hex.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.#store.add(d, bytes.length);
  }
}
