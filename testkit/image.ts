// Generates OCI image layouts (OCI image-layout spec: `oci-layout`, `index.json`,
// `blobs/sha256/…`) with uncompressed tar layers of about the requested sizes.
// Layer bytes come from AES-256-CTR over zeros, keyed by the seed: fast,
// incompressible, deterministic per seed, and streamed to disk in 1 MiB chunks.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const CHUNK = 1024 * 1024;
const BLOCK = 512;
/** Header block + two zero blocks at the end of the archive (POSIX ustar). */
const TAR_OVERHEAD = 3 * BLOCK;
/** A fixed mtime keeps layers and config reproducible per seed. */
const EPOCH = new Date('2024-01-01T00:00:00Z');

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

export interface CreateOciImageOptions {
  /** Approximate size in bytes of each layer (tar), in order. */
  layers: number[];
  /** Same seed, same bytes and digests. Random when omitted. */
  seed?: string | number;
  /** The `org.opencontainers.image.ref.name` of the manifest; `latest` by default. */
  tag?: string;
}

export interface OciImage {
  dir: string;
  tag: string;
  manifestDigest: string;
  manifestSize: number;
  configDigest: string;
  configSize: number;
  layerDigests: string[];
  /** Actual layer sizes in bytes, in the order of `layerDigests`. */
  sizes: number[];
}

/** A ustar header for one regular file (POSIX.1-2001 "ustar Interchange Format"). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const field = (off: number, len: number, value: string): void => {
    h.write(value, off, len, 'ascii');
  };
  const octal = (off: number, len: number, n: number): void =>
    field(off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
  field(0, 100, name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, Math.floor(EPOCH.getTime() / 1000));
  field(148, 8, '        '); // checksum is computed with this field as spaces
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  field(265, 32, 'root');
  field(297, 32, 'root');
  let sum = 0;
  for (const b of h) sum += b;
  field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** The bytes of one layer: a tar holding one file of pseudo-random content. */
async function* layerBytes(seed: string, index: number, requested: number): AsyncGenerator<Buffer> {
  const contentLen = Math.max(0, requested - TAR_OVERHEAD);
  yield tarHeader(`data/layer-${index}.bin`, contentLen);
  const key = createHash('sha256').update(`${seed}/${index}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let left = contentLen; left > 0; left -= CHUNK) {
    yield cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left));
  }
  const pad = (BLOCK - (contentLen % BLOCK)) % BLOCK;
  yield Buffer.alloc(pad + 2 * BLOCK);
}

/** Streams `source` into `blobs/sha256/<hex>`; returns its digest and size. */
async function writeBlob(blobsDir: string, source: AsyncIterable<Buffer>): Promise<{ digest: string; size: number }> {
  const tmp = join(blobsDir, `.tmp-${randomBytes(8).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    source,
    async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        hash.update(c);
        size += c.length;
        yield c;
      }
    },
    createWriteStream(tmp),
  );
  const hex = hash.digest('hex');
  await rename(tmp, join(blobsDir, hex));
  return { digest: `sha256:${hex}`, size };
}

async function writeJsonBlob(
  blobsDir: string,
  value: unknown,
): Promise<{ digest: string; size: number; bytes: Buffer }> {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await writeFile(join(blobsDir, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length, bytes };
}

/** Writes an OCI image layout with one manifest, one config and the given layers. */
export async function createOciImage(dir: string, o: CreateOciImageOptions): Promise<OciImage> {
  const seed = o.seed === undefined ? randomBytes(16).toString('hex') : String(o.seed);
  const tag = o.tag ?? 'latest';
  const blobsDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });

  const layers: { digest: string; size: number }[] = [];
  for (const [i, requested] of o.layers.entries()) {
    layers.push(await writeBlob(blobsDir, layerBytes(seed, i, requested)));
  }
  const config = await writeJsonBlob(blobsDir, {
    created: EPOCH.toISOString(),
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Labels: { 'dtr-cache.seed': seed },
    },
    // Uncompressed layers: each diff_id is the layer digest itself.
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: layers.map((_, i) => ({ created: EPOCH.toISOString(), created_by: `dtr-cache bench layer ${i}` })),
  });
  const manifest = await writeJsonBlob(blobsDir, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER_TAR, digest: l.digest, size: l.size })),
  });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: manifest.digest,
          size: manifest.size,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return {
    dir,
    tag,
    manifestDigest: manifest.digest,
    manifestSize: manifest.size,
    configDigest: config.digest,
    configSize: config.size,
    layerDigests: layers.map((l) => l.digest),
    sizes: layers.map((l) => l.size),
  };
}
