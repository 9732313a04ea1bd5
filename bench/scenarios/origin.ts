// The DTR mock as its own process, playing a far-away origin (added latency, a per-
// connection bandwidth cap), and the harness's calls to it: minting redirect tokens and
// reading how many blob GETs it served.
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { StatsSnapshot } from '../dtr-mock/index.js';
import type { Leaf } from '../../testkit/pki.js';
import { REPO } from './corpus.js';
import { findLogLine, spawnLogged, waitReady, type Proc } from './procs.js';

const MOCK_MAIN = new URL('../dtr-mock/main.js', import.meta.url).pathname;
const ADMIN = `Basic ${Buffer.from('admin:admin').toString('base64')}`;

export interface MockSpec {
  name: string;
  workDir: string;
  leaf: Leaf;
  caPem: string;
  storageDir: string;
  latencyMs: number;
  bandwidth: number;
  tokens: boolean;
  /** Idle keep-alive of client connections (the mock's default, 5 s, when absent). */
  keepAliveMs?: number;
}

export class MockOrigin {
  readonly #agent: Agent;
  readonly #tokens = new Map<string, string>();

  private constructor(
    readonly proc: Proc,
    readonly url: string,
    caPem: string,
  ) {
    this.#agent = new Agent({ connect: { ca: caPem }, connections: 64 });
  }

  static async start(s: MockSpec): Promise<MockOrigin> {
    const proc = await spawnLogged({
      name: s.name,
      command: process.execPath,
      args: [
        MOCK_MAIN,
        '--port',
        '0',
        '--cert',
        s.leaf.certPath,
        '--key',
        s.leaf.keyPath,
        '--storage',
        s.storageDir,
        '--latency-ms',
        String(s.latencyMs),
        '--bandwidth',
        String(s.bandwidth),
        '--redirect-ttl',
        '1200',
        ...(s.tokens ? [] : ['--no-tokens']),
        ...(s.keepAliveMs === undefined ? [] : ['--keep-alive-ms', String(s.keepAliveMs)]),
      ],
      logFile: join(s.workDir, `${s.name}.log`),
    });
    const url = await waitReady(proc, 20_000, () =>
      findLogLine(proc.logFile, (l) => (l['event'] === 'listening' ? String(l['url']) : undefined)),
    );
    return new MockOrigin(proc, url, s.caPem);
  }

  /** A redirect token for `digest` (20 minutes, the protocol's longest), minted once per digest. */
  async token(digest: string): Promise<string> {
    const have = this.#tokens.get(digest);
    if (have !== undefined) return have;
    const res = await request(`${this.url}/_mock/token`, {
      method: 'POST',
      dispatcher: this.#agent,
      headers: { authorization: ADMIN, 'content-type': 'application/json' },
      body: JSON.stringify({ sub: 'bench', name: REPO, digest, ttlSec: 1200 }),
    });
    const body = (await res.body.json()) as { token?: string };
    if (res.statusCode !== 200 || typeof body.token !== 'string')
      throw new Error(`mock refused to mint a token: ${res.statusCode}`);
    this.#tokens.set(digest, body.token);
    return body.token;
  }

  /** Mints tokens for many digests, 32 at a time (each call pays the mock's latency). */
  async tokens(digests: string[]): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = next++; i < digests.length; i = next++) await this.token(digests[i] ?? '');
      }),
    );
  }

  /** `/v2/<repo>/blobs/<digest>` with the redirect token, as a redirected client asks. */
  async blobPath(digest: string): Promise<string> {
    return `/v2/${REPO}/blobs/${digest}?token=${encodeURIComponent(await this.token(digest))}`;
  }

  async stats(): Promise<StatsSnapshot> {
    const res = await request(`${this.url}/_mock/stats`, { dispatcher: this.#agent });
    return (await res.body.json()) as StatsSnapshot;
  }

  /** Blob GETs the mock answered (200/206) per digest: the upstream fetches a cache made. */
  async servedGets(digests: string[]): Promise<number> {
    const s = await this.stats();
    return digests.reduce((n, d) => n + (s.blobs[d]?.get.served ?? 0), 0);
  }

  async close(): Promise<void> {
    await this.#agent.close();
    await this.proc.stop();
  }
}

/** The open path (no token) that peers in front of a `--no-tokens` mock are asked for. */
export function openBlobPath(digest: string): string {
  return `/v2/${REPO}/blobs/${digest}`;
}
