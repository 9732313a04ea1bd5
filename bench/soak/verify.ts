// One checked pull: a GET (whole blob, or a Range) through the edge, with the body hashed
// as it arrives and held against the truth, the origin's own copy of the blob. A body that
// ended cleanly with the wrong bytes is a bad body, the one thing a cache must never serve;
// a transfer that breaks (a reset stream) is only an error.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import type { Blob } from '../scenarios/corpus.js';

/** A resolved byte range, both ends inclusive (RFC 9110 §14.1.1). */
export interface ByteRange {
  start: number;
  end: number;
}

export type PullResult =
  | { kind: 'ok'; status: 200 | 206; bytes: number }
  | { kind: 'bad'; status: number; bytes: number; why: string }
  | { kind: 'error'; error: string; bytes: number };

export interface Pull {
  url: string;
  blob: Blob;
  /** The Range header sent, and the range it means; null for a whole-blob GET. */
  range: { header: string; want: ByteRange } | null;
  dispatcher: Dispatcher;
  timeoutMs: number;
}

/** sha256 of bytes [start, end] of the origin's copy. */
async function hashOfFileRange(file: string, r: ByteRange): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { start: r.start, end: r.end, highWaterMark: 1 << 20 }))
    h.update(chunk as Buffer);
  return h.digest('hex');
}

/** An error's stable name for the report: undici's code, the errno, or the class. */
export function errorKind(err: unknown): string {
  if (!(err instanceof Error)) return 'unknown';
  const e = err as Error & { code?: unknown; cause?: unknown };
  if (typeof e.code === 'string') {
    const cause = e.cause as { code?: unknown } | undefined;
    return typeof cause?.code === 'string' && e.code === 'UND_ERR_SOCKET' ? `${e.code}/${cause.code}` : e.code;
  }
  return e.name;
}

function parseContentRange(v: string | string[] | undefined): (ByteRange & { size: number }) | null {
  const m = typeof v === 'string' ? /^bytes (\d+)-(\d+)\/(\d+)$/.exec(v) : null;
  return m ? { start: Number(m[1]), end: Number(m[2]), size: Number(m[3]) } : null;
}

export async function pull(p: Pull): Promise<PullResult> {
  const signal = AbortSignal.timeout(p.timeoutMs);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(p.url, {
      dispatcher: p.dispatcher,
      headers: p.range === null ? {} : { range: p.range.header },
      signal,
    });
  } catch (err) {
    return { kind: 'error', error: `request: ${errorKind(err)}`, bytes: 0 };
  }
  const status = res.statusCode;
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of res.body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    // The stream broke: the client knows the body is incomplete. Never a bad body.
    return {
      kind: 'error',
      error: status === 200 || status === 206 ? `body: ${errorKind(err)}` : `status ${status}`,
      bytes,
    };
  }
  const got = hash.digest('hex');
  const blob = p.blob;
  if (status === 200) {
    if (bytes !== blob.size) return { kind: 'bad', status, bytes, why: `200 with ${bytes} of ${blob.size} bytes` };
    if (`sha256:${got}` !== blob.digest) return { kind: 'bad', status, bytes, why: `200 hashing to sha256:${got}` };
    return { kind: 'ok', status, bytes };
  }
  if (status === 206) {
    const cr = parseContentRange(res.headers['content-range']);
    const want = p.range?.want;
    if (want === undefined) return { kind: 'bad', status, bytes, why: '206 to a request without Range' };
    if (cr === null || cr.start !== want.start || cr.end !== want.end || cr.size !== blob.size)
      return { kind: 'bad', status, bytes, why: `206 Content-Range ${String(res.headers['content-range'])}` };
    if (bytes !== want.end - want.start + 1)
      return { kind: 'bad', status, bytes, why: `206 with ${bytes} bytes for ${want.start}-${want.end}` };
    if (got !== (await hashOfFileRange(blob.file, want)))
      return { kind: 'bad', status, bytes, why: `206 ${want.start}-${want.end}: bytes differ from the origin's` };
    return { kind: 'ok', status, bytes };
  }
  return { kind: 'error', error: `status ${status}`, bytes };
}

/** A random Range of one of the three single-range forms, and the bytes it means. */
export function randomRange(size: number, rnd: () => number): { header: string; want: ByteRange } {
  const form = rnd();
  if (form < 0.15) {
    const n = 1 + Math.floor(rnd() * size);
    return { header: `bytes=-${n}`, want: { start: size - n, end: size - 1 } };
  }
  const start = Math.floor(rnd() * size);
  if (form < 0.35) return { header: `bytes=${start}-`, want: { start, end: size - 1 } };
  const end = start + Math.floor(rnd() * (size - start));
  return { header: `bytes=${start}-${end}`, want: { start, end } };
}
