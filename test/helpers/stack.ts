// One test origin + one cache over real TLS with a fresh CA: the common set-up.
import type { TestContext } from 'node:test';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { startTestCache, writeConfig, type CacheSpec, type TestCache } from './cache.js';
import type { StartOptions } from '../../src/main.js';
import { agentFor } from './http.js';
import { TestOrigin } from './origin.js';
import type { Agent } from 'undici';

export interface Stack {
  ca: TestCa;
  origin: TestOrigin;
  cache: TestCache;
  h1: Agent;
  h2: Agent;
  blobUrl(name: string, digest: string, token?: string): string;
}

export async function startStack(
  t: TestContext,
  spec: Partial<CacheSpec> = {},
  opts: Omit<StartOptions, 'log'> = {},
): Promise<Stack> {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cache = await startTestCache(
    t,
    {
      upstreams: [origin.url],
      cas: [ca.certPath],
      tls: await ca.issue('cache'),
      ...spec,
    },
    opts,
  );
  const h1 = agentFor(ca.cert, false);
  const h2 = agentFor(ca.cert, true);
  t.after(async () => {
    await h1.destroy();
    await h2.destroy();
  });
  return {
    ca,
    origin,
    cache,
    h1,
    h2,
    blobUrl: (name, digest, token) =>
      `${cache.url}/v2/${name}/blobs/${digest}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`,
  };
}

/**
 * A test origin (closed after the test) and a config file for a cache in front of it, for
 * tests that run the cache as its own process (spawnCache) or edit the file first.
 */
export async function originConfig(
  t: TestContext,
  spec: Partial<CacheSpec> = {},
): Promise<{ ca: TestCa; origin: TestOrigin; cfg: Awaited<ReturnType<typeof writeConfig>> }> {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cfg = await writeConfig({ upstreams: [origin.url], cas: [ca.certPath], tls: await ca.issue('cache'), ...spec });
  return { ca, origin, cfg };
}
