// Registry error answers of the mock origin (distribution spec, "Error Codes";
// PROTOCOL.md §5): the cache's table (src/errors/registry.ts), so shared codes cannot
// drift, plus the codes only a registry that takes pushes answers with.
import type { ServerResponse } from 'node:http';
import { REGISTRY_ERRORS } from '../../src/errors/registry.js';

const TABLE = {
  ...REGISTRY_ERRORS,
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  CONFLICT: { status: 409, message: 'conflict' },
  INVALID_REQUEST: { status: 400, message: 'invalid request' },
  INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type MockErrorCode = keyof typeof TABLE;

export interface MockErrorOptions {
  status?: number;
  message?: string;
  detail?: unknown;
  headers?: Record<string, string>;
  cause?: unknown;
}

/** The one error the mock's handlers throw; `sendError` renders it. */
export class MockError extends Error {
  readonly code: MockErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: MockErrorCode, opts: MockErrorOptions = {}) {
    super(opts.message ?? TABLE[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MockError';
    this.code = code;
    this.status = opts.status ?? TABLE[code].status;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  body(): string {
    const item: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) item.detail = this.detail;
    return JSON.stringify({ errors: [item] });
  }
}

/**
 * Answers with the registry error body, or, when headers already went out,
 * destroys the response: a half-sent body must never look complete.
 */
export function sendError(res: ServerResponse, err: unknown, head = false): void {
  const e = err instanceof MockError ? err : new MockError('INTERNAL', { cause: err });
  if (res.headersSent) {
    res.destroy(e);
    return;
  }
  const body = e.body();
  // A request body left unread (say a refused upload) would have to be drained
  // before the connection could be reused: close it instead.
  const unread = res.req !== undefined && !res.req.complete;
  res.writeHead(e.status, {
    ...e.headers,
    ...(unread ? { Connection: 'close' } : {}),
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Docker-Distribution-API-Version': 'registry/2.0',
  });
  res.end(head ? undefined : body);
}
