// What a fill accepts from upstream: a first answer (200 with a Content-Length), a resumed
// one (206 from the offset, or a 200 to skip into), and upstream 4xx errors relayed to our
// clients as the registry errors they are. No message names an upstream host: which hosts
// stand behind a cache is the operator's business, and the log has them.
import { RegistryError, REGISTRY_ERRORS, type RegistryCode } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import { discardBody, type UpstreamResponse } from './chain.js';

/** A first response must be a 200 with a Content-Length; errors are relayed as the registry error they are. */
export async function expectFullBody(res: UpstreamResponse): Promise<number> {
  if (res.statusCode >= 400) throw await relayedError(res);
  if (res.statusCode !== 200) {
    // A 206 to a plain GET, say: its body is not the blob, and not worth reading to the end.
    discardBody(res.body);
    throw gatewayError('status', `an upstream answered a GET with ${res.statusCode}`);
  }
  const size = Number(res.headers['content-length']);
  if (!Number.isSafeInteger(size) || size < 0) {
    discardBody(res.body);
    throw gatewayError('status', 'an upstream sent no valid Content-Length');
  }
  return size;
}

/** A resumed response: 206 from `offset` (nothing to skip), or a 200 whose first `offset` bytes are skipped. */
export async function expectResumeBody(res: UpstreamResponse, offset: number, size: number): Promise<number> {
  if (res.statusCode === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (m && Number(m[1]) === offset && Number(m[2]) === size - 1) return 0;
    discardBody(res.body);
    throw gatewayError('status', 'an upstream answered the resume with a wrong Content-Range');
  }
  if (res.statusCode === 200 && Number(res.headers['content-length']) === size) return offset;
  if (res.statusCode >= 400) throw await relayedError(res);
  discardBody(res.body);
  throw gatewayError('status', `an upstream answered the resume with ${res.statusCode}`);
}

/** What an upstream 4xx is for our client, by status (docs/protocol.md §4: passed as is). */
const RELAYED: Readonly<Record<number, RegistryCode>> = {
  401: 'UNAUTHORIZED',
  403: 'DENIED',
  404: 'BLOB_UNKNOWN',
  416: 'RANGE_INVALID',
  429: 'TOOMANYREQUESTS',
};
/** Upstream headers a relayed error keeps. */
const RELAYED_HEADERS: Readonly<Record<string, string>> = {
  'www-authenticate': 'WWW-Authenticate',
  'retry-after': 'Retry-After',
};

/**
 * Turns an upstream 4xx into the registry error our client gets. An answer about the
 * request (401, 403, 404, 416, 429) goes back with its status, and with the upstream's own
 * code when the error table gives that code the same status (404 NAME_UNKNOWN, …). Any
 * other 4xx says the cache's request was refused, which is no fault of the client: 502.
 * A relayed error keeps the upstream's message and detail, and names no upstream: which
 * hosts stand behind a cache is the operator's business (the log has it).
 */
export async function relayedError(res: UpstreamResponse): Promise<RegistryError<string>> {
  let text = '';
  for await (const chunk of res.body) {
    if (text.length < 16_384) text += String(chunk);
  }
  const headers: Record<string, string> = {};
  for (const [from, to] of Object.entries(RELAYED_HEADERS)) {
    const value = res.headers[from];
    if (typeof value === 'string') headers[to] = value;
  }
  const byStatus = RELAYED[res.statusCode];
  if (byStatus === undefined) {
    return new RegistryError('UNAVAILABLE', {
      status: 502,
      message: `an upstream refused the request with ${res.statusCode}`,
      detail: { status: res.statusCode },
    });
  }
  let code: RegistryCode = byStatus;
  let message: string | undefined;
  let detail: unknown = {};
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
    const first = parsed.errors?.[0];
    const theirs = first?.code;
    if (
      theirs !== undefined &&
      theirs in REGISTRY_ERRORS &&
      REGISTRY_ERRORS[theirs as RegistryCode].status === res.statusCode
    ) {
      code = theirs as RegistryCode;
    }
    if (first?.message) message = first.message;
    if (first?.detail !== undefined) detail = first.detail;
  } catch {
    // Not registry JSON: keep the status's code.
  }
  return new RegistryError(code, {
    ...(message === undefined ? {} : { message }),
    headers,
    detail,
  });
}
