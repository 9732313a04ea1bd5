// Upstream failures map to gateway statuses in one place (docs/architecture.md §7):
// timeout → 504, unreachable → 503, reset or bad status → 502. The undici error stays as `cause`.
import { errnoCode } from './inspect.js';
import { RegistryError } from './registry.js';

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_DESTROYED',
  'UND_ERR_CLOSED',
]);

export type UpstreamFailureKind = 'timeout' | 'unreachable' | 'reset' | 'status' | 'throttled';

export function classifyUpstreamError(err: unknown): UpstreamFailureKind {
  const code = errnoCode(err);
  if (code !== undefined && TIMEOUT_CODES.has(code)) return 'timeout';
  if (code !== undefined && UNREACHABLE_CODES.has(code)) return 'unreachable';
  return 'reset';
}

const STATUS_BY_KIND: Record<Exclude<UpstreamFailureKind, 'throttled'>, number> = {
  timeout: 504,
  unreachable: 503,
  reset: 502,
  status: 502,
};

/**
 * The client-facing error when no upstream could serve a request. Every host throttling
 * (429) is passed on as such, with the last host's Retry-After, so the client backs off.
 */
export function gatewayError(
  kind: UpstreamFailureKind,
  message: string,
  cause?: unknown,
  retryAfter?: string,
): RegistryError<'UNAVAILABLE' | 'TOOMANYREQUESTS'> {
  if (kind === 'throttled') {
    return new RegistryError('TOOMANYREQUESTS', {
      message,
      detail: { reason: kind },
      headers: { 'Retry-After': retryAfter ?? '1' },
      ...(cause === undefined ? {} : { cause }),
    });
  }
  return new RegistryError('UNAVAILABLE', {
    status: STATUS_BY_KIND[kind],
    message,
    detail: { reason: kind },
    ...(cause === undefined ? {} : { cause }),
  });
}
