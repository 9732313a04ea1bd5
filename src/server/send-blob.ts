// Sends a blob from a BlobSource: whole, one range, or several as multipart/byteranges
// (RFC 9110 §14.6), for hits and fills alike. Reads are large (1 MiB) positional reads;
// each write waits for 'drain' when the socket is full, so memory stays bounded.
import { setTimeout as delay } from 'node:timers/promises';
import { READ_BUFFERS_TOTAL } from '../cluster/budget.js';
import { RegistryError } from '../errors/registry.js';
import type { BlobSource } from '../fill/source.js';
import type { ResLike } from './http-types.js';
import { multipartLayout, parseRange, type ByteRange } from './range.js';
import { blobHeaders, blobValidators, sendError } from './respond.js';

/** Large reads serve big blobs fastest (bench/NOTES.md, "Read size: 1 MiB")… */
const READ_SIZE = 1 << 20;
const MIN_READ_SIZE = 64 << 10;
/**
 * A response's first read is one TLS record's worth: when many responses start together (a
 * replica's followers, whose bytes are all on disk already), each sends its first bytes
 * before any sends a megabyte (bench/NOTES.md, "Followers' first bytes under a stampede").
 */
const FIRST_READ = 16 << 10;
/**
 * …but all responses together hold at most this much in read buffers, whatever the client
 * count; it also bounds the TLS writes of one event-loop turn (bench/NOTES.md, "The read
 * budget"). A node's processes share its budget (setReadBudget).
 */
let readBudget = READ_BUFFERS_TOTAL;
let activePumps = 0;

/** This process's share of the node's read budget (cluster/budget.ts). */
export function setReadBudget(bytes: number): void {
  readBudget = Math.max(MIN_READ_SIZE, bytes);
}
/**
 * A reader at a fill's frontier may wait this long for a batch worth a TLS write, rather
 * than send each upstream chunk on its own: only when several responses share the main
 * thread (see coalesceTarget), and never before the first bytes.
 */
const COALESCE_MS = 8;

/**
 * The gap at the frontier worth waiting to fill: nothing for a lone response (each chunk
 * goes out as it arrives), growing with the responses in flight, whose small writes
 * multiply (bench/NOTES.md, "frontier coalescing").
 */
function coalesceTarget(): number {
  return activePumps <= 1 ? 0 : Math.min(256 << 10, activePumps * (8 << 10));
}

/**
 * One response's share of the read budget at this moment: READ_SIZE while few are active,
 * shrinking as more join. Applied to every read, not only to a response's first buffer, so
 * that responses begun while few were active do not keep their larger reads.
 */
function share(): number {
  const even = Math.floor(readBudget / Math.max(1, activePumps) / MIN_READ_SIZE) * MIN_READ_SIZE;
  return Math.max(MIN_READ_SIZE, Math.min(READ_SIZE, even));
}

export class ClientGone extends Error {
  readonly code = 'CLIENT_GONE';
  constructor() {
    super('client went away');
  }
}

export interface SendOptions {
  digest: string;
  head: boolean;
  rangeHeader: string | undefined;
  /**
   * Told the body bytes the client's socket took, also when the response fails (access log,
   * metrics), and when it took the first of them (the time to first byte).
   */
  record?: { bytes: number; firstByteAt?: bigint };
}

/** Resolves with the body bytes written; rejects with ClientGone or the source's failure. */
export async function sendBlob(res: ResLike, src: BlobSource, opts: SendOptions): Promise<number> {
  const size = src.size;
  const base = blobHeaders(opts.digest);
  const range = parseRange(opts.rangeHeader, size);
  if (range.kind === 'unsatisfiable') {
    // An error like any other (registry JSON), with the blob's validators but no
    // Cache-Control: a 416 is not the blob, and is not to be cached as if it were.
    const unsatisfiable = new RegistryError('RANGE_INVALID', { headers: { 'Content-Range': `bytes */${size}` } });
    sendError(res, unsatisfiable, opts.head, blobValidators(opts.digest));
    return 0;
  }
  src.startingAt?.(range.kind === 'full' ? 0 : Math.min(...range.ranges.map((r) => r.start)));
  const watch = new CloseWatch(res);
  try {
    // An empty body has no last byte to hold back, and its headers alone complete an
    // HTTP/1.1 response: they wait for the verdict (a wrong one is then an error answer).
    if (size === 0) await untilVerified(src, watch);
    if (range.kind === 'full') {
      res.writeHead(200, { ...base, 'Content-Length': size });
      if (opts.head) return end(res, 0);
      // A fill's headers go out at once, before bytes that may be held back for the verdict.
      if (!src.verified()) res.flushHeaders?.();
      if (src.bytes !== undefined) {
        res.end(src.bytes);
        watch.took(size);
        return size;
      }
      return end(res, await pump(res, src, { start: 0, end: size - 1 }, watch, true));
    }
    if (range.ranges.length === 1) {
      const r = range.ranges[0]!;
      res.writeHead(206, {
        ...base,
        'Content-Length': r.end - r.start + 1,
        'Content-Range': `bytes ${r.start}-${r.end}/${size}`,
      });
      if (opts.head) return end(res, 0);
      if (!src.verified()) res.flushHeaders?.();
      return end(res, await pump(res, src, r, watch, true));
    }
    return end(res, await sendMultipart(res, src, range.ranges, base, opts.head, watch));
  } finally {
    if (opts.record !== undefined) {
      opts.record.bytes = watch.body;
      if (watch.firstByteAt !== undefined) opts.record.firstByteAt = watch.firstByteAt;
    }
    watch.dispose();
  }
}

function end(res: ResLike, bytes: number): number {
  res.end();
  return bytes;
}

async function sendMultipart(
  res: ResLike,
  src: BlobSource,
  ranges: ByteRange[],
  base: Record<string, string>,
  head: boolean,
  watch: CloseWatch,
): Promise<number> {
  const layout = multipartLayout(ranges, src.size);
  const { 'Content-Type': _octet, ...rest } = base;
  res.writeHead(206, { ...rest, 'Content-Type': layout.contentType, 'Content-Length': layout.length });
  if (head) return 0;
  let bytes = 0;
  for (const r of ranges) {
    await writeAll(res, layout.partHead(r), watch);
    bytes += await pump(res, src, r, watch, false);
  }
  // The closing boundary completes the response: it waits for the verdict.
  src.doneReading?.();
  await untilVerified(src, watch);
  res.write(layout.tail);
  return bytes;
}

/**
 * Sends one range. `last`: the range ends the response, so its final byte waits until the
 * source is verified; a client can then never end cleanly on bytes a digest check rejects,
 * whatever range it asked for.
 */
async function pump(res: ResLike, src: BlobSource, r: ByteRange, watch: CloseWatch, last: boolean): Promise<number> {
  // One buffer per response, reused once the socket has taken the previous write: no
  // garbage per MiB, so memory is bounded by (clients × READ_SIZE) whatever the blob size.
  activePumps++;
  const buf = Buffer.allocUnsafeSlow(Math.min(r.end - r.start + 1, share()));
  try {
    return await pumpWith(buf, res, src, r, watch, last);
  } finally {
    activePumps--;
  }
}

async function pumpWith(
  buf: Buffer,
  res: ResLike,
  src: BlobSource,
  r: ByteRange,
  watch: CloseWatch,
  last: boolean,
): Promise<number> {
  const end = r.end + 1;
  /** The range's last byte, read but kept back until the verdict (`last` only). */
  let held: Buffer | null = null;
  let pos = r.start;
  while (pos < end) {
    if (watch.closed) throw new ClientGone();
    const failure = src.failure();
    if (failure !== null) throw failure;
    const limit = Math.min(src.available(), end);
    if (pos >= limit) {
      await watch.until(src.waitForMore());
      continue;
    }
    // First bytes go out at once (time to first byte); later, a small gap at a frontier
    // that is still moving may be worth one short wait, then whatever arrived is sent.
    if (pos > r.start && limit - pos < coalesceTarget() && limit < end && src.available() < src.size) {
      await watch.until(delay(COALESCE_MS));
      if (watch.closed) throw new ClientGone();
    }
    const want = Math.min(pos === r.start ? FIRST_READ : buf.length, share(), Math.min(src.available(), end) - pos);
    const got = await src.read(buf, pos, want);
    if (got === 0) throw new Error(`blob source returned no bytes at ${pos} of ${src.size}`);
    pos += got;
    let out = buf.subarray(0, got);
    if (last && pos === end && !src.verified()) {
      // The last byte waits for the verdict, from a copy of our own: the fill need keep
      // nothing for this response while the rest of the blob arrives and is hashed.
      held = Buffer.from(out.subarray(got - 1));
      out = out.subarray(0, got - 1);
    }
    if (out.length > 0) {
      await writeAll(res, out, watch);
      watch.took(out.length);
    }
  }
  if (held !== null) {
    src.doneReading?.();
    await untilVerified(src, watch);
    await writeAll(res, held, watch);
    watch.took(held.length);
  }
  return end - r.start;
}

/** Waits until the source is verified; throws its failure, or ClientGone. */
async function untilVerified(src: BlobSource, watch: CloseWatch): Promise<void> {
  while (!src.verified()) {
    const failure = src.failure();
    if (failure !== null) throw failure;
    await watch.until(src.waitForMore());
    if (watch.closed) throw new ClientGone();
  }
}

/** Writes and waits until the data has left our buffer (the write callback), or the client left. */
async function writeAll(res: ResLike, chunk: Buffer, watch: CloseWatch): Promise<void> {
  await watch.until(
    new Promise<void>((resolve) =>
      res.write(chunk, (err) => {
        if (err) watch.markGone();
        resolve();
      }),
    ),
  );
  if (watch.closed) throw new ClientGone();
}

/** Whether the response's connection or stream is already gone (HTTP/1.1 or HTTP/2). */
function clientGone(res: ResLike): boolean {
  const r = res as unknown as {
    destroyed?: boolean;
    socket?: { destroyed?: boolean } | null;
    stream?: { destroyed?: boolean };
  };
  return r.destroyed === true || r.socket?.destroyed === true || r.stream?.destroyed === true;
}

/**
 * Tracks the client's 'close'. Waits race against it through a set of wakers that each
 * wait removes when it settles: racing every write against one long-lived promise would
 * leave a reaction on it per write until the response ends.
 */
class CloseWatch {
  closed = false;
  /** Body bytes the client's socket has taken so far. */
  body = 0;
  /** When the client's socket took the first of them (process.hrtime.bigint()). */
  firstByteAt: bigint | undefined = undefined;
  readonly #wakers = new Set<() => void>();
  readonly #res: ResLike;
  readonly #onClose = (): void => {
    this.closed = true;
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
  };

  constructor(res: ResLike) {
    this.#res = res;
    // A client may have gone while we waited for a fill's headers: 'close' is then past.
    this.closed = clientGone(res);
    res.once('close', this.#onClose);
  }

  /** The client's socket took `n` bytes of the blob; the first ones stamp the time to first byte. */
  took(n: number): void {
    if (this.body === 0 && n > 0) this.firstByteAt = process.hrtime.bigint();
    this.body += n;
  }

  /** A write that failed means the client is gone, whether or not 'close' came first. */
  markGone(): void {
    this.#onClose();
  }

  /** Resolves when `p` settles or the client goes, whichever comes first. */
  until(p: Promise<unknown>): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#wakers.delete(wake);
        resolve();
      };
      this.#wakers.add(wake);
      p.then(wake, wake);
    });
  }

  dispose(): void {
    this.#res.off('close', this.#onClose);
  }
}
