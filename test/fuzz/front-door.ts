// One example against the front door: send it (HTTP/1.1 bytes or HTTP/2), then hold the
// answer to the route model and the oracle. Shared by the path, header and token properties.
import assert from 'node:assert/strict';
import { METHODS } from 'node:http';
import { REGISTRY_ERRORS } from '../../src/errors/registry.js';
import { correctBlob, registryError } from './oracle.js';
import { expectedAnswer, type World } from './route-model.js';
import type { Target } from './target.js';
import { h1Request, type Answer, type H2Client, type WireRequest } from './wire.js';

export type Transport = 'h1' | 'h2';

export interface Example extends WireRequest {
  transport: Transport;
}

/** Node's HTTP/1.1 parser counts the request line and header lines against maxheadersize (16 KiB). */
const HEADER_LIMIT = 16_384;

function headerBytes(x: Example): number {
  return x.target.length + x.headers.reduce((n, [k, v]) => n + k.length + v.length + 32, 0);
}

/** A field as the server sees it: repeated fields joined with ", " (RFC 9110 §5.3). */
export function field(x: Example, name: string): string | undefined {
  const values = x.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(', ');
}

/**
 * Sends over the example's transport. node:http2 refuses to send some requests (a repeated
 * single-value field, a value it considers invalid): those go over HTTP/1.1 instead, and
 * the returned example says so. Raw frames (h2-frames.test.ts) cover what it refuses.
 */
export async function send(t: Target, h2: H2Client, x: Example): Promise<{ x: Example; answer: Answer | null }> {
  if (x.transport === 'h2') {
    let pending: Promise<Answer | null> | null = null;
    try {
      pending = h2.request(x);
    } catch (err) {
      if (!(err instanceof TypeError && /^ERR_(HTTP2_|INVALID_)/.test(String((err as { code?: unknown }).code))))
        throw err;
    }
    if (pending !== null) return { x, answer: await pending };
    x = { ...x, transport: 'h1' };
  }
  return { x, answer: await h1Request(t.port, t.ca.cert, x) };
}

/**
 * The fields the router gets. nghttp2 drops an HTTP/2 field whose value starts or ends with
 * whitespace, or holds NUL, CR or LF (RFC 9113 §8.2.1 forbids them), instead of passing it on.
 */
function delivered(x: Example): Example {
  if (x.transport === 'h1') return x;
  return { ...x, headers: x.headers.filter(([, v]) => !/^[ \t]|[ \t]$|[\0\r\n]/.test(v)) };
}

/**
 * A registry error from the HTTP layer: UNSUPPORTED. The parser's refusal of a HEAD carries
 * the body when the refused bytes do not show the method (client-error.ts); a body-less one
 * is a HEAD answer with no code to read.
 */
function refusedByHttp(answer: Answer, head: boolean): boolean {
  const code = registryError(answer, head && answer.body.length === 0);
  return code === 'UNSUPPORTED' || (head && answer.body.length === 0);
}

/** Sends `x` and asserts the answer the models call for. */
export async function check(t: Target, h2: H2Client, world: World, example: Example): Promise<void> {
  t.healthy();
  if (process.env['FUZZ_VERBOSE'] === '1') {
    const fields = example.headers.map(([k, v]) => `${k}(${v.length})`).join(' ');
    process.stderr.write(`${example.transport} ${example.method} ${example.target.slice(0, 120)} ${fields}\n`);
  }
  const sent = await send(t, h2, example);
  const answer = sent.answer;
  const x = delivered(sent.x);
  t.healthy();
  const head = x.method === 'HEAD';
  // Over the header limit (near it, allowing for how each protocol counts): 431 from the
  // HTTP/1.1 parser or our HTTP/2 guard, below the router, with a registry body all the same.
  const near = headerBytes(x) > HEADER_LIMIT - 1024;
  if (near && (answer === null || (answer.status === 431 && refusedByHttp(answer, head)))) return;
  if (
    x.transport === 'h2' &&
    (!x.target.startsWith('/') || (answer === null && sent.x.headers.some(([, v]) => /[\0\r\n]/.test(v))))
  ) {
    // RFC 9113 §8.3.1 and §8.2.1: a :path not starting with "/", or a field value with NUL,
    // CR or LF, makes the request malformed; nghttp2 resets the stream (or drops the field).
    assert.equal(answer, null, 'a malformed HTTP/2 request is reset');
    return;
  }
  assert.ok(answer !== null, 'no answer at all');
  const badField =
    x.headers.some(([, v]) => /[\x00-\x08\x0a-\x1f\x7f]/.test(v)) ||
    x.headers.filter(([k]) => k.toLowerCase() === 'content-length').length > 1;
  const badTarget = !/^(?:\/|\*|[a-z][a-z0-9+.-]*:\/\/)/i.test(x.target);
  if (x.transport === 'h1' && (!METHODS.includes(x.method) || badTarget || badField)) {
    // llhttp knows a fixed set of methods and the request-target forms of RFC 9112 §3.2,
    // and refuses control characters in a field value (RFC 9110 §5.5) and a repeated
    // Content-Length (RFC 9112 §6.3), before the router.
    assert.equal(answer.status, 400);
    assert.ok(refusedByHttp(answer, head));
    return;
  }
  // Node keeps the first of repeated Authorization fields (a singleton field), on both protocols.
  const authorization = x.headers.find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const want = expectedAnswer({ method: x.method, target: x.target, authorization, via: field(x, 'via') }, world);
  switch (want.kind) {
    case 'base':
      assert.equal(answer.status, 200);
      if (!head) assert.deepEqual(JSON.parse(answer.body.toString()), {});
      return;
    case 'jwks':
      assert.equal(answer.status, 200);
      if (!head) assert.ok(Array.isArray((JSON.parse(answer.body.toString()) as { keys?: unknown }).keys));
      return;
    case 'error': {
      const code = registryError(answer, head);
      if (!head)
        assert.equal(
          code,
          want.code,
          `expected ${want.code}, got ${answer.status} ${answer.body.toString().slice(0, 300)}`,
        );
      else assert.equal(answer.status, want.code === 'UNAVAILABLE' ? 508 : REGISTRY_ERRORS[want.code].status);
      return;
    }
    case 'blob': {
      const blob = t.blobs.find((b) => b.digest === want.digest);
      assert.ok(blob !== undefined);
      if (answer.status >= 400 && answer.status !== 416)
        assert.fail(`a valid pull answered ${answer.status} ${answer.body.toString().slice(0, 300)}`);
      correctBlob(answer, {
        bytes: blob.bytes,
        digest: blob.digest,
        head,
        // RFC 9110 §14.2: range handling is defined for GET only; a HEAD ignores Range. And
        // §13.1.5: an If-Range that does not name the blob's ETag makes it ignore Range too.
        range: head || !ifRangeHolds(field(x, 'if-range'), blob.digest) ? undefined : field(x, 'range'),
        ifNoneMatch: field(x, 'if-none-match'),
      });
      return;
    }
  }
}

/** If-Range absent, or naming the blob's strong ETag: Range is honoured (RFC 9110 §13.1.5). */
function ifRangeHolds(ifRange: string | undefined, digest: string): boolean {
  return ifRange === undefined || ifRange.trim() === `"${digest}"`;
}
