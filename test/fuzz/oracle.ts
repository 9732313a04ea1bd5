// The properties every answer of the front door must have: a well-formed registry error
// (docs/protocol.md §6, the README's table: code and status agree, no 5xx but the upstream
// statuses), or a correct blob (docs/protocol.md §5: bytes, digest headers, 206/Content-Range,
// multipart, 416, 304). Each check throws an AssertionError saying what was wrong.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { REGISTRY_ERRORS, type RegistryCode } from '../../src/errors/registry.js';
import { selectRanges, type Span } from './range-model.js';
import type { Answer } from './wire.js';

/** Every status a code is sent with: the table's own and its `also` list. */
function statusesOf(code: RegistryCode): readonly number[] {
  const e: { status: number; also?: readonly number[] } = REGISTRY_ERRORS[code];
  return [e.status, ...(e.also ?? [])];
}

function isCode(code: unknown): code is RegistryCode {
  return typeof code === 'string' && Object.hasOwn(REGISTRY_ERRORS, code);
}

/** Asserts a registry error answer and returns its code. */
export function registryError(a: Answer, head: boolean): RegistryCode {
  assert.match(a.headers['content-type'] ?? '', /^application\/json\b/, `status ${a.status} without a JSON type`);
  assert.equal(a.headers['docker-distribution-api-version'], 'registry/2.0');
  assert.equal(a.broken, false, 'an error answer ended cleanly');
  if (head) {
    assert.equal(a.body.length, 0, 'no body on HEAD');
    // A HEAD error has no body to read the code from: the status must still be one of the table's.
    const codes = Object.keys(REGISTRY_ERRORS) as RegistryCode[];
    const code =
      codes.find((c) => REGISTRY_ERRORS[c].status === a.status) ?? codes.find((c) => statusesOf(c).includes(a.status));
    assert.ok(code !== undefined, `HEAD answered ${a.status}, not a status of the error table`);
    return code;
  }
  assert.equal(Number(a.headers['content-length']), a.body.length, 'Content-Length of the error body');
  const parsed = JSON.parse(a.body.toString('utf8')) as { errors?: unknown };
  assert.ok(
    Array.isArray(parsed.errors) && parsed.errors.length > 0,
    `no errors array: ${a.body.toString().slice(0, 200)}`,
  );
  for (const e of parsed.errors as Array<Record<string, unknown>>) {
    assert.ok(isCode(e['code']), `unknown error code ${JSON.stringify(e['code'])}`);
    assert.equal(typeof e['message'], 'string');
    const code = e['code'];
    assert.ok(statusesOf(code).includes(a.status), `${code} with status ${a.status}`);
    if (code === 'UNAUTHORIZED') assert.match(a.headers['www-authenticate'] ?? '', /^Bearer realm="[^"]+",service="/);
    if (code === 'TOOMANYREQUESTS') assert.ok(a.headers['retry-after'] !== undefined, '429 without Retry-After');
  }
  return (parsed.errors as Array<{ code: RegistryCode }>)[0]!.code;
}

export interface BlobExpectation {
  bytes: Buffer;
  digest: string;
  head: boolean;
  range: string | undefined;
  ifNoneMatch: string | undefined;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/**
 * docs/protocol.md §5: If-None-Match matches when its list names `"<digest>"`, weakly
 * (RFC 9110 §13.1.2), or when it is `*` (every blob here exists upstream).
 */
function namesEtag(field: string | undefined, digest: string): boolean {
  if (field === undefined) return false;
  if (field.trim() === '*') return true;
  return field.split(',').some((tag) => tag.trim().replace(/^W\//, '') === `"${digest}"`);
}

/** Asserts the exact answer docs/protocol.md §5 gives for this blob and these request headers. */
export function correctBlob(a: Answer, x: BlobExpectation): void {
  const size = x.bytes.length;
  assert.equal(a.broken, false, `a blob answer (${a.status}) ended by a reset or short`);
  if (a.status !== 304 && a.status !== 416) {
    assert.equal(a.headers['docker-content-digest'], x.digest);
    assert.equal(a.headers['etag'], `"${x.digest}"`);
    assert.equal(a.headers['accept-ranges'], 'bytes');
  }
  if (namesEtag(x.ifNoneMatch, x.digest)) {
    assert.equal(a.status, 304, 'If-None-Match of the digest');
    assert.equal(a.body.length, 0);
    return;
  }
  const sel = selectRanges(x.range, size);
  const body = (want: Buffer): void => {
    if (x.head) assert.equal(a.body.length, 0, 'no body on HEAD');
    else assert.ok(a.body.equals(want), `body differs (${a.body.length} bytes, expected ${want.length})`);
  };
  switch (sel.kind) {
    case 'full':
      assert.equal(a.status, 200, `range ${JSON.stringify(x.range)} on ${size} bytes selects the whole blob`);
      assert.equal(Number(a.headers['content-length']), size);
      if (!x.head) assert.equal(sha256(a.body), x.digest, 'digest of the body');
      body(x.bytes);
      return;
    case 'unsatisfiable':
      assert.equal(a.status, 416, `range ${JSON.stringify(x.range)} on ${size} bytes is unsatisfiable`);
      assert.equal(a.headers['content-range'], `bytes */${size}`);
      if (!x.head) assert.equal(JSON.parse(a.body.toString()).errors[0].code, 'RANGE_INVALID');
      return;
    case 'ranges':
      assert.equal(a.status, 206, `range ${JSON.stringify(x.range)} on ${size} bytes is satisfiable`);
      if (sel.spans.length === 1) {
        const [s] = sel.spans as [Span];
        assert.equal(a.headers['content-range'], `bytes ${s.start}-${s.end}/${size}`);
        assert.equal(Number(a.headers['content-length']), s.end - s.start + 1);
        body(x.bytes.subarray(s.start, s.end + 1));
        return;
      }
      multipart(a, x, sel.spans);
  }
}

/** RFC 9110 §14.6: the parts in request order, each with its Content-Range and bytes. */
function multipart(a: Answer, x: BlobExpectation, spans: Span[]): void {
  const m = /^multipart\/byteranges; boundary=([0-9A-Za-z'()+_,./:=?-]{1,70})$/.exec(a.headers['content-type'] ?? '');
  assert.ok(m, `multipart type: ${a.headers['content-type']}`);
  if (x.head) return assert.equal(a.body.length, 0);
  assert.equal(Number(a.headers['content-length']), a.body.length);
  const boundary = `\r\n--${m[1]!}`;
  let at = 0;
  for (const s of spans) {
    const head = `${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${s.start}-${s.end}/${x.bytes.length}\r\n\r\n`;
    assert.equal(a.body.subarray(at, at + head.length).toString('latin1'), head, 'part header');
    at += head.length;
    assert.ok(a.body.subarray(at, at + s.end - s.start + 1).equals(x.bytes.subarray(s.start, s.end + 1)), 'part bytes');
    at += s.end - s.start + 1;
  }
  assert.equal(a.body.subarray(at).toString('latin1'), `${boundary}--\r\n`, 'closing boundary');
}
