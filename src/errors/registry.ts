// The registry error table (distribution spec, "Error Codes"; PROTOCOL.md §5).
// One table maps each code to its default HTTP status and message; every error
// response in the cache is rendered from it, so codes and statuses cannot drift.

export const REGISTRY_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'The operation is unsupported.' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  NOT_FOUND: { status: 404, message: 'not found' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
} as const satisfies Record<string, { status: number; message: string }>;

export type RegistryCode = keyof typeof REGISTRY_ERRORS;

export interface RegistryErrorOptions {
  /** Overrides the table's status (UNAVAILABLE is 502, 503 or 504). */
  status?: number;
  message?: string;
  detail?: unknown;
  /** Extra response headers, e.g. WWW-Authenticate or Retry-After. */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** The one error class the request path throws; handlers render it as registry JSON. */
export class RegistryError extends Error {
  readonly code: RegistryCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: RegistryCode, opts: RegistryErrorOptions = {}) {
    const entry = REGISTRY_ERRORS[code];
    super(opts.message ?? entry.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = opts.status ?? entry.status;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  /** The body of PROTOCOL.md §5: {"errors":[{code,message,detail}]}. */
  body(): string {
    const item: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) item.detail = this.detail;
    return JSON.stringify({ errors: [item] });
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}
