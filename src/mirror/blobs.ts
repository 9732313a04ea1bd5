// GET|HEAD /v2/<name>/blobs/<digest> of a mirrored registry: the node's own fill (one
// download per digest, streamed to every waiting client, Range, verification) through a
// BlobFetch that asks the mirror's upstream with the mirror's credentials. A blob is
// content-addressed, so a stored copy may have come from another repository, another
// registry or DTR mode; it is served to a client of this repository only once the upstream
// has confirmed it here (a record, kept from the download or from a HEAD). The same holds
// before joining a download started for someone else.
import { RegistryError } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import type { BlobFetch } from '../fill/fetch.js';
import type { Inflight } from '../fill/inflight.js';
import { relayedError } from '../upstream/response.js';
import { bufferSource, fileSource, type BlobSource } from '../fill/source.js';
import type { RequestRecord } from '../server/context.js';
import { header, type Req, type ResLike } from '../server/http-types.js';
import { answeredNotModified, honouredRange } from '../server/conditional.js';
import { blobHeaders } from '../server/respond.js';
import { sendBlob } from '../server/send-blob.js';
import type { BlobStore } from '../store/blob-store.js';
import { parseDigest, type Digest } from '../store/digest.js';
import { discardBody, type UpstreamResponse } from '../upstream/chain.js';
import type { Mirror, MirrorCall } from './mirror.js';
import { fileKey } from './records.js';

export interface MirrorBlobDeps {
  store: BlobStore;
  inflight: Inflight;
  /** Digests whose running fill a mirror started, and for which registry and repository. */
  started: Map<string, string>;
}

/** A mirror client of a fill: no credential of its own, and never preferred over a DTR client's token. */
const MIRROR_CLIENT = { token: '', exp: 0, name: '' } as const;

export async function serveMirrorBlob(deps: MirrorBlobDeps, call: MirrorCall): Promise<void> {
  const { store, inflight } = deps;
  const { mirror, repo, reference, req, res, rec } = call;
  const digest = parseDigest(reference);
  rec.digest = digest.value;
  const head = req.method === 'HEAD';
  const via = header(req.headers, 'via');
  const send = async (src: BlobSource, outcome: NonNullable<RequestRecord['outcome']>): Promise<void> => {
    rec.outcome = outcome;
    try {
      await sendBlob(res, src, {
        digest: digest.value,
        head,
        rangeHeader: honouredRange(req, digest.value),
        record: rec,
      });
    } finally {
      await src.release();
    }
  };
  let confirmed = await mirror.records.hasBlob(repo, digest);
  // Twice at most: a confirmation may take long enough for a running fill to publish.
  for (let pass = 0; pass < 2; pass++) {
    // A confirmed copy is served even past its expiry: it is verified and immutable, and the
    // evictor (not this request) decides when it goes; a pull makes it young again.
    const entry = await store.lookup(digest, { includeExpired: confirmed });
    if (entry !== null) {
      if (!confirmed) confirmed = (await confirm(mirror, repo, digest, via), true);
      if (answeredNotModified(req, res, digest.value, rec, true)) return;
      const small = await store.smallBytes(entry);
      const blob = small === null ? await store.open(entry) : null;
      const src = small !== null ? bufferSource(small) : blob !== null ? fileSource(blob) : null;
      if (src !== null) {
        store.touch(entry);
        mirror.records.touch('blobs', repo, fileKey(digest));
        return send(src, 'hit');
      }
    }
    if (confirmed && answeredNotModified(req, res, digest.value, rec, true)) return;
    if (head) return headUpstream(mirror, req, res, repo, digest, via, rec);
    const key = `${mirror.registry}\0${repo}`;
    if (!confirmed && inflight.has(digest.value) && deps.started.get(digest.value) !== key) {
      // Someone else's download (another repository, registry, or DTR mode): confirm first.
      await confirm(mirror, repo, digest, via);
      confirmed = true;
      continue;
    }
    const { fill, joined } = inflight.join(mirrorFetch(mirror, repo, digest, via), { ...MIRROR_CLIENT });
    if (!joined) {
      deps.started.set(digest.value, key);
      void fill.settled.then(() => {
        if (deps.started.get(digest.value) === key) deps.started.delete(digest.value);
      });
    }
    const src = await fill.attach({ ...MIRROR_CLIENT });
    // The upstream answered 200: the blob exists. The fill goes on without this client.
    if (answeredNotModified(req, res, digest.value, rec, true)) return src.release();
    return send(src, joined ? 'joined' : 'miss');
  }
  throw new RegistryError('UNAVAILABLE', { status: 503, message: 'the blob could not be served; try again' });
}

/** The fill's download from this mirror's upstream; a 200/206 records the blob in the repository. */
function mirrorFetch(mirror: Mirror, repo: string, digest: Digest, via: string | undefined): BlobFetch {
  return {
    name: repo,
    digest,
    async get({ offset, exclude }): Promise<UpstreamResponse> {
      if (exclude.has(mirror.upstream.host))
        throw gatewayError('reset', `the upstream ${mirror.upstream.url} failed this transfer too often`);
      const res = await mirror.upstream.request({
        method: 'GET',
        path: `/v2/${repo}/blobs/${digest.value}`,
        repo,
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        via,
      });
      if (res.statusCode === 200 || res.statusCode === 206) await mirror.records.setBlob(repo, digest);
      return res;
    },
  };
}

/**
 * An upstream HEAD of the blob in this repository: a 200 is the record (and the size, when
 * the upstream says it); anything else is the client's answer. Concurrent requests for one
 * blob share one HEAD.
 */
function confirm(mirror: Mirror, repo: string, digest: Digest, via: string | undefined): Promise<number | null> {
  return mirror.blobChecks.run(`${repo}@${digest.value}`, async () => {
    const res = await mirror.upstream.request({ method: 'HEAD', path: `/v2/${repo}/blobs/${digest.value}`, repo, via });
    discardBody(res.body);
    if (res.statusCode === 404) {
      throw new RegistryError('BLOB_UNKNOWN', { detail: { name: repo, digest: digest.value } });
    }
    if (res.statusCode !== 200) throw await relayedError(res);
    await mirror.records.setBlob(repo, digest);
    const size = Number(res.headers['content-length']);
    return Number.isSafeInteger(size) && size >= 0 ? size : null;
  }).promise;
}

/** A HEAD miss: answered from an upstream HEAD, never by a download (as in DTR mode). */
async function headUpstream(
  mirror: Mirror,
  req: Req,
  res: ResLike,
  repo: string,
  digest: Digest,
  via: string | undefined,
  rec: RequestRecord,
): Promise<void> {
  rec.outcome = 'head-upstream';
  const size = await confirm(mirror, repo, digest, via);
  if (answeredNotModified(req, res, digest.value, rec, true)) return;
  res.writeHead(200, { ...blobHeaders(digest.value), ...(size === null ? {} : { 'Content-Length': size }) });
  res.end();
}
