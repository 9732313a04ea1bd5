// Response helpers: registry error JSON (docs/protocol.md §6) and the blob headers of §5.
import { RegistryError } from '../errors/registry.js';
import type { ResLike } from './http-types.js';

export const API_VERSION = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

/** What names a blob in any answer about it, an error (416) as well as its bytes. */
export function blobValidators(digest: string): Record<string, string> {
  return { 'Docker-Content-Digest': digest, ETag: `"${digest}"`, 'Accept-Ranges': 'bytes' };
}

export function blobHeaders(digest: string): Record<string, string> {
  return {
    'Content-Type': 'application/octet-stream',
    ...blobValidators(digest),
    'Cache-Control': 'max-age=31536000',
    ...API_VERSION,
  };
}

/** Before headers: the registry error. After: the stream is destroyed (never a clean end). */
/** `extra`: headers beyond the error's own (a challenge the router adds to a relayed 401). */
export function sendError(
  res: ResLike,
  err: RegistryError<string>,
  head: boolean,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = err.body();
  // A HEAD's Content-Length must be what the GET would send (RFC 9110 §8.6), and a relayed
  // error's GET body is the upstream's, which an upstream HEAD does not show: none is sent.
  res.writeHead(err.status, {
    'Content-Type': 'application/json; charset=utf-8',
    ...(head ? {} : { 'Content-Length': Buffer.byteLength(body) }),
    ...API_VERSION,
    ...err.headers,
    ...extra,
  });
  res.end(head ? undefined : body);
}

export function sendJson(res: ResLike, status: number, value: unknown, head = false): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...API_VERSION,
  });
  res.end(head ? undefined : body);
}
