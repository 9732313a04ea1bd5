// Errors of the trusted-key machinery (JWK Set sources and the KeySet).
// They never reach a client directly: the composition root turns a failed start into
// an exit, and the TokenVerifier maps lookup failures to registry errors. Callers branch
// on `code`, never on the message (docs/architecture.md §7).
import { DtrCacheError } from '../errors/base.js';

export type JwksErrorCode =
  /** The loader could not produce the document (I/O error, HTTP status, bad JSON). */
  | 'JWKS_LOAD_FAILED'
  /** The document is not a JWK Set (RFC 7517 §5) or holds no usable signing key. */
  | 'JWKS_INVALID'
  /** No key set has been loaded yet (start() not awaited, or every load failed). */
  | 'JWKS_NOT_LOADED'
  /** No trusted key has this `kid`, even after the allowed refresh. */
  | 'KID_UNKNOWN'
  /** The key named by `kid` is not for the token's `alg` (RFC 7515 §4.1.1, RFC 8725 §3.1). */
  | 'ALG_MISMATCH';

export class JwksError extends DtrCacheError<JwksErrorCode> {}

export function isJwksError(err: unknown): err is JwksError {
  return err instanceof JwksError;
}

/** The subset of a pino logger that auth uses; the composition root passes a child logger. */
export interface AuthLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export const silentLogger: AuthLogger = {
  info() {},
  warn() {},
};
