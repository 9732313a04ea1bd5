// What a fill accepts from upstream: a first answer (200 with a Content-Length), a resumed
// one (206 from the offset, or a 200 to skip into), and upstream 4xx errors relayed to our
// clients as the registry errors they are.
import { RegistryError, REGISTRY_ERRORS, type RegistryCode } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import { discardBody, type UpstreamResponse } from './chain.js';

/** A first response must be a 200 with a Content-Length; errors are relayed as the registry error they are. */
export async function expectFullBody(res: UpstreamResponse): Promise<number> {
  if (res.statusCode !== 200) throw await relayedError(res);
  const size = Number(res.headers['content-length']);
  if (!Number.isSafeInteger(size) || size < 0) {
    discardBody(res.body);
    throw gatewayError('status', `upstream ${res.host.url} sent no valid Content-Length`);
  }
  return size;
}

/** A resumed response: 206 from `offset` (nothing to skip), or a 200 whose first `offset` bytes are skipped. */
export async function expectResumeBody(res: UpstreamResponse, offset: number, size: number): Promise<number> {
  if (res.statusCode === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (m && Number(m[1]) === offset && Number(m[2]) === size - 1) return 0;
    discardBody(res.body);
    throw gatewayError('status', `upstream ${res.host.url} answered the resume with a wrong Content-Range`);
  }
  if (res.statusCode === 200 && Number(res.headers['content-length']) === size) return offset;
  if (res.statusCode >= 400) throw await relayedError(res);
  discardBody(res.body);
  throw gatewayError('status', `upstream ${res.host.url} answered the resume with ${res.statusCode}`);
}

/** Turns an upstream 4xx into the same registry error for our client (docs/protocol.md §4: passed as is). */
export async function relayedError(res: UpstreamResponse): Promise<RegistryError> {
  let text = '';
  for await (const chunk of res.body) {
    if (text.length < 16_384) text += String(chunk);
  }
  let code: RegistryCode =
    res.statusCode === 404
      ? 'BLOB_UNKNOWN'
      : res.statusCode === 401
        ? 'UNAUTHORIZED'
        : res.statusCode === 403
          ? 'DENIED'
          : 'UNAVAILABLE';
  let message: string | undefined;
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = parsed.errors?.[0];
    if (first?.code && first.code in REGISTRY_ERRORS) code = first.code as RegistryCode;
    if (first?.message) message = first.message;
  } catch {
    // Not registry JSON: keep the status-derived code.
  }
  const headers: Record<string, string> = {};
  const challenge = res.headers['www-authenticate'];
  if (typeof challenge === 'string') headers['WWW-Authenticate'] = challenge;
  return new RegistryError(code, {
    status: res.statusCode >= 400 && res.statusCode < 500 ? res.statusCode : 502,
    ...(message === undefined ? {} : { message }),
    headers,
    detail: { upstream: res.host.url },
  });
}
