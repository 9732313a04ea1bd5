// Sends a blob from a BlobSource: whole, one range, or several as multipart/byteranges
// (RFC 9110 §14.6), for hits and fills alike. Reads are large (1 MiB) positional reads;
// each write waits for 'drain' when the socket is full, so memory stays bounded.
import { randomBytes } from 'node:crypto';
import type { BlobSource } from '../fill/source.js';
import type { ResLike } from './http-types.js';
import { parseRange, type ByteRange } from './range.js';
import { blobHeaders } from './respond.js';

const READ_SIZE = 1 << 20;

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
  /** Extra response headers (e.g. X-Cache). */
  extra?: Record<string, string>;
}

/** Resolves with the body bytes written; rejects with ClientGone or the source's failure. */
export async function sendBlob(res: ResLike, src: BlobSource, opts: SendOptions): Promise<number> {
  const size = src.size;
  const base = { ...blobHeaders(opts.digest), ...opts.extra };
  const range = parseRange(opts.rangeHeader, size);
  if (range.kind === 'unsatisfiable') {
    res.writeHead(416, { ...base, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
    res.end();
    return 0;
  }
  const watch = watchClose(res);
  try {
    if (range.kind === 'full') {
      res.writeHead(200, { ...base, 'Content-Length': size });
      if (opts.head) return end(res, 0);
      return end(res, await pump(res, src, { start: 0, end: size - 1 }, watch));
    }
    if (range.ranges.length === 1) {
      const r = range.ranges[0]!;
      res.writeHead(206, { ...base, 'Content-Length': r.end - r.start + 1, 'Content-Range': `bytes ${r.start}-${r.end}/${size}` });
      if (opts.head) return end(res, 0);
      return end(res, await pump(res, src, r, watch));
    }
    return end(res, await sendMultipart(res, src, range.ranges, base, opts.head, watch));
  } finally {
    watch.dispose();
  }
}

function end(res: ResLike, bytes: number): number {
  res.end();
  return bytes;
}

async function sendMultipart(res: ResLike, src: BlobSource, ranges: ByteRange[], base: Record<string, string>, head: boolean, watch: CloseWatch): Promise<number> {
  const boundary = randomBytes(12).toString('hex');
  const partHead = (r: ByteRange): string =>
    `\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${r.start}-${r.end}/${src.size}\r\n\r\n`;
  const tail = `\r\n--${boundary}--\r\n`;
  const length = ranges.reduce((n, r) => n + Buffer.byteLength(partHead(r)) + (r.end - r.start + 1), 0) + tail.length;
  const { 'Content-Type': _octet, ...rest } = base;
  res.writeHead(206, { ...rest, 'Content-Type': `multipart/byteranges; boundary=${boundary}`, 'Content-Length': length });
  if (head) return 0;
  let bytes = 0;
  for (const r of ranges) {
    if (!res.write(partHead(r))) await waitDrain(res, watch);
    bytes += await pump(res, src, r, watch);
  }
  res.write(tail);
  return bytes;
}

async function pump(res: ResLike, src: BlobSource, r: ByteRange, watch: CloseWatch): Promise<number> {
  let pos = r.start;
  while (pos <= r.end) {
    if (watch.closed) throw new ClientGone();
    const failure = src.failure();
    if (failure !== null) throw failure;
    const limit = Math.min(src.available(), r.end + 1);
    if (pos >= limit) {
      await Promise.race([src.waitForMore(), watch.promise]);
      continue;
    }
    const want = Math.min(READ_SIZE, limit - pos);
    // A fresh buffer per read: the socket may still hold the previous one.
    const buf = Buffer.allocUnsafeSlow(want);
    const got = await src.read(buf, pos, want);
    if (got === 0) throw new Error(`blob file is shorter than its size (${pos} of ${src.size})`);
    pos += got;
    if (!res.write(got === want ? buf : buf.subarray(0, got))) await waitDrain(res, watch);
  }
  return r.end - r.start + 1;
}

interface CloseWatch {
  closed: boolean;
  promise: Promise<void>;
  dispose(): void;
}

function watchClose(res: ResLike): CloseWatch {
  let onClose!: () => void;
  const watch: CloseWatch = {
    closed: false,
    promise: new Promise<void>((resolve) => {
      onClose = () => {
        watch.closed = true;
        resolve();
      };
    }),
    dispose: () => res.off('close', onClose),
  };
  res.once('close', onClose);
  return watch;
}

async function waitDrain(res: ResLike, watch: CloseWatch): Promise<void> {
  let onDrain!: () => void;
  const drained = new Promise<void>((resolve) => {
    onDrain = resolve;
    res.once('drain', onDrain);
  });
  await Promise.race([drained, watch.promise]);
  res.off('drain', onDrain);
  if (watch.closed) throw new ClientGone();
}
