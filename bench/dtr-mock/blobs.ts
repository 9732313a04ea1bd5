// Blob GET/HEAD at the mock origin (docs/protocol.md §1 step 3, §4, §5): redirect to
// the user's content cache, or serve the bytes with Range, faults and throttling. Range and
// the conditional fields are read by the cache's own code: the contract holds for the cache
// and the origin alike.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, principalUser, type Principal } from './access.js';
import { API_VERSION, type MockContext, type RequestState } from './context.js';
import { MockError } from './errors.js';
import { checkDigest, checkName } from './names.js';
import { honouredRange, notModified } from '../../src/server/conditional.js';
import { multipartLayout, parseRange, type ByteRange } from '../../src/server/range.js';
import { blobHeaders } from '../../src/server/respond.js';
import { sendBody, type SendBodyOptions } from './throttle.js';

export async function handleBlob(
  ctx: MockContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rawName: string,
  rawDigest: string,
  rq: RequestState,
): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    throw new MockError('UNSUPPORTED', { detail: 'blob deletion is not supported by the mock' });
  }
  const name = checkName(rawName);
  const digest = checkDigest(rawDigest);
  const outcome = (o: 'redirected' | 'served' | 'failed'): void => ctx.stats.blob(digest, method, o);
  let principal: Principal;
  try {
    principal = await authorize(ctx, req, url, name, 'pull', { redirectDigest: digest, rq });
  } catch (err) {
    outcome('failed');
    throw err;
  }
  rq.user = principalUser(principal);

  const size = await ctx.storage.statBlob(digest);
  // With scoped blobs (as distribution links them), a blob of another repository is unknown here.
  if (size === undefined || (ctx.scopeBlobs && !(await ctx.manifests.holdsBlob(name, digest)))) {
    outcome('failed');
    throw new MockError('BLOB_UNKNOWN', { detail: { digest } });
  }

  if (method === 'GET' && principal.kind === 'registry' && ctx.knobs.tokens) {
    const cache = ctx.caches.cacheFor(principal.sub);
    if (cache !== undefined) {
      const token = await ctx.keys.mint({ sub: principal.sub, name, digest, ttlSec: ctx.knobs.redirectTtlSec });
      res.writeHead(307, {
        ...API_VERSION,
        Location: `${cache.host}/v2/${name}/blobs/${digest}?token=${token}`,
        'Content-Length': 0,
      });
      res.end();
      outcome('redirected');
      return;
    }
  }

  // `refuse` faults are applied by the server, before latency and auth.
  const fault = ctx.faults.get(digest);
  if (ctx.faults.take503(digest)) {
    outcome('failed');
    throw new MockError('UNAVAILABLE', { message: 'injected fault: 503', headers: { 'Retry-After': '1' } });
  }

  const headers: Record<string, string | number> = blobHeaders(digest);
  if (notModified(req, digest, true)) {
    res.writeHead(304, headers);
    res.end();
    outcome('served');
    return;
  }
  const range = parseRange(honouredRange(req, digest), size);
  if (range.kind === 'unsatisfiable') {
    outcome('failed');
    throw new MockError('RANGE_INVALID', { headers: { 'Content-Range': `bytes */${size}` } });
  }
  const parts: ByteRange[] = range.kind === 'ranges' ? range.ranges : [{ start: 0, end: size - 1 }];
  const layout = parts.length > 1 ? multipartLayout(parts, size) : null;
  if (layout !== null) {
    headers['Content-Type'] = layout.contentType;
    headers['Content-Length'] = layout.length;
  } else {
    const only = parts[0]!;
    headers['Content-Length'] = only.end - only.start + 1;
    if (range.kind === 'ranges') headers['Content-Range'] = `bytes ${only.start}-${only.end}/${size}`;
  }
  res.writeHead(range.kind === 'ranges' ? 206 : 200, headers);
  outcome('served');
  if (method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const body: SendBodyOptions = {
    bandwidth: () => ctx.knobs.bandwidth,
    fault,
    onBytes: (n) => ctx.stats.bytes(digest, n),
  };
  if (layout === null) {
    await sendBody(ctx.storage.readBlob(digest, parts[0]!.start, parts[0]!.end), res, body);
    return;
  }
  // Each part goes through the same pacing and faults as a whole body would.
  for (const part of parts) {
    res.write(layout.partHead(part));
    const sent = await sendBody(ctx.storage.readBlob(digest, part.start, part.end), res, { ...body, end: false });
    if (sent !== 'done') return;
  }
  res.end(layout.tail);
}
