// The registry error table (distribution spec, "Error Codes"; docs/protocol.md §6).
// One table maps each code to its default HTTP status and message; every error
// response in the cache is rendered from it, so codes and statuses cannot drift.
import { DtrCacheError } from './base.js';

export interface RegistryErrorEntry {
  /** The status a code is sent with by default. */
  readonly status: number;
  readonly message: string;
  /** Other statuses the cache sends this code with (README's error table lists each). */
  readonly also?: readonly number[];
}

export type RegistryErrorTable = Readonly<Record<string, RegistryErrorEntry>>;

export const REGISTRY_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  // 400, 408, 413, 431: a request node's HTTP/1.1 parser refuses (server/client-error.ts).
  UNSUPPORTED: { status: 405, message: 'The operation is unsupported.', also: [400, 408, 413, 431] },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  NOT_FOUND: { status: 404, message: 'not found' },
  // distribution's code for a failure of the server itself (errcode.ErrorCodeUnknown).
  UNKNOWN: { status: 500, message: 'unknown error' },
  // 502 bad answer, 503 unreachable, 504 timeout (errors/upstream.ts); 508 a request loop.
  UNAVAILABLE: { status: 503, message: 'service unavailable', also: [502, 504, 508] },
} as const satisfies RegistryErrorTable;

export type RegistryCode = keyof typeof REGISTRY_ERRORS;

export interface RegistryErrorOptions {
  /** Overrides the table's status (UNAVAILABLE is 502, 503, 504 or 508; a relayed error keeps the upstream's). */
  status?: number;
  message?: string;
  detail?: unknown;
  /** Extra response headers, e.g. WWW-Authenticate or Retry-After. */
  headers?: Record<string, string>;
  cause?: unknown;
}

/**
 * The error the request path throws; handlers render it as registry JSON. `C` is widened
 * only by a subclass with a larger table (the DTR mock, which also takes pushes); in the
 * cache, `new RegistryError('…')` accepts exactly the codes of REGISTRY_ERRORS.
 */
export class RegistryError<C extends string = RegistryCode> extends DtrCacheError<C> {
  /** The table a code is looked up in; a subclass with more codes overrides it. */
  static readonly table: RegistryErrorTable = REGISTRY_ERRORS;

  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: NoInfer<C>, opts: RegistryErrorOptions = {}) {
    const entry = new.target.table[code];
    if (entry === undefined) throw new TypeError(`registry error code ${code} is not in ${new.target.name}.table`);
    super(code, opts.message ?? entry.message, { cause: opts.cause });
    this.status = opts.status ?? entry.status;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  /** The body of docs/protocol.md §6: {"errors":[{code,message,detail}]}. */
  body(): string {
    // Every error carries `detail`, an empty object when there is nothing to add.
    return JSON.stringify({ errors: [{ code: this.code, message: this.message, detail: this.detail ?? {} }] });
  }
}

/** 405 UNSUPPORTED, with the methods the resource takes: RFC 9110 §15.5.6 requires `Allow` on a 405. */
export function methodNotAllowed(allow: readonly string[], message?: string): RegistryError {
  return new RegistryError('UNSUPPORTED', {
    ...(message === undefined ? {} : { message }),
    headers: { Allow: allow.join(', ') },
  });
}

export function isRegistryError(err: unknown): err is RegistryError<string> {
  return err instanceof RegistryError;
}

/** What the client gets for any error: a RegistryError as it is, anything else as a 500 UNKNOWN. */
export function toRegistryError(err: unknown): RegistryError<string> {
  return isRegistryError(err) ? err : new RegistryError('UNKNOWN', { message: 'internal error', cause: err });
}
