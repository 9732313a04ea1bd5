// Manifests and tags of the mock origin. Manifest bytes are blobs in the blob
// storage (as in distribution); this index keeps, per repository, the tags and
// the media type of each manifest. A directory store persists it as JSON.
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MockError } from './errors.js';
import { isDigest } from './names.js';
import { storeBytes, type BlobStorage } from './storage.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const KNOWN = new Set<string>(Object.values(MEDIA));
const INDEX_TYPES = new Set<string>([MEDIA.dockerList, MEDIA.ociIndex]);

interface RepoState {
  tags: Record<string, string>;
  /** digest → media type */
  manifests: Record<string, string>;
  /** subject digest → descriptors of the manifests that name it as `subject` (referrers API). */
  referrers?: Record<string, ReferrerDescriptor[]>;
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

interface Descriptor {
  digest: string;
  mediaType?: string;
}

/** The blobs and child manifests a manifest refers to. */
function references(mediaType: string, doc: Record<string, unknown>): { blobs: string[]; manifests: string[] } {
  const list = (v: unknown): Descriptor[] => (Array.isArray(v) ? v.filter(isDescriptor) : []);
  if (INDEX_TYPES.has(mediaType)) return { blobs: [], manifests: list(doc['manifests']).map((d) => d.digest) };
  const blobs = list(doc['layers']).map((d) => d.digest);
  const config = doc['config'];
  if (isDescriptor(config)) blobs.unshift(config.digest);
  return { blobs, manifests: [] };
}

/** The descriptor a referrers list carries for a manifest: artifactType, else its config's media type. */
function referrerOf(doc: Record<string, unknown>, mediaType: string, digest: string, size: number): ReferrerDescriptor {
  const d: ReferrerDescriptor = { mediaType, digest, size };
  const config = doc['config'];
  const artifactType =
    typeof doc['artifactType'] === 'string'
      ? doc['artifactType']
      : isDescriptor(config) && typeof config.mediaType === 'string'
        ? config.mediaType
        : undefined;
  if (artifactType !== undefined) d.artifactType = artifactType;
  const annotations = doc['annotations'];
  if (typeof annotations === 'object' && annotations !== null) d.annotations = annotations as Record<string, string>;
  return d;
}

function isDescriptor(v: unknown): v is Descriptor {
  return typeof v === 'object' && v !== null && typeof (v as { digest?: unknown }).digest === 'string';
}

export class ManifestIndex {
  private readonly repos = new Map<string, RepoState>();
  /** Blobs uploaded (or mounted, or seeded) into each repository since start. */
  private readonly uploaded = new Map<string, Set<string>>();
  private saving: Promise<void> = Promise.resolve();
  private readonly file: string | undefined;

  constructor(
    private readonly blobs: BlobStorage,
    dir?: string,
  ) {
    this.file = dir === undefined ? undefined : join(dir, 'manifests.json');
  }

  async init(): Promise<void> {
    if (this.file === undefined) return;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return;
    }
    const data = JSON.parse(text) as Record<string, RepoState>;
    for (const [name, st] of Object.entries(data)) this.repos.set(name, st);
  }

  repositories(): string[] {
    return [...this.repos.keys()].sort();
  }

  tags(name: string): string[] | undefined {
    const st = this.repos.get(name);
    return st === undefined ? undefined : Object.keys(st.tags).sort();
  }

  /** Resolves a tag or digest in repository `name`. */
  async get(name: string, reference: string): Promise<StoredManifest | undefined> {
    const st = this.repos.get(name);
    if (st === undefined) return undefined;
    const digest = isDigest(reference) ? reference : st.tags[reference];
    if (digest === undefined) return undefined;
    const mediaType = st.manifests[digest];
    if (mediaType === undefined) return undefined;
    const bytes = await this.blobs.readAll(digest);
    return bytes === undefined ? undefined : { digest, mediaType, bytes };
  }

  /** Records a blob pushed into `name` (an upload, a mount, a seed). */
  noteBlob(name: string, digest: string): void {
    let set = this.uploaded.get(name);
    if (set === undefined) this.uploaded.set(name, (set = new Set()));
    set.add(digest);
  }

  /**
   * Whether `digest` belongs to repository `name`, as distribution links blobs to a
   * repository: pushed there, or referenced by (or being) one of its manifests.
   */
  async holdsBlob(name: string, digest: string): Promise<boolean> {
    if (this.uploaded.get(name)?.has(digest) === true) return true;
    const st = this.repos.get(name);
    if (st === undefined) return false;
    if (st.manifests[digest] !== undefined) return true;
    for (const [d, mediaType] of Object.entries(st.manifests)) {
      const bytes = await this.blobs.readAll(d);
      if (bytes === undefined) continue;
      try {
        const doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
        if (references(mediaType, doc).blobs.includes(digest)) return true;
      } catch {
        // not JSON: refers to nothing
      }
    }
    return false;
  }

  /** Removes a tag (the manifest stays, by digest); false when there was no such tag. */
  async untag(name: string, tag: string): Promise<boolean> {
    const st = this.repos.get(name);
    if (st?.tags[tag] === undefined) return false;
    delete st.tags[tag];
    await this.save();
    return true;
  }

  /** The manifests in `name` whose `subject` is `digest` (OCI distribution 1.1, "Listing Referrers"). */
  referrers(name: string, digest: string): ReferrerDescriptor[] {
    return this.repos.get(name)?.referrers?.[digest] ?? [];
  }

  /**
   * Stores a manifest under `reference` (a tag or its own digest). `contentType`
   * wins over the body's `mediaType`, as in distribution.
   */
  async put(
    name: string,
    reference: string,
    contentType: string | undefined,
    bytes: Buffer,
    opts: { verifyRefs: boolean },
  ): Promise<StoredManifest> {
    let doc: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(bytes.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      doc = parsed as Record<string, unknown>;
    } catch (err) {
      throw new MockError('MANIFEST_INVALID', { detail: 'manifest is not a JSON object', cause: err });
    }
    const declared = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : undefined;
    const ct = contentType?.split(';')[0]?.trim();
    const mediaType = ct !== undefined && KNOWN.has(ct) ? ct : (declared ?? ct);
    if (mediaType === undefined || !KNOWN.has(mediaType)) {
      throw new MockError('MANIFEST_INVALID', { detail: { mediaType: mediaType ?? null } });
    }
    if (doc['schemaVersion'] !== 2) throw new MockError('MANIFEST_INVALID', { detail: 'schemaVersion must be 2' });
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (isDigest(reference) && reference !== digest) {
      throw new MockError('DIGEST_INVALID', { detail: { expected: reference, actual: digest } });
    }
    if (opts.verifyRefs) {
      const refs = references(mediaType, doc);
      const st = this.repos.get(name);
      const missing: string[] = [];
      for (const d of refs.blobs) if (!isDigest(d) || (await this.blobs.statBlob(d)) === undefined) missing.push(d);
      for (const d of refs.manifests) if (st?.manifests[d] === undefined) missing.push(d);
      if (missing.length > 0) throw new MockError('MANIFEST_BLOB_UNKNOWN', { detail: { missing } });
    }
    await storeBytes(this.blobs, bytes);
    let st = this.repos.get(name);
    if (st === undefined) {
      st = { tags: {}, manifests: {} };
      this.repos.set(name, st);
    }
    st.manifests[digest] = mediaType;
    if (!isDigest(reference)) st.tags[reference] = digest;
    const subject = doc['subject'];
    if (isDescriptor(subject)) {
      const refs = (st.referrers ??= {});
      const list = (refs[subject.digest] ??= []);
      if (!list.some((d) => d.digest === digest)) list.push(referrerOf(doc, mediaType, digest, bytes.length));
    }
    await this.save();
    return { digest, mediaType, bytes };
  }

  /** Writes the index (temp file + rename), one write at a time. */
  private save(): Promise<void> {
    const file = this.file;
    if (file === undefined) return Promise.resolve();
    const next = this.saving.then(async () => {
      const tmp = `${file}.tmp`;
      await writeFile(tmp, JSON.stringify(Object.fromEntries(this.repos)));
      await rename(tmp, file);
    });
    this.saving = next.catch(() => undefined);
    return next;
  }
}
