// Manifest media types: what the mirror asks its upstream for, what a manifest refers to
// (for retention), and `Accept` negotiation as distribution's GetManifest does it
// (registry/handlers/manifests.go): an OCI manifest or index goes only to a client that
// accepts it, else 404 MANIFEST_UNKNOWN; a Docker manifest list asked for by tag by a
// client that does not accept lists is replaced by its linux/amd64 image manifest.
import { RegistryError } from '../errors/registry.js';

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Sent upstream: every form we can store and negotiate, so one stored representation serves all clients. */
export const UPSTREAM_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(', ');

/** The media types a client accepts, parameters and q-values dropped (distribution ignores q too). */
export function acceptedTypes(header: string | string[] | undefined): ReadonlySet<string> {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out = new Set<string>();
  for (const v of values) {
    for (const part of v.split(',')) {
      const type = part.split(';')[0]?.trim().toLowerCase();
      if (type !== undefined && type !== '') out.add(type);
    }
  }
  return out;
}

/** The type part of a Content-Type, lower case. */
export function mediaTypeOf(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

export type Negotiated =
  | { kind: 'serve' }
  /** Serve this child manifest instead (a Docker list to a client that reads no lists). */
  | { kind: 'child'; digest: string };

/** What distribution would answer for a stored manifest of `mediaType`, before reading a child. */
export function negotiate(mediaType: string, bytes: Buffer, accept: ReadonlySet<string>, byTag: boolean): Negotiated {
  const type = mediaTypeOf(mediaType);
  if (type === OCI_MANIFEST && !accept.has(OCI_MANIFEST)) {
    throw new RegistryError('MANIFEST_UNKNOWN', {
      message: 'OCI manifest found, but accept header does not support OCI manifests',
    });
  }
  if (type === OCI_INDEX && !accept.has(OCI_INDEX)) {
    throw new RegistryError('MANIFEST_UNKNOWN', {
      message: 'OCI index found, but accept header does not support OCI indexes',
    });
  }
  if (type === DOCKER_LIST && byTag && !accept.has(DOCKER_LIST)) {
    const child = platformManifest(bytes, 'linux', 'amd64');
    if (child === null) throw new RegistryError('MANIFEST_UNKNOWN', { message: 'no linux/amd64 manifest in the list' });
    return { kind: 'child', digest: child };
  }
  const known = type === DOCKER_MANIFEST || type === DOCKER_LIST || type === OCI_MANIFEST || type === OCI_INDEX;
  // Another type (an artifact, a schema1 manifest): only to a client that names it.
  if (!known && !accept.has(type) && !accept.has('*/*')) {
    throw new RegistryError('MANIFEST_UNKNOWN', {
      message: `${type} manifest found, but accept header does not support it`,
    });
  }
  return { kind: 'serve' };
}

/** The child of a list a client without list support gets, checked once it is read. */
export function checkChild(mediaType: string, accept: ReadonlySet<string>): void {
  if (mediaTypeOf(mediaType) === DOCKER_MANIFEST && !accept.has(DOCKER_MANIFEST)) {
    throw new RegistryError('MANIFEST_INVALID', { message: 'Schema 2 manifest not supported by client' });
  }
}

interface Descriptor {
  digest: string;
  platform?: { os?: unknown; architecture?: unknown };
}

function descriptors(v: unknown): Descriptor[] {
  if (!Array.isArray(v)) return [];
  return v.filter(
    (d): d is Descriptor => typeof d === 'object' && d !== null && typeof (d as Descriptor).digest === 'string',
  );
}

function parse(bytes: Buffer): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function platformManifest(bytes: Buffer, os: string, arch: string): string | null {
  const doc = parse(bytes);
  const found = descriptors(doc?.['manifests']).find((d) => d.platform?.os === os && d.platform.architecture === arch);
  return found?.digest ?? null;
}

/** What a manifest refers to: child manifests (an index) and blobs (config, layers). */
export function references(bytes: Buffer): { manifests: string[]; blobs: string[] } {
  const doc = parse(bytes);
  if (doc === null) return { manifests: [], blobs: [] };
  const manifests = descriptors(doc['manifests']).map((d) => d.digest);
  const blobs = descriptors(doc['layers']).map((d) => d.digest);
  const config = descriptors([doc['config']])[0];
  if (config !== undefined) blobs.unshift(config.digest);
  return { manifests, blobs };
}
