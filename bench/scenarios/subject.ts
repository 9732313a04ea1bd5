// A server under measurement: the cache, or a peer. Scenarios only see this interface, so
// the same scenario code runs against us and against every peer.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { CACHE_CLI, cliNodeFlags, writeCacheConfig } from '../../testkit/cache-process.js';
import type { BenchEnv } from './env.js';
import type { MockOrigin } from './origin.js';
import { findLogLine, freePort, spawnLogged, waitReady, type Proc } from './procs.js';

export interface Subject {
  /** `dtr-cache`, `distribution`, `nginx`, `node-naive`. */
  readonly kind: string;
  /** `https://localhost:PORT` */
  readonly origin: string;
  readonly h2: boolean;
  /** The process whose peak RSS is reported; null where there are several (nginx). */
  readonly pid: number | null;
  /** The mock it fetches misses from; null for static servers. */
  readonly upstream: MockOrigin | null;
  /** The request path for a blob (with the redirect token where the subject checks one). */
  path(digest: string): Promise<string>;
  /** Main-thread event-loop delay p99 since the last call, in ms; null where not exposed. */
  eventLoopP99Ms(): Promise<number | null>;
  crashed(): boolean;
  stop(): Promise<void>;
}

/** Whether the process is alive; for subjects made of one process. */
export function procCrashed(p: Proc): () => boolean {
  return () => p.crashed();
}

/**
 * Reads `nodejs_eventloop_lag_p99_seconds` (prom-client's default metric, whose histogram
 * resets at every scrape) from the cache's debug server, when the cache serves one.
 */
async function scrapeLoopP99(metricsUrl: string): Promise<number | null> {
  try {
    const res = await request(metricsUrl, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) return null;
    const m = /^nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})?\s+([0-9.eE+-]+)/m.exec(text);
    return m ? Number(m[1]) * 1000 : null;
  } catch {
    return null;
  }
}

/** `dtr-cache serve` as its own process, configured as an operator would (log level info, TLS). */
export async function startCacheSubject(env: BenchEnv, label: string, upstreams: string[]): Promise<Subject> {
  const dir = env.dir(label);
  await mkdir(dir, { recursive: true });
  const debugPort = await freePort();
  const { path } = await writeCacheConfig(dir, {
    upstreams,
    cas: [env.ca.certPath],
    tls: env.leaf,
    logLevel: 'info',
    extraHttp: `  debug:\n    addr: 127.0.0.1:${debugPort}\n    prometheus:\n      enabled: true\n      path: /metrics\n`,
  });
  const prof = env.settings.cpuProfDir;
  const proc = await spawnLogged({
    name: label,
    command: process.execPath,
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: it goes on the command line.
    args: [
      ...(await cliNodeFlags()),
      ...(prof === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(prof, label)}`]),
      CACHE_CLI,
      'serve',
      '--config',
      path,
    ],
    logFile: join(dir, 'cache.log'),
  });
  const port = await waitReady(proc, 20_000, () =>
    findLogLine(proc.logFile, (l) => (l['msg'] === 'dtr-cache listening' ? Number(l['port']) : undefined)),
  );
  const metricsUrl = `http://127.0.0.1:${debugPort}/metrics`;
  return {
    kind: 'dtr-cache',
    origin: `https://localhost:${port}`,
    h2: true,
    pid: proc.pid,
    upstream: env.mock,
    path: (digest) => env.mock.blobPath(digest),
    eventLoopP99Ms: () => scrapeLoopP99(metricsUrl),
    crashed: procCrashed(proc),
    stop: () => proc.stop(10_000),
  };
}

const NAIVE = new URL('../peers/node-naive.js', import.meta.url).pathname;

/** bench/peers/node-naive.ts: Node `https` + `fs.createReadStream`, the baseline for hits. */
export async function startNaiveSubject(env: BenchEnv, label: string): Promise<Subject> {
  const dir = env.dir(label);
  await mkdir(dir, { recursive: true });
  const proc = await spawnLogged({
    name: label,
    command: process.execPath,
    args: [
      NAIVE,
      '--cert',
      env.leaf.certPath,
      '--key',
      env.leaf.keyPath,
      '--dir',
      join(env.corpus.root, 'blobs', 'sha256'),
    ],
    logFile: join(dir, 'node-naive.log'),
  });
  const port = await waitReady(proc, 10_000, () =>
    findLogLine(proc.logFile, (l) => (l['event'] === 'listening' ? Number(l['port']) : undefined)),
  );
  return {
    kind: 'node-naive',
    origin: `https://localhost:${port}`,
    h2: false,
    pid: proc.pid,
    upstream: null,
    path: async (digest) => `/v2/bench/app/blobs/${digest}`,
    eventLoopP99Ms: async () => null,
    crashed: procCrashed(proc),
    stop: () => proc.stop(),
  };
}

/** Polls `GET <origin>/v2/` until it answers 200 (servers that print no ready line). */
export async function waitHttpReady(proc: Proc, origin: string, caPem: string, ms = 15_000): Promise<void> {
  const agent = new Agent({ connect: { ca: caPem } });
  try {
    await waitReady(proc, ms, async () => {
      const res = await request(`${origin}/v2/`, { dispatcher: agent, headersTimeout: 1_000, bodyTimeout: 1_000 });
      await res.body.dump();
      return res.statusCode === 200 ? true : undefined;
    });
  } finally {
    await agent.close();
  }
}
