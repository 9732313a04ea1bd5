// The state a request handler of the mock origin sees, and small HTTP helpers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RegistryTokens, UserDb } from './auth.js';
import type { ContentCaches } from './caches-api.js';
import { MockError } from './errors.js';
import type { Faults } from './faults.js';
import type { KeyRing } from './keys.js';
import type { ManifestIndex } from './manifests.js';
import type { Stats } from './stats.js';
import type { BlobStorage, UploadTarget } from './storage.js';
import { API_VERSION } from '../../src/server/respond.js';

/** Runtime-settable knobs (`POST /_mock/config` and the DtrMock methods). */
export interface Knobs {
  latencyMs: number;
  /** Bytes per second per connection; null for no cap. */
  bandwidth: number | null;
  /** false: pulls need no auth at all and nothing is redirected. */
  tokens: boolean;
  /** Lifetime of the redirect tokens the origin issues, seconds (≤ 1200). */
  redirectTtlSec: number;
  /** While set, every manifest GET/HEAD answers this error status (a registry in trouble: 5xx, 429). */
  manifestStatus: number | null;
}

export interface UploadSession {
  name: string;
  target: UploadTarget;
  busy: boolean;
  /** Last activity, epoch ms: sessions idle for an hour are dropped. */
  touched: number;
}

export interface MockContext {
  /** `https://localhost:PORT`; set once listening. */
  baseUrl: string;
  service: string;
  verifyManifestRefs: boolean;
  /** A blob is served only from a repository it belongs to (pushed there, or in one of its manifests). */
  scopeBlobs: boolean;
  /** Serve `GET /v2/<name>/referrers/<digest>` (OCI distribution 1.1); a 404 otherwise. */
  referrersApi: boolean;
  users: UserDb;
  tokens: RegistryTokens;
  keys: KeyRing;
  caches: ContentCaches;
  storage: BlobStorage;
  manifests: ManifestIndex;
  uploads: Map<string, UploadSession>;
  faults: Faults;
  stats: Stats;
  knobs: Knobs;
}

/** Per-request facts the request log wants. */
export interface RequestState {
  user: string | null;
}

// The registry's API version header, as the cache sends it.
export { API_VERSION };

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...API_VERSION,
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** Reads a small request body, refusing more than `limit` bytes. */
export async function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new MockError('SIZE_INVALID', { status: 413, message: `body larger than ${limit} bytes` });
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
