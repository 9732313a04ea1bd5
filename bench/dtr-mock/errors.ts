// Registry error answers of the mock origin (distribution spec, "Error Codes";
// docs/protocol.md §6): the cache's RegistryError over a wider table, the cache's codes plus
// those only a registry that takes pushes answers with, so shared codes cannot drift.
import type { ServerResponse } from 'node:http';
import { REGISTRY_ERRORS, RegistryError, type RegistryErrorTable } from '../../src/errors/registry.js';

const MOCK_ERRORS = {
  ...REGISTRY_ERRORS,
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  CONFLICT: { status: 409, message: 'conflict' },
  INVALID_REQUEST: { status: 400, message: 'invalid request' },
} as const satisfies RegistryErrorTable;

export type MockErrorCode = keyof typeof MOCK_ERRORS;

/** The one error the mock's handlers throw; `sendError` renders it. */
export class MockError extends RegistryError<MockErrorCode> {
  static override readonly table: RegistryErrorTable = MOCK_ERRORS;
}

/**
 * Answers with the registry error body, or, when headers already went out,
 * destroys the response: a half-sent body must never look complete.
 */
export function sendError(res: ServerResponse, err: unknown, head = false): void {
  const e = err instanceof MockError ? err : new MockError('UNKNOWN', { message: 'internal error', cause: err });
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
