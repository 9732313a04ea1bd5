// Conditional requests on blobs and manifests (RFC 9110 §13), whose entity tag is
// `"<digest>"`: one reading for DTR mode and mirror mode alike.
import type { RequestRecord } from './context.js';
import { header, type Req, type ResLike } from './http-types.js';
import { blobHeaders } from './respond.js';

/**
 * If-None-Match (§13.1.2): a list of entity tags, compared weakly, against `"<digest>"`, or
 * `*`, which matches any current representation: `exists` says whether the caller knows of
 * one (a stored copy, or an upstream that answered 200). `bareDigest`: an unquoted digest
 * matches too, as distribution takes it for manifests (not for blobs, which it leaves to
 * Go's ServeContent).
 */
export function notModified(req: Req, digest: string, exists: boolean, bareDigest = false): boolean {
  const field = header(req.headers, 'if-none-match');
  if (field === undefined) return false;
  if (field.trim() === '*') return exists;
  return field.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '');
    return t === `"${digest}"` || (bareDigest && t === digest);
  });
}

/**
 * The Range field to honour, or undefined for the whole representation: GET is the only
 * method with range handling (§14.2: a HEAD ignores Range), and an If-Range that does not
 * match (§13.1.5) means the whole blob. If-Range compares strongly with `"<digest>"`; a date
 * never matches, since blobs carry no Last-Modified.
 */
export function honouredRange(req: Req, digest: string): string | undefined {
  if (req.method === 'HEAD') return undefined;
  const range = header(req.headers, 'range');
  if (range === undefined) return undefined;
  const ifRange = header(req.headers, 'if-range');
  return ifRange === undefined || ifRange.trim() === `"${digest}"` ? range : undefined;
}

/**
 * A blob's `304` when If-None-Match names it, or is `*` and the blob `exists` (DTR and mirror
 * mode); false when it does not match.
 */
export function answeredNotModified(
  req: Req,
  res: ResLike,
  digest: string,
  rec: RequestRecord,
  exists: boolean,
): boolean {
  if (!notModified(req, digest, exists)) return false;
  rec.outcome = 'not-modified';
  res.writeHead(304, blobHeaders(digest));
  res.end();
  return true;
}
