// Reads back an OCI image layout written by a client (skopeo, registry-client): the
// manifest index.json names, its config and layer digests, and a hash check of every
// blob file, so a pull can be compared with what was pushed.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface LayoutImage {
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  /** Bytes of config and layers together. */
  blobBytes: number;
}

interface Desc {
  digest: string;
  size: number;
}

export function blobPath(layoutDir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return join(layoutDir, 'blobs', alg ?? '', hex ?? '');
}

/** The image of the first manifest in `index.json` (or the one tagged `tag`). */
export async function readLayoutImage(layoutDir: string, tag?: string): Promise<LayoutImage> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests?: Array<Desc & { annotations?: Record<string, string> }>;
  };
  const entries = index.manifests ?? [];
  const top =
    tag === undefined ? entries[0] : entries.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (top === undefined)
    throw new Error(`${layoutDir}/index.json names no manifest${tag === undefined ? '' : ` tagged ${tag}`}`);
  const manifest = JSON.parse(await readFile(blobPath(layoutDir, top.digest), 'utf8')) as {
    config?: Desc;
    layers?: Desc[];
  };
  if (manifest.config === undefined || !Array.isArray(manifest.layers))
    throw new Error(`${top.digest} is not an image manifest`);
  return {
    manifestDigest: top.digest,
    configDigest: manifest.config.digest,
    layerDigests: manifest.layers.map((l) => l.digest),
    blobBytes: manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0),
  };
}

/** sha256 of a file, streamed. */
export async function fileDigest(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) h.update(c);
  });
  return `sha256:${h.digest('hex')}`;
}

/** Digests whose blob file in the layout does not hash to its name (empty: all good). */
export async function badBlobs(layoutDir: string, digests: string[]): Promise<string[]> {
  const bad: string[] = [];
  for (const d of digests) {
    const actual = await fileDigest(blobPath(layoutDir, d)).catch(() => 'missing');
    if (actual !== d) bad.push(d);
  }
  return bad;
}
