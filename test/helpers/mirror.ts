// Mirror-mode set-up for tests: a DTR mock as the mirrored registry (token auth, users with
// rights, TLS from a fresh CA), a cache whose config names it in `mirrors:` (or `proxy:`),
// and readers for the evidence: the upstream's request log and the cache's log lines.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Agent } from 'undici';
import {
  startDtrMock,
  type DtrMock,
  type DtrMockOptions,
  type LogEntry,
  type UserSpec,
} from '../../bench/dtr-mock/index.js';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { startTestCache, type TestCache } from './cache.js';
import { waitFor } from './deadline.js';
import { agentFor, fetchBlob, type Fetched } from './http.js';
import { removeAtExit } from '../../testkit/tmp.js';

/** The mirror's own account at the upstream, and a user with more rights. */
export const MIRROR_USER = { user: 'mirror', password: 'mirror-pw' } as const;
export const ALICE = { user: 'alice', password: 'alice-pw' } as const;

export interface MirrorEntry {
  registry: string;
  /** Defaults to the stack's upstream. */
  remoteurl?: string;
  username?: string;
  password?: string;
  tagttl?: string;
  ttl?: string;
  default?: boolean;
  /** Extra YAML lines of the entry, indented by 4 spaces. */
  extra?: string;
}

export interface MirrorStackOptions {
  /** Upstream users besides admin; default: `mirror` may pull everything. */
  users?: Record<string, UserSpec>;
  mirrors?: MirrorEntry[];
  /** DTR mode too: the downstream middleware with these upstreams. */
  dtrUpstreams?: string[];
  deleteEnabled?: boolean;
  upstream?: Omit<DtrMockOptions, 'tls' | 'users' | 'storage'>;
  /** Extra top-level YAML after the mirrors (e.g. a `proxy:` section instead). */
  extraTop?: string;
  /** The CA to use (when the test made servers of its own before the stack). */
  ca?: TestCa;
}

export interface MirrorStack {
  dir: string;
  ca: TestCa;
  upstream: DtrMock;
  cache: TestCache;
  agent: Agent;
  /** A request to the cache; `path` starts with `/v2/`. */
  get(path: string, opts?: { method?: 'GET' | 'HEAD'; headers?: Record<string, string> }): Promise<Fetched>;
  /** Upstream requests so far (method, path), optionally filtered by a path pattern. */
  upstreamLog(pattern?: RegExp): LogEntry[];
}

export const REGISTRY = 'registry.test';

export function mirrorsYaml(entries: MirrorEntry[], upstreamUrl: string, caPath: string): string {
  const lines = ['mirrors:'];
  for (const e of entries) {
    lines.push(`  - registry: ${e.registry}`, `    remoteurl: ${e.remoteurl ?? upstreamUrl}`, `    cas: [${caPath}]`);
    if (e.username !== undefined) lines.push(`    username: ${e.username}`, `    password: ${e.password ?? ''}`);
    if (e.tagttl !== undefined) lines.push(`    tagttl: ${e.tagttl}`);
    if (e.ttl !== undefined) lines.push(`    ttl: ${e.ttl}`);
    if (e.default === true) lines.push('    default: true');
    if (e.extra !== undefined) lines.push(e.extra);
  }
  return `${lines.join('\n')}\n`;
}

export async function startMirrorStack(t: TestContext, o: MirrorStackOptions = {}): Promise<MirrorStack> {
  const dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-mirror-')));
  try {
    const stack = await startIn(t, dir, o);
    // After hooks run in the order they were added: the files go once the servers stopped.
    // A fill the closed cache abandoned may still publish for a moment: retry ENOTEMPTY.
    t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }));
    return stack;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(t: TestContext, dir: string, o: MirrorStackOptions): Promise<MirrorStack> {
  const ca = o.ca ?? (await createTestCa('dtr-cache mirror test CA', await mkdtemp(join(dir, 'pki-'))));
  const upstream = await startDtrMock({
    ...o.upstream,
    tls: await ca.issue('upstream'),
    storage: { dir: join(dir, 'upstream') },
    users: o.users ?? {
      [MIRROR_USER.user]: { password: MIRROR_USER.password, repos: { '*': ['pull'] } },
      [ALICE.user]: { password: ALICE.password, repos: { '*': ['pull', 'push'] } },
    },
  });
  t.after(() => upstream.close());
  const mirrors = o.mirrors ?? [
    { registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true },
  ];
  const cache = await startTestCache(t, {
    upstreams: o.dtrUpstreams ?? [],
    cas: [ca.certPath],
    tls: await ca.issue('cache'),
    root: join(dir, 'cache'),
    deleteEnabled: o.deleteEnabled ?? true,
    extraTop: `${mirrors.length === 0 ? '' : mirrorsYaml(mirrors, upstream.url, ca.certPath)}${o.extraTop ?? ''}`,
  });
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  return {
    dir,
    ca,
    upstream,
    cache,
    agent,
    get: (path, opts = {}) => fetchBlob(agent, `${cache.url}${path}`, opts),
    upstreamLog: (pattern) => upstream.stats().log.filter((e) => pattern === undefined || pattern.test(e.path)),
  };
}

/** The Accept header skopeo, podman and containerd send for manifests. */
export const ACCEPT_ALL = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The cache's request log lines for one route. */
export async function requestLines(cache: TestCache, route: string): Promise<Array<Record<string, unknown>>> {
  return (await cache.logLines()).filter((l) => l['msg'] === 'request' && l['route'] === route);
}

export interface Pulled {
  manifest: Fetched;
  /** Digests of config and layers, in manifest order, each checked against its bytes. */
  blobs: string[];
  statuses: number[];
}

/** Pulls an image as a client does: the manifest, then every blob, each body hashed against its digest. */
export async function pullImage(s: MirrorStack, repo: string, ref: string, query = ''): Promise<Pulled> {
  const manifest = await s.get(`/v2/${repo}/manifests/${ref}${query}`, { headers: { accept: ACCEPT_ALL } });
  if (manifest.status !== 200) return { manifest, blobs: [], statuses: [manifest.status] };
  const doc = JSON.parse(manifest.body.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  const blobs = [doc.config.digest, ...doc.layers.map((l) => l.digest)];
  const statuses = [manifest.status];
  for (const d of blobs) {
    const r = await s.get(`/v2/${repo}/blobs/${d}${query}`);
    statuses.push(r.status);
    if (r.status === 200 && `sha256:${r.sha256}` !== d) throw new Error(`blob ${d} arrived with other bytes`);
  }
  return { manifest, blobs, statuses };
}

/** Upstream blob GETs answered 200, per digest. */
export function upstreamBlobGets(s: MirrorStack, digests: string[]): number[] {
  const log = s.upstreamLog(/\/blobs\/sha256:/);
  return digests.map((d) => log.filter((e) => e.method === 'GET' && e.status === 200 && e.path.endsWith(d)).length);
}

/** Waits until the cache logged a publication for every digest (it follows the last byte, off the client's path). */
export async function waitPublished(cache: TestCache, digests: string[]): Promise<void> {
  await waitFor(15_000, `publication of ${digests.length} blob(s)`, async () => {
    const lines = await cache.logLines();
    return digests.every((d) => lines.some((l) => l['msg'] === 'fill published' && l['digest'] === d)) || undefined;
  });
}
