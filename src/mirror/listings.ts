// Listings of a mirrored registry: referrers (OCI distribution spec 1.1, "Listing Referrers")
// and tags (`/tags/list`, "Content Discovery"). Both are passed through to the upstream on
// every request and never kept, since they change as content is pushed. Every query
// parameter but `ns` goes upstream (filters, `n`, `last`, whatever a page link carries), and
// the upstream's `Link` to the next page is made to point back at this node. An upstream 404
// for referrers (no referrers API, or no such manifest) stays a 404, so that clients fall back
// to the referrers tag schema.
import { RegistryError } from '../errors/registry.js';
import { relayedError } from '../upstream/response.js';
import { header } from '../server/http-types.js';
import { API_VERSION } from '../server/respond.js';
import { parseDigest } from '../store/digest.js';
import { discardBody } from '../upstream/chain.js';
import { readManifestBody } from './content.js';
import { OCI_INDEX } from './media.js';
import type { MirrorCall } from './mirror.js';

export type Listing = 'referrers' | 'tags';

export async function serveListing(call: MirrorCall, listing: Listing): Promise<void> {
  const { mirror, repo, reference, query, req, res, rec } = call;
  let path = `/v2/${repo}/tags/list`;
  let accept = 'application/json';
  if (listing === 'referrers') {
    const digest = parseDigest(reference);
    rec.digest = digest.value;
    path = `/v2/${repo}/referrers/${digest.value}`;
    accept = OCI_INDEX;
  }
  const upstreamQuery = new URLSearchParams(query);
  upstreamQuery.delete('ns');
  const search = upstreamQuery.size === 0 ? '' : `?${upstreamQuery.toString()}`;
  const up = await mirror.upstream.request({
    method: 'GET',
    path: `${path}${search}`,
    repo,
    headers: { accept },
    via: header(req.headers, 'via'),
  });
  if (up.statusCode === 404 && listing === 'referrers') {
    discardBody(up.body);
    throw new RegistryError('NOT_FOUND', {
      message: 'the upstream has no referrers for this manifest, or no referrers API',
      detail: { name: repo, digest: reference },
    });
  }
  if (up.statusCode !== 200) throw await relayedError(up);
  // A listing is bounded like a manifest (pages keep it small).
  const { bytes } = await readManifestBody(up, 'sha256');
  const headers: Record<string, string | number> = {
    'Content-Type': String(up.headers['content-type'] ?? accept),
    'Content-Length': bytes.length,
    'Cache-Control': 'no-store',
    ...API_VERSION,
  };
  const filters = up.headers['oci-filters-applied'];
  if (typeof filters === 'string') headers['OCI-Filters-Applied'] = filters;
  const link = up.headers['link'];
  if (typeof link === 'string') headers['Link'] = localLink(link, call);
  rec.outcome = 'miss';
  res.writeHead(200, headers);
  res.end(bytes);
  rec.bytes = bytes.length;
}

/**
 * The next page's link made relative to this node, and kept on this registry the way the
 * client named it: with `ns`, or with the registry as the path's first component.
 */
function localLink(
  link: string,
  { mirror, query, prefixed }: Pick<MirrorCall, 'mirror' | 'query' | 'prefixed'>,
): string {
  return link.replace(/<([^>]*)>/, (_all, target: string) => {
    let url: URL;
    try {
      url = new URL(target, mirror.upstream.url);
    } catch {
      return '<>';
    }
    if (query.has('ns')) url.searchParams.set('ns', mirror.registry);
    const path =
      prefixed && url.pathname.startsWith('/v2/') ? `/v2/${mirror.registry}/${url.pathname.slice(4)}` : url.pathname;
    return `<${path}${url.search}>`;
  });
}
