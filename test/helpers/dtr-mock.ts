// Shared by the test/integration/dtr-mock-*.test.ts files: one test CA and TLS leaf per test
// file, an undici agent that trusts it (both closed after the file's tests), the mock's test
// users, a mock started per test with teardown, temp dirs, and test bytes and their digest.
// Requests to the mock are in dtr-mock-http.ts.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';
import { Agent } from 'undici';
import { startDtrMock, type DtrMock, type DtrMockOptions } from '../../bench/dtr-mock/index.js';
import { createTestCa, type Leaf } from '../../testkit/pki.js';

export const DEADLINE = 20_000;
export const ca = await createTestCa('dtr-mock test CA');
export const leaf: Leaf = await ca.issue('dtr-mock');
export const agent = new Agent({ connect: { ca: ca.cert } });
after(async () => {
  await agent.close();
  await rm(ca.dir, { recursive: true, force: true });
});

export const USERS: NonNullable<DtrMockOptions['users']> = {
  boss: { password: 'boss-pw', admin: true },
  alice: { password: 'alice-pw', repos: { 'library/app': ['pull', 'push'], 'team/*': ['pull', 'push'] } },
  bob: { password: 'bob-pw', repos: { 'library/app': ['pull'] } },
  carol: { password: 'carol-pw', repos: { '*': ['pull'] } },
  dave: { password: 'dave-pw', repos: {} },
};

export async function tmp(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `dtr-mock-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function mock(t: TestContext, opts: DtrMockOptions = {}): Promise<DtrMock> {
  const m = await startDtrMock({ tls: { cert: leaf.cert, key: leaf.key }, users: USERS, ...opts });
  t.after(() => m.close());
  return m;
}

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Deterministic test bytes. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
