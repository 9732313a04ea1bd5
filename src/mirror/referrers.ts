// GET /v2/<name>/referrers/<digest> of a mirrored registry (OCI distribution spec 1.1,
// "Listing Referrers"): passed through to the upstream on every request and never kept, since
// the list grows as signatures and SBOMs are pushed. An upstream 404 (no referrers API, or no
// such manifest) stays a 404, so that clients fall back to the referrers tag schema.
import { RegistryError } from '../errors/registry.js';
import { relayedError } from '../upstream/response.js';
import { header } from '../server/http-types.js';
import { API_VERSION } from '../server/respond.js';
import { parseDigest } from '../store/digest.js';
import { discardBody } from '../upstream/chain.js';
import { readManifestBody } from './content.js';
import { OCI_INDEX } from './media.js';
import type { Mirror, MirrorCall } from './mirror.js';

export async function serveReferrers({ mirror, repo, reference, query, req, res, rec }: MirrorCall): Promise<void> {
  const digest = parseDigest(reference);
  rec.digest = digest.value;
  const artifactType = query.get('artifactType');
  const search = artifactType === null ? '' : `?artifactType=${encodeURIComponent(artifactType)}`;
  const up = await mirror.upstream.request({
    method: 'GET',
    path: `/v2/${repo}/referrers/${digest.value}${search}`,
    repo,
    headers: { accept: OCI_INDEX },
    via: header(req.headers, 'via'),
  });
  if (up.statusCode === 404) {
    discardBody(up.body);
    throw new RegistryError('NOT_FOUND', {
      message: 'the upstream has no referrers for this manifest, or no referrers API',
      detail: { name: repo, digest: digest.value },
    });
  }
  if (up.statusCode !== 200) throw await relayedError(up);
  // A referrers list is an index: bounded like a manifest.
  const { bytes } = await readManifestBody(up, 'sha256');
  const headers: Record<string, string | number> = {
    'Content-Type': String(up.headers['content-type'] ?? OCI_INDEX),
    'Content-Length': bytes.length,
    'Cache-Control': 'no-store',
    ...API_VERSION,
  };
  const filters = up.headers['oci-filters-applied'];
  if (typeof filters === 'string') headers['OCI-Filters-Applied'] = filters;
  const link = up.headers['link'];
  if (typeof link === 'string') headers['Link'] = localLink(link, mirror, query.get('ns'));
  rec.outcome = 'miss';
  res.writeHead(200, headers);
  res.end(bytes);
  rec.bytes = bytes.length;
}

/** The next page's link made relative to this node (and kept on this registry with `ns`). */
function localLink(link: string, mirror: Mirror, ns: string | null): string {
  return link.replace(/<([^>]*)>/, (_all, target: string) => {
    let url: URL;
    try {
      url = new URL(target, mirror.upstream.url);
    } catch {
      return '<>';
    }
    if (ns !== null) url.searchParams.set('ns', mirror.registry);
    return `<${url.pathname}${url.search}>`;
  });
}
