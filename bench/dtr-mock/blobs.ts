// Blob GET/HEAD at the mock origin (docs/protocol.md §1 step 3, §4, §5): redirect to
// the user's content cache, or serve the bytes with Range, faults and throttling.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, principalUser, type Principal } from './access.js';
import { API_VERSION, type MockContext, type RequestState } from './context.js';
import { MockError } from './errors.js';
import { checkDigest, checkName } from './names.js';
import { sendBody } from './throttle.js';

/** A single byte range, inclusive (RFC 9110 §14.1.2). */
type RangeResult = { kind: 'full' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * Parses `Range`. Single ranges only: several ranges are answered with the
 * whole representation, which RFC 9110 §14.2 allows ("MAY ignore").
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return { kind: 'full' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'full' };
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end };
}

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

  const headers: Record<string, string | number> = {
    ...API_VERSION,
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000',
  };
  if (req.headers['if-none-match'] === `"${digest}"`) {
    res.writeHead(304, headers);
    res.end();
    outcome('served');
    return;
  }
  const range = parseRange(req.headers.range, size);
  if (range.kind === 'unsatisfiable') {
    outcome('failed');
    throw new MockError('RANGE_INVALID', { headers: { 'Content-Range': `bytes */${size}` } });
  }
  const start = range.kind === 'range' ? range.start : 0;
  const end = range.kind === 'range' ? range.end : size - 1;
  headers['Content-Length'] = end - start + 1;
  if (range.kind === 'range') headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  const status = range.kind === 'range' ? 206 : 200;

  if (method === 'HEAD') {
    res.writeHead(status, headers);
    res.end();
    outcome('served');
    return;
  }
  const src = ctx.storage.readBlob(digest, start, end);
  res.writeHead(status, headers);
  outcome('served');
  await sendBody(src, res, {
    bandwidth: () => ctx.knobs.bandwidth,
    fault,
    onBytes: (n) => ctx.stats.bytes(digest, n),
  });
}
