// Shared set-up of the real-client end-to-end tests: a DTR mock and a cache over TLS
// with a fresh CA, the cache registered and selected for users through the mock's HTTP
// API, and readers for the evidence (mock stats per digest, cache log lines).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startDtrMock, type DtrMock, type UserSpec } from '../../bench/dtr-mock/index.js';
import { DtrApi, type Credentials } from '../../testkit/dtr-api.js';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { caCertDir, hasTool } from '../../testkit/tools.js';
import { startTestCache, type TestCache } from '../helpers/cache.js';

export const ADMIN: Credentials = { user: 'admin', password: 'admin-pw' };

export interface E2eStack {
  dir: string;
  ca: TestCa;
  /** Holds the CA as ca.crt, for --src-cert-dir / --cert-dir. */
  certDir: string;
  mock: DtrMock;
  api: DtrApi;
  cache: TestCache;
}

/**
 * Mock (admin + `users`) and a cache upstream of it, both on TLS; the cache is
 * registered as `near` through `POST /api/v0/content_caches` and selected for each of
 * `selectFor` through `PATCH /api/v0/accounts/{user}/settings`, as an operator would.
 */
export async function startE2eStack(
  t: TestContext,
  label: string,
  users: Record<string, UserSpec>,
  selectFor: string[],
): Promise<E2eStack> {
  const dir = await mkdtemp(join(tmpdir(), `dtr-cache-e2e-${label}-`));
  try {
    const stack = await startIn(t, dir, label, users, selectFor);
    // After hooks run in the order they were added: the files go once the servers stopped.
    t.after(() => rm(dir, { recursive: true, force: true }));
    return stack;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(
  t: TestContext,
  dir: string,
  label: string,
  users: Record<string, UserSpec>,
  selectFor: string[],
): Promise<E2eStack> {
  const ca = await createTestCa(`dtr-cache e2e ${label} CA`, await mkdtemp(join(dir, 'pki-')));
  const certDir = await caCertDir(ca.certPath, join(dir, 'certs'));
  const mock = await startDtrMock({
    tls: await ca.issue('dtr-mock'),
    storage: { dir: join(dir, 'origin') },
    users: { ...users, [ADMIN.user]: { password: ADMIN.password, admin: true } },
  });
  t.after(() => mock.close());
  const cache = await startTestCache(t, {
    upstreams: [mock.url],
    cas: [ca.certPath],
    tls: await ca.issue('cache'),
    root: join(dir, 'cache'),
  });
  const api = new DtrApi(mock.url, ca.cert);
  t.after(() => api.close());
  const registered = await api.registerContentCache(ADMIN, 'near', cache.url);
  assert.equal(registered.host, cache.url);
  for (const u of selectFor) assert.equal(await api.selectContentCache(ADMIN, u, 'near'), 'near');
  return { dir, ca, certDir, mock, api, cache };
}

/** Whether `tool` can run; in CI a missing skopeo fails the test instead of skipping it. */
export async function requireTool(t: TestContext, tool: string, requiredInCi: boolean): Promise<boolean> {
  if (await hasTool(tool)) return true;
  if (requiredInCi && process.env['CI'] === 'true')
    assert.fail(`${tool} is required in CI (apt-get install -y ${tool})`);
  t.skip(
    `${tool} is not installed${requiredInCi ? '' : ` (optional client: apt-get install -y ${tool} to run this test)`}`,
  );
  return false;
}

export interface BlobCounts {
  redirected: number;
  served: number;
}

/** GET counts at the origin for each digest. */
export function originGets(mock: DtrMock, digests: string[]): Map<string, BlobCounts> {
  const st = mock.stats();
  return new Map(
    digests.map((d) => {
      const g = st.blobs[d]?.get;
      return [d, { redirected: g?.redirected ?? 0, served: g?.served ?? 0 }];
    }),
  );
}

export type LogLine = Record<string, unknown>;

/** The cache's blob request lines (GET) with `outcome`, per digest, among `lines`. */
export function outcomes(lines: LogLine[], digest: string): string[] {
  return lines
    .filter((l) => l['msg'] === 'request' && l['route'] === 'blob' && l['method'] === 'GET' && l['digest'] === digest)
    .map((l) => String(l['outcome']));
}

export function fillsPublished(lines: LogLine[], digest: string): number {
  return lines.filter((l) => l['msg'] === 'fill published' && l['digest'] === digest).length;
}
