// A node of two serving processes in a 2.2 chain: an upstream tier (another cache) in front
// of the origin, both sharing the origin's signing keys, with run-time certificates.
import type { TestContext } from 'node:test';
import { createHash } from 'node:crypto';
import type { Client } from 'undici';
import { createTestCa } from '../../testkit/pki.js';
import { spawnCache, writeConfig } from './cache.js';
import { first, pinConnections } from './node-probe.js';
import { TestOrigin } from './origin.js';

export async function chainedNode(t: TestContext) {
  const ca = await createTestCa();
  const regional = await TestOrigin.start(await ca.issue('regional'));
  t.after(() => regional.close());
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  // The tier trusts the origin's redirect tokens.
  regional.keys = origin.keys;
  const cfg = await writeConfig({
    upstreams: { origin: origin.url, hosts: [regional.url] },
    cas: [ca.certPath],
    tls: await ca.issue('cache'),
    extraHttp: '  processes: 2\n',
  });
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  /** One connection on each process named. */
  const pin = async (pids: number[]) => (await pinConnections(t, cache.url, ca.cert, cache.lines, pids, 1)).map(first);
  return { regional, origin, cache, pin };
}

export interface Got {
  status: number;
  /** `sha256:<hex>` of the body; '' when it broke. */
  digest: string;
  /** Set when the body broke (cut or reset) instead of ending cleanly. */
  error: unknown;
}

/** A GET on a pinned connection: the status and the body's digest, or the error that cut it. */
export async function getDigest(client: Client, path: string): Promise<Got> {
  const hash = createHash('sha256');
  const res = await client.request({ path, method: 'GET' });
  try {
    for await (const chunk of res.body) hash.update(chunk as Buffer);
    return { status: res.statusCode, digest: `sha256:${hash.digest('hex')}`, error: null };
  } catch (error) {
    return { status: res.statusCode, digest: '', error };
  }
}
