// GET|HEAD /v2/<name>/manifests/<reference> of a mirrored registry: the manifest from the
// source (store or upstream), negotiated against the client's Accept, with the headers a
// registry sends (Content-Type as stored, Content-Length, Docker-Content-Digest, ETag) and a
// Warning when the tag could not be revalidated.
import { RegistryError } from '../errors/registry.js';
import { header } from '../server/http-types.js';
import { API_VERSION } from '../server/respond.js';
import { notModified } from '../server/conditional.js';
import { parseDigest } from '../store/digest.js';
import { acceptedTypes, checkChild, negotiate } from './media.js';
import type { MirrorCall } from './mirror.js';

// distribution's reference grammar for tags.
const TAG = /^[\w][\w.-]{0,127}$/;
/** RFC 9111 §5.5 (obsoleted, still what clients and proxies print): stale, revalidation failed. */
const STALE_WARNING = '110 - "Response is Stale", 111 - "Revalidation Failed"';

export async function serveManifest({ mirror, repo, reference, req, res, rec }: MirrorCall): Promise<void> {
  const head = req.method === 'HEAD';
  const via = header(req.headers, 'via');
  const byTag = !reference.includes(':');
  if (byTag && !TAG.test(reference)) {
    throw new RegistryError('TAG_INVALID', { message: 'invalid tag', detail: { tag: reference.slice(0, 140) } });
  }
  let found = byTag
    ? await mirror.manifests.byTag(repo, reference, via)
    : await mirror.manifests.byDigest(repo, parseDigest(reference), via);
  const accept = acceptedTypes(req.headers.accept);
  const negotiated = negotiate(found.mediaType, found.bytes, accept, byTag);
  if (negotiated.kind === 'child') {
    const child = await mirror.manifests.byDigest(repo, parseDigest(negotiated.digest), via);
    checkChild(child.mediaType, accept);
    mirror.log.info(
      { repo, tag: reference, list: found.digest.value, child: child.digest.value },
      'manifest list rewritten to its linux/amd64 manifest for a client that accepts no lists',
    );
    found = { ...child, outcome: found.outcome };
  }
  rec.outcome = found.outcome;
  rec.digest = found.digest.value;
  const headers: Record<string, string | number> = {
    'Content-Type': found.mediaType,
    'Content-Length': found.bytes.length,
    'Docker-Content-Digest': found.digest.value,
    ETag: `"${found.digest.value}"`,
    ...API_VERSION,
  };
  if (found.outcome === 'stale') headers['Warning'] = STALE_WARNING;
  if (notModified(req, found.digest.value, true, true)) {
    const { 'Content-Length': _length, ...unchanged } = headers;
    res.writeHead(304, unchanged);
    res.end();
    return;
  }
  res.writeHead(200, headers);
  res.end(head ? undefined : found.bytes);
  rec.bytes = head ? 0 : found.bytes.length;
}
