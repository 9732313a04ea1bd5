// The /v2/ API of the mock origin: the base check, manifests, tags, and the
// dispatch of blob and upload paths (distribution spec, "Endpoints").
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, challenge, principalUser } from './access.js';
import { parseBearer } from './auth.js';
import { handleBlob } from './blobs.js';
import { API_VERSION, readSmallBody, sendJson, type MockContext, type RequestState } from './context.js';
import { MockError } from './errors.js';
import { MEDIA } from './manifests.js';
import { checkName, isDigest, isTag } from './names.js';
import { continueUpload, startUpload } from './uploads.js';

const MANIFEST_LIMIT = 4 * 1024 * 1024;

/** `GET /v2/`: 200 with a valid registry token, else the challenge. */
async function base(ctx: MockContext, req: IncomingMessage, res: ServerResponse, rq: RequestState): Promise<void> {
  if (ctx.knobs.tokens) {
    const bearer = parseBearer(req);
    const p = bearer === undefined ? undefined : await ctx.tokens.verify(bearer);
    if (p === undefined) {
      throw new MockError('UNAUTHORIZED', {
        headers: challenge(ctx, undefined, bearer === undefined ? undefined : 'invalid_token'),
      });
    }
    rq.user = p.sub === '' ? null : p.sub;
  }
  sendJson(res, 200, {});
}

function checkReference(ref: string): string {
  if (!isDigest(ref) && !isTag(ref)) {
    throw new MockError(ref.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', { detail: { reference: ref } });
  }
  return ref;
}

async function manifest(
  ctx: MockContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rawName: string,
  rawRef: string,
  rq: RequestState,
): Promise<void> {
  const name = checkName(rawName);
  const ref = checkReference(rawRef);
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') {
    const status = ctx.knobs.manifestStatus;
    if (status !== null) {
      throw new MockError(status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', {
        status,
        message: 'injected fault: manifests unavailable',
      });
    }
    rq.user = principalUser(await authorize(ctx, req, url, name, 'pull', { rq }));
    const m = await ctx.manifests.get(name, ref);
    if (m === undefined) throw new MockError('MANIFEST_UNKNOWN', { detail: { name, reference: ref } });
    res.writeHead(200, {
      ...API_VERSION,
      'Content-Type': m.mediaType,
      'Content-Length': m.bytes.length,
      'Docker-Content-Digest': m.digest,
      ETag: `"${m.digest}"`,
    });
    res.end(method === 'HEAD' ? undefined : m.bytes);
    return;
  }
  if (method === 'PUT') {
    rq.user = principalUser(await authorize(ctx, req, url, name, 'push', { rq }));
    const body = await readSmallBody(req, MANIFEST_LIMIT);
    const m = await ctx.manifests.put(name, ref, req.headers['content-type'], body, {
      verifyRefs: ctx.verifyManifestRefs,
    });
    res.writeHead(201, {
      ...API_VERSION,
      Location: `/v2/${name}/manifests/${m.digest}`,
      'Docker-Content-Digest': m.digest,
      'Content-Length': 0,
    });
    res.end();
    return;
  }
  throw new MockError('UNSUPPORTED');
}

/** `GET /v2/<name>/tags/list[?n=&last=]` */
async function tags(
  ctx: MockContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rawName: string,
  rq: RequestState,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new MockError('UNSUPPORTED');
  const name = checkName(rawName);
  rq.user = principalUser(await authorize(ctx, req, url, name, 'pull', { rq }));
  let all = ctx.manifests.tags(name);
  if (all === undefined) throw new MockError('NAME_UNKNOWN', { detail: { name } });
  const last = url.searchParams.get('last');
  if (last !== null) all = all.filter((t) => t > last);
  const nParam = url.searchParams.get('n');
  const n = nParam === null ? undefined : Number(nParam);
  const headers: Record<string, string> = {};
  if (n !== undefined && Number.isInteger(n) && n >= 0 && all.length > n) {
    all = all.slice(0, n);
    const next = all[all.length - 1];
    if (next !== undefined)
      headers['Link'] = `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(next)}>; rel="next"`;
  }
  sendJson(res, 200, { name, tags: all }, headers);
}

/** `GET /v2/<name>/referrers/<digest>[?artifactType=]`: an OCI index of the manifests naming it as subject. */
async function referrers(
  ctx: MockContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rawName: string,
  rawDigest: string,
  rq: RequestState,
): Promise<void> {
  // A registry without the API answers 404, and clients fall back to the tag schema.
  if (!ctx.referrersApi) throw new MockError('NOT_FOUND', { message: 'unknown registry endpoint' });
  if (req.method !== 'GET') throw new MockError('UNSUPPORTED');
  const name = checkName(rawName);
  if (!isDigest(rawDigest)) throw new MockError('DIGEST_INVALID', { detail: { digest: rawDigest } });
  rq.user = principalUser(await authorize(ctx, req, url, name, 'pull', { rq }));
  const type = url.searchParams.get('artifactType');
  const all = ctx.manifests.referrers(name, rawDigest);
  const manifests = type === null ? all : all.filter((d) => d.artifactType === type);
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests }));
  res.writeHead(200, {
    ...API_VERSION,
    'Content-Type': MEDIA.ociIndex,
    'Content-Length': body.length,
    ...(type === null ? {} : { 'OCI-Filters-Applied': 'artifactType' }),
  });
  res.end(body);
}

/** Routes a `/v2/...` path; throws NOT_FOUND for anything else under /v2/. */
export async function handleRegistry(
  ctx: MockContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rq: RequestState,
): Promise<void> {
  const path = url.pathname;
  if (path === '/v2/' || path === '/v2') {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new MockError('UNSUPPORTED');
    await base(ctx, req, res, rq);
    return;
  }
  let m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path);
  if (m !== null) return startUpload(ctx, req, res, url, m[1] ?? '', rq);
  m = /^\/v2\/(.+)\/blobs\/uploads\/([A-Za-z0-9-]+)$/.exec(path);
  if (m !== null) return continueUpload(ctx, req, res, url, m[1] ?? '', m[2] ?? '', rq);
  m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
  if (m !== null) return handleBlob(ctx, req, res, url, m[1] ?? '', m[2] ?? '', rq);
  m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (m !== null) return manifest(ctx, req, res, url, m[1] ?? '', m[2] ?? '', rq);
  m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path);
  if (m !== null) return referrers(ctx, req, res, url, m[1] ?? '', m[2] ?? '', rq);
  m = /^\/v2\/(.+)\/tags\/list$/.exec(path);
  if (m !== null) return tags(ctx, req, res, url, m[1] ?? '', rq);
  throw new MockError('NOT_FOUND', { message: 'unknown registry endpoint' });
}
