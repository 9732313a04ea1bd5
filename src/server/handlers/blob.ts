// GET|HEAD /v2/<name>/blobs/<digest>: verify the redirect token, then serve a hit from
// disk, answer a HEAD miss from an upstream HEAD, or join/start the digest's fill.
import { tokenFromRequest } from '../../auth/extract.js';
import { RegistryError } from '../../errors/registry.js';
import { relayedError } from '../../upstream/response.js';
import { chainFetch } from '../../fill/fetch.js';
import { discardBody } from '../../upstream/chain.js';
import { bufferSource, fileSource, type BlobSource } from '../../fill/source.js';
import type { Digest } from '../../store/digest.js';
import type { AppContext, RequestRecord } from '../context.js';
import { header, type Req, type ResLike } from '../http-types.js';
import { answeredNotModified, honouredRange } from '../conditional.js';
import { blobHeaders } from '../respond.js';
import { sendBlob } from '../send-blob.js';

export async function handleBlob(
  ctx: AppContext,
  req: Req,
  res: ResLike,
  query: URLSearchParams,
  name: string,
  digest: Digest,
  rec: RequestRecord,
): Promise<void> {
  const head = req.method === 'HEAD';
  const via = header(req.headers, 'via');
  if (ctx.chain.seenIn(via)) {
    ctx.log.warn({ digest: digest.value, via }, 'request loop: this cache is already in Via; refusing');
    throw new RegistryError('UNAVAILABLE', {
      status: 508,
      message: 'request loop detected: this cache already forwarded this request',
    });
  }
  const token = tokenFromRequest(query, header(req.headers, 'authorization'));
  const verified = await ctx.verifier.verify(token, { name, digest: digest.value, method: req.method ?? '' });

  // A tag naming the blob needs no lookup; `*` needs a copy known to exist.
  if (answeredNotModified(req, res, digest.value, rec, false)) return;
  const send = (src: BlobSource, outcome: NonNullable<RequestRecord['outcome']>): Promise<number> => {
    rec.outcome = outcome;
    return sendBlob(res, src, {
      digest: digest.value,
      head,
      rangeHeader: honouredRange(req, digest.value),
      record: rec,
    });
  };

  const entry = await ctx.store.lookup(digest);
  if (entry !== null && answeredNotModified(req, res, digest.value, rec, true)) {
    ctx.store.touch(entry);
    return;
  }
  const small = entry === null ? null : await ctx.store.smallBytes(entry);
  const blob = entry === null || small !== null ? null : await ctx.store.open(entry);
  if (small !== null || blob !== null) {
    ctx.store.touch(entry!);
    const src = small !== null ? bufferSource(small) : fileSource(blob!);
    try {
      await send(src, 'hit');
    } finally {
      await src.release();
    }
    return;
  }

  if (head) {
    await headFromUpstream(ctx, req, res, name, digest, verified.token, via, rec);
    return;
  }

  const client = { token: verified.token, exp: verified.exp, name };
  const { fill, joined } = ctx.inflight.join(chainFetch(ctx.chain, name, digest, via), client);
  const src = await fill.attach(client);
  // The upstream answered 200: the blob exists. The fill goes on without this client.
  if (answeredNotModified(req, res, digest.value, rec, true)) {
    await src.release();
    return;
  }
  try {
    await send(src, joined ? 'joined' : 'miss');
  } finally {
    await src.release();
  }
}

/** docs/protocol.md §5: a HEAD miss is answered by an upstream HEAD and never starts a fill. */
async function headFromUpstream(
  ctx: AppContext,
  req: Req,
  res: ResLike,
  name: string,
  digest: Digest,
  token: string,
  via: string | undefined,
  rec: RequestRecord,
): Promise<void> {
  rec.outcome = 'head-upstream';
  const up = await ctx.chain.request({ method: 'HEAD', name, digest: digest.value, token, via });
  if (up.statusCode !== 200) throw await relayedError(up);
  discardBody(up.body);
  if (answeredNotModified(req, res, digest.value, rec, true)) return;
  const size = Number(up.headers['content-length']);
  res.writeHead(200, {
    ...blobHeaders(digest.value),
    ...(Number.isSafeInteger(size) ? { 'Content-Length': size } : {}),
  });
  res.end();
}
