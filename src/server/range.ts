// Range requests (RFC 9110 §14), parsed by jshttp's range-parser (the parser of express
// and send). Byte ranges only. A header that does not follow the grammar is ignored
// (§14.2: "a server MAY ignore the Range header"), as is one with absurdly many ranges;
// ranges past the end are dropped, and none left is 416.
import { randomBytes } from 'node:crypto';
import { parse } from 'range-parser';

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export type RangeRequest = { kind: 'full' } | { kind: 'ranges'; ranges: ByteRange[] } | { kind: 'unsatisfiable' };

const MAX_RANGES = 32;
/** range-parser's code bit for a malformed range-spec (its other bit, 2, is "unsatisfiable"). */
const MALFORMED = 1;

export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'full' };
  // OWS around a field value is not part of it (RFC 9110 §5.5); Node strips it on HTTP/1.1 only.
  const parsed = parse(size, header.replace(/^[ \t]+/, ''));
  if (parsed.type !== 'bytes' || (parsed.code & MALFORMED) !== 0) return { kind: 'full' };
  if (parsed.ranges.length > MAX_RANGES) return { kind: 'full' };
  if (parsed.ranges.length > 0)
    return { kind: 'ranges', ranges: parsed.ranges.map(({ start, end }) => ({ start, end })) };
  // A suffix range on an empty blob is satisfiable yet selects nothing (§14.1.1): range-parser
  // reports it with no ranges and no unsatisfiable bit, and the whole (empty) blob is sent.
  return parsed.code === 0 ? { kind: 'full' } : { kind: 'unsatisfiable' };
}

/** The framing of a `multipart/byteranges` body (RFC 9110 §14.6), for the cache and the mock origin alike. */
export interface MultipartLayout {
  /** `multipart/byteranges; boundary=…` */
  readonly contentType: string;
  /** What goes before a part's bytes: the boundary and the part's own header fields. */
  partHead(r: ByteRange): Buffer;
  /** The closing boundary. */
  readonly tail: Buffer;
  /** The whole body's length: every part head, part and the tail. */
  readonly length: number;
}

export function multipartLayout(ranges: readonly ByteRange[], size: number): MultipartLayout {
  const boundary = randomBytes(12).toString('hex');
  const partHead = (r: ByteRange): Buffer =>
    Buffer.from(
      `\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`,
    );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const length = ranges.reduce((n, r) => n + partHead(r).length + (r.end - r.start + 1), 0) + tail.length;
  return { contentType: `multipart/byteranges; boundary=${boundary}`, partHead, tail, length };
}
