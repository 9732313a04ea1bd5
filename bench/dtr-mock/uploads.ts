// Blob uploads at the mock origin (distribution spec, "Pushing blobs"):
// POST to start (or monolithic with ?digest=, or ?mount=&from=), chunked PATCH,
// PUT ?digest= to finish. Bodies stream into the storage's upload target.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, principalUser } from './access.js';
import { allows, parseBearer } from './auth.js';
import { API_VERSION, type MockContext, type RequestState, type UploadSession } from './context.js';
import { MockError } from './errors.js';
import { checkDigest, checkName, isDigest, isName } from './names.js';

function uploadHeaders(name: string, s: UploadSession): Record<string, string | number> {
  return {
    ...API_VERSION,
    Location: `/v2/${name}/blobs/uploads/${s.target.id}`,
    'Docker-Upload-UUID': s.target.id,
    // distribution reports an empty upload as 0-0 too.
    Range: `0-${Math.max(0, s.target.size - 1)}`,
    'Content-Length': 0,
  };
}

function created(res: ServerResponse, name: string, digest: string): void {
  res.writeHead(201, {
    ...API_VERSION,
    Location: `/v2/${name}/blobs/${digest}`,
    'Docker-Content-Digest': digest,
    'Content-Length': 0,
  });
  res.end();
}

/** Streams the request body into the session; an aborted body ends the session. */
async function appendBody(ctx: MockContext, req: IncomingMessage, s: UploadSession): Promise<void> {
  if (s.busy) throw new MockError('BLOB_UPLOAD_INVALID', { message: 'upload is busy with another request' });
  s.busy = true;
  s.touched = Date.now();
  try {
    await s.target.append(req);
  } catch (err) {
    ctx.uploads.delete(s.target.id);
    await s.target.abort().catch(() => undefined);
    throw new MockError('BLOB_UPLOAD_INVALID', { message: 'upload body failed', cause: err });
  } finally {
    s.busy = false;
    s.touched = Date.now();
  }
}

async function finish(ctx: MockContext, res: ServerResponse, s: UploadSession, digest: string): Promise<void> {
  ctx.uploads.delete(s.target.id);
  if (!(await s.target.finalize(digest))) {
    throw new MockError('DIGEST_INVALID', { detail: { digest } });
  }
  ctx.manifests.noteBlob(s.name, digest);
  created(res, s.name, digest);
}

const IDLE_UPLOAD_MS = 60 * 60 * 1000;

function newSession(ctx: MockContext, name: string): UploadSession {
  // Abandoned uploads would otherwise hold bytes (memory) or files (directory) forever.
  const now = Date.now();
  for (const [id, old] of ctx.uploads) {
    if (!old.busy && now - old.touched > IDLE_UPLOAD_MS) {
      ctx.uploads.delete(id);
      old.target.abort().catch(() => undefined);
    }
  }
  const s: UploadSession = { name, target: ctx.storage.newUpload(), busy: false, touched: now };
  ctx.uploads.set(s.target.id, s);
  return s;
}

/** `POST /v2/<name>/blobs/uploads/` */
export async function startUpload(
  ctx: MockContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rawName: string,
  rq: RequestState,
): Promise<void> {
  if (req.method !== 'POST') throw new MockError('UNSUPPORTED');
  const name = checkName(rawName);
  rq.user = principalUser(await authorize(ctx, req, url, name, 'push', { rq }));

  const mount = url.searchParams.get('mount');
  const from = url.searchParams.get('from');
  if (mount !== null && from !== null && isDigest(mount) && isName(from)) {
    // A mount needs pull on the source repository in the same token.
    const p = await ctx.tokens.verify(parseBearer(req) ?? '');
    if (p !== undefined && allows(p.access, from, 'pull') && (await ctx.storage.statBlob(mount)) !== undefined) {
      ctx.manifests.noteBlob(name, mount);
      created(res, name, mount);
      return;
    }
  }

  const digestParam = url.searchParams.get('digest');
  const s = newSession(ctx, name);
  if (digestParam !== null) {
    const digest = checkDigest(digestParam);
    await appendBody(ctx, req, s);
    await finish(ctx, res, s, digest);
    return;
  }
  res.writeHead(202, uploadHeaders(name, s));
  res.end();
}

/** `PATCH|PUT|GET|DELETE /v2/<name>/blobs/uploads/<uuid>` */
export async function continueUpload(
  ctx: MockContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rawName: string,
  id: string,
  rq: RequestState,
): Promise<void> {
  const name = checkName(rawName);
  rq.user = principalUser(await authorize(ctx, req, url, name, 'push', { rq }));
  const s = ctx.uploads.get(id);
  if (s === undefined || s.name !== name) throw new MockError('BLOB_UPLOAD_UNKNOWN', { detail: { uuid: id } });

  switch (req.method) {
    case 'GET': {
      res.writeHead(204, uploadHeaders(name, s));
      res.end();
      return;
    }
    case 'DELETE': {
      ctx.uploads.delete(id);
      await s.target.abort();
      res.writeHead(204, API_VERSION);
      res.end();
      return;
    }
    case 'PATCH': {
      const cr = req.headers['content-range'];
      if (cr !== undefined) {
        const m = /^(?:bytes )?(\d+)-(\d+)$/.exec(cr.trim());
        if (m === null || Number(m[1]) !== s.target.size) {
          throw new MockError('RANGE_INVALID', { headers: { Range: `0-${Math.max(0, s.target.size - 1)}` } });
        }
      }
      await appendBody(ctx, req, s);
      res.writeHead(202, uploadHeaders(name, s));
      res.end();
      return;
    }
    case 'PUT': {
      const d = url.searchParams.get('digest');
      if (d === null) throw new MockError('DIGEST_INVALID', { message: 'digest parameter missing' });
      const digest = checkDigest(d);
      await appendBody(ctx, req, s);
      await finish(ctx, res, s, digest);
      return;
    }
    default:
      throw new MockError('UNSUPPORTED');
  }
}
