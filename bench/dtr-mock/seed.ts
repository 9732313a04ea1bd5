// Seeding the mock origin without a push: blobs from bytes or files, manifests,
// and whole OCI image layouts (OCI image-layout spec: oci-layout, index.json, blobs/).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MockError } from './errors.js';
import type { ManifestIndex } from './manifests.js';
import { checkName, isDigest, splitDigest } from './names.js';
import { storeBytes, storeFile, type BlobStorage } from './storage.js';

export async function seedBlob(
  storage: BlobStorage,
  name: string,
  content: Buffer | string,
): Promise<{ digest: string; size: number }> {
  checkName(name);
  if (typeof content === 'string') return storeFile(storage, content);
  return { digest: await storeBytes(storage, content), size: content.length };
}

export async function seedManifest(
  manifests: ManifestIndex,
  name: string,
  reference: string,
  manifest: Buffer | string | object,
  mediaType: string | undefined,
  verifyRefs: boolean,
): Promise<{ digest: string; size: number }> {
  checkName(name);
  const bytes = Buffer.isBuffer(manifest)
    ? manifest
    : Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  const m = await manifests.put(name, reference, mediaType, bytes, { verifyRefs });
  return { digest: m.digest, size: bytes.length };
}

interface Desc {
  digest: string;
  mediaType?: string;
  annotations?: Record<string, string>;
}

function descriptors(v: unknown): Desc[] {
  return Array.isArray(v)
    ? v.filter((d): d is Desc => typeof d === 'object' && d !== null && isDigest((d as Desc).digest))
    : [];
}

/**
 * Copies an OCI image layout into repository `name`: every blob the layout's
 * manifests reference, the manifests, and `tag` for each top-level manifest
 * (its `org.opencontainers.image.ref.name` when `tag` is not given).
 */
export async function seedOciLayout(
  storage: BlobStorage,
  manifests: ManifestIndex,
  layout: string,
  name: string,
  tag?: string,
): Promise<{ digest: string; tag: string }[]> {
  checkName(name);
  const blobPath = (d: string): string => {
    const [alg, hex] = splitDigest(d);
    return join(layout, 'blobs', alg, hex);
  };
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests?: unknown };
  const out: { digest: string; tag: string }[] = [];

  const pushManifest = async (d: Desc): Promise<string> => {
    const bytes = await readFile(blobPath(d.digest));
    const doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    for (const child of descriptors(doc['manifests'])) await pushManifest(child);
    const blobs = descriptors(doc['layers']);
    const config = doc['config'];
    if (typeof config === 'object' && config !== null && isDigest((config as Desc).digest))
      blobs.unshift(config as Desc);
    for (const b of blobs) await storeFile(storage, blobPath(b.digest));
    const m = await manifests.put(name, d.digest, d.mediaType ?? (doc['mediaType'] as string | undefined), bytes, {
      verifyRefs: true,
    });
    return m.digest;
  };

  for (const d of descriptors(index.manifests)) {
    const t = tag ?? d.annotations?.['org.opencontainers.image.ref.name'];
    const digest = await pushManifest(d);
    if (t !== undefined) {
      const bytes = await readFile(blobPath(digest));
      await manifests.put(name, t, d.mediaType, bytes, { verifyRefs: false });
      out.push({ digest, tag: t });
    }
  }
  if (out.length === 0 && tag !== undefined)
    throw new MockError('MANIFEST_UNKNOWN', { detail: 'layout has no manifests' });
  return out;
}
