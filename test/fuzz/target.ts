// The system under fuzz: the test origin on loopback (real TLS, real signing keys) and the
// cache as its own process (`dtr-cache serve`), so "never crashes" is about the process.
// Every example first checks that the process is still up and that its log holds no
// unexpected error since the last check.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { spawnCacheProcess, writeCacheConfig } from '../../testkit/cache-process.js';
import type { ServiceProcess } from '../../testkit/service-process.js';
import { TestOrigin, type OriginBlob } from '../helpers/origin.js';
import type { World } from './route-model.js';
import { h1Request } from './wire.js';

/** Repositories the origin mints tokens for. */
export const NAMES = ['team/app', 'library/ubuntu-base', 'a0/b_c/d-e.f'] as const;
/**
 * Blob sizes: empty, one byte, around one read, and over the small-blob memory cache
 * (64 KiB), so ranges meet every edge of the sending code.
 */
const SIZES = [0, 1, 2, 100, 4096, 65_537, 300_000] as const;

export interface Target {
  ca: TestCa;
  origin: TestOrigin;
  cache: ServiceProcess;
  port: number;
  url: string;
  blobs: OriginBlob[];
  /** Digests the origin does not have (tokens for them are valid: the origin answers 404). */
  unknown: string[];
  /** This cache's name in Via, learnt from the request it sent the origin. */
  viaName: string;
  /** A valid token for every (name, digest) pair of NAMES × (blobs and unknown). */
  tokens: Map<string, string>;
  tokenFor(name: string, digest: string): string;
  /** What the route model knows: blobs, token grants, our Via name; kept up to date by fresh(). */
  world: World;
  /** A new blob at the origin, with tokens for every name: its first pull is a miss. */
  fresh(size: number): Promise<OriginBlob>;
  /**
   * Throws if the cache process has exited, or logged at level error (an unexpected error:
   * a 500, a crash in the making) since the previous call; clears what it read.
   */
  healthy(): void;
  /** Request log lines since the previous call (then cleared), for checks on statuses. */
  takeRequestLines(): Array<Record<string, unknown>>;
}

function randomDigest(): string {
  return `sha256:${randomBytes(32).toString('hex')}`;
}

export async function startTarget(t: TestContext, extraHttp = ''): Promise<Target> {
  const ca = await createTestCa('dtr-cache fuzz CA');
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-fuzz-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  t.after(() => rm(ca.dir, { recursive: true, force: true }));
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  // One key of each accepted algorithm (k1 ES256, k2 RS256, k3 EdDSA), published before the cache starts.
  await origin.rotate('RS256');
  await origin.rotate('EdDSA');
  const blobs = SIZES.map((n) => origin.add(randomBytes(n)));
  const { path } = await writeCacheConfig(dir, {
    upstreams: [origin.url],
    cas: [ca.certPath],
    tls: await ca.issue('cache'),
    logLevel: 'info',
    extraHttp,
  });
  const cache = await spawnCacheProcess(path);
  t.after(() => cache.stop('SIGKILL'));
  let exit: string | null = null;
  cache.child.once('exit', (code, signal) => (exit = `exited with code ${code} signal ${signal}`));

  const unknown = [randomDigest(), randomDigest()];
  const tokens = new Map<string, string>();
  for (const name of NAMES)
    for (const digest of [...blobs.map((b) => b.digest), ...unknown])
      tokens.set(`${name}@${digest}`, await origin.mint(name, digest, { ttlSec: 3600 }));

  // One pull teaches us the cache's Via name (random per process), for the loop guard's checks.
  const first = blobs[1]!;
  const primed = await h1Request(cache.port, ca.cert, {
    method: 'GET',
    target: `/v2/${NAMES[0]}/blobs/${first.digest}?token=${tokens.get(`${NAMES[0]}@${first.digest}`)}`,
    headers: [],
  });
  if (primed?.status !== 200) throw new Error(`priming pull answered ${primed?.status}`);
  const via = origin.seen.find((r) => r.headers.via !== undefined)?.headers.via;
  const viaName = /^1\.1 (\S+)$/.exec(String(via))?.[1];
  if (viaName === undefined) throw new Error(`no Via from the cache: ${String(via)}`);

  const known = new Set(blobs.map((b) => b.digest));
  const grants = new Map<string, { name: string; digest: string }>();
  for (const [key, token] of tokens) {
    const at = key.lastIndexOf('@');
    grants.set(token, { name: key.slice(0, at), digest: key.slice(at + 1) });
  }
  const requestLines: Array<Record<string, unknown>> = [];
  const target: Target = {
    ca,
    origin,
    cache,
    port: cache.port,
    url: cache.url,
    blobs,
    unknown,
    viaName,
    tokens,
    tokenFor(name, digest) {
      const token = tokens.get(`${name}@${digest}`);
      if (token === undefined) throw new Error(`no token minted for ${name}@${digest}`);
      return token;
    },
    world: { known, grants, viaName },
    async fresh(size) {
      const blob = origin.add(randomBytes(size));
      blobs.push(blob);
      known.add(blob.digest);
      for (const name of NAMES) {
        const token = await origin.mint(name, blob.digest, { ttlSec: 3600 });
        tokens.set(`${name}@${blob.digest}`, token);
        grants.set(token, { name, digest: blob.digest });
      }
      return blob;
    },
    healthy() {
      if (exit !== null) throw new Error(`the cache process ${exit}; stderr: ${cache.stderr().slice(-2000)}`);
      const lines = cache.lines.splice(0);
      for (const line of lines) {
        if (typeof line['level'] === 'number' && line['level'] >= 50)
          throw new Error(`the cache logged an error: ${JSON.stringify(line).slice(0, 2000)}`);
        if (line['msg'] === 'request') requestLines.push(line);
      }
      // Only tests that read them take these lines; the others must not grow memory.
      if (requestLines.length > 10_000) requestLines.splice(0, requestLines.length - 10_000);
      if (/^\s+at /m.test(cache.stderr())) throw new Error(`a stack trace on stderr: ${cache.stderr().slice(-2000)}`);
    },
    takeRequestLines() {
      target.healthy();
      return requestLines.splice(0);
    },
  };
  return target;
}
