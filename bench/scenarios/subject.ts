// A server under measurement: the cache, or a peer. Scenarios only see this interface, so
// the same scenario code runs against us and against every peer.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { CACHE_CLI, cliNodeFlags, writeCacheConfig } from '../../testkit/cache-process.js';
import type { BenchEnv } from './env.js';
import { openBlobPath, type MockOrigin } from './origin.js';
import { findLogLine, freePort, logLines, spawnLogged, waitReady, type Proc } from './procs.js';
import type { Processes } from './types.js';

export interface Subject {
  /** `dtr-cache`, `distribution`, `nginx`, `node-naive`, `node-relay`. */
  readonly kind: string;
  /** `https://localhost:PORT` */
  readonly origin: string;
  readonly h2: boolean;
  /** The process whose peak RSS is reported, summed with its descendants'; null: not reported. */
  readonly pid: number | null;
  /** Serving processes, as the report records them (ScenarioResult.processes). */
  readonly processes: Processes | null;
  /** The mock it fetches misses from; null for static servers. */
  readonly upstream: MockOrigin | null;
  /** The request path for a blob (with the redirect token where the subject checks one). */
  path(digest: string): Promise<string>;
  /** Main-thread event-loop delay p99 since the last call, in ms; null where not exposed. */
  eventLoopP99Ms(): Promise<number | null>;
  /**
   * Whether a fetched blob is published in the subject's storage (fsynced and renamed), for
   * subjects that keep distribution's layout; absent where that cannot be seen (nginx).
   */
  published?(digest: string): Promise<boolean>;
  /**
   * The subject's serving processes, and how many of them have each published a blob of at
   * most and one of more than `smallMax` bytes that they fetched themselves (so their code
   * is compiled and their upstream connection open); absent where that cannot be seen.
   */
  warmth?(smallMax: number): Promise<{ processes: number; warm: number }>;
  crashed(): boolean;
  stop(): Promise<void>;
}

/** Whether `<root>/docker/registry/v2/blobs/sha256/ab/<hex>/data` exists: distribution's layout. */
export function publishedIn(root: string): (digest: string) => Promise<boolean> {
  return async (digest) => {
    const hex = digest.slice('sha256:'.length);
    const file = join(root, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    return access(file).then(
      () => true,
      () => false,
    );
  };
}

/** The mock itself as a subject: blobs straight from the origin, with their redirect tokens. */
export function originSubject(mock: MockOrigin): Subject {
  return {
    kind: 'dtr-mock',
    origin: mock.url,
    h2: false,
    pid: mock.proc.pid,
    processes: null,
    upstream: null,
    path: (d) => mock.blobPath(d),
    eventLoopP99Ms: async () => null,
    crashed: () => mock.proc.crashed(),
    stop: async () => {},
  };
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

export interface CacheOptions {
  /** The mock that mints the redirect tokens and counts upstream GETs: the far one by default. */
  origin?: MockOrigin;
  /** `http.processes`; passed only when this build's config takes the key (else 1 runs). */
  processes?: Processes;
  /** Top-level config sections after the rest (mirror mode's `proxy:`). */
  extraTop?: string;
}

/** `dtr-cache serve` as its own process, configured as an operator would (log level info, TLS). */
export async function startCacheSubject(
  env: BenchEnv,
  label: string,
  upstreams: string[],
  o: CacheOptions = {},
): Promise<Subject> {
  const processes = env.settings.processesKey ? (o.processes ?? env.settings.processes[0] ?? 1) : 1;
  // One directory per setting: a scenario run again with other processes must not find the
  // previous run's "listening" line (and port) in its log.
  const name = `${label}.processes-${processes}`;
  const dir = env.dir(name);
  await mkdir(dir, { recursive: true });
  const debugPort = await freePort();
  const origin = o.origin ?? env.mock;
  const { path, root } = await writeCacheConfig(dir, {
    upstreams,
    cas: [env.ca.certPath],
    tls: env.leaf,
    logLevel: 'info',
    accessLog: env.settings.accessLog,
    extraHttp:
      (env.settings.processesKey ? `  processes: ${processes}\n` : '') +
      `  debug:\n    addr: 127.0.0.1:${debugPort}\n    prometheus:\n      enabled: true\n      path: /metrics\n`,
    ...(o.extraTop === undefined ? {} : { extraTop: o.extraTop }),
  });
  const prof = env.settings.cpuProfDir;
  const proc = await spawnLogged({
    name,
    command: process.execPath,
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: it goes on the command line.
    args: [
      ...(await cliNodeFlags()),
      ...(prof === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(prof, name)}`]),
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
    processes,
    upstream: origin,
    path: (digest) => origin.blobPath(digest),
    eventLoopP99Ms: () => scrapeLoopP99(metricsUrl),
    published: publishedIn(root),
    warmth: (smallMax) => warmthOf(proc.logFile, smallMax),
    crashed: procCrashed(proc),
    stop: () => proc.stop(10_000),
  };
}

/** Subject.warmth from the cache's log (one process logs no `proc` index: it is 0). */
async function warmthOf(logFile: string, smallMax: number): Promise<{ processes: number; warm: number }> {
  const started = new Set<number>();
  const small = new Set<number>();
  const large = new Set<number>();
  for (const l of await logLines(logFile)) {
    const proc = typeof l['proc'] === 'number' ? l['proc'] : 0;
    if (l['msg'] === 'serving process started' || l['msg'] === 'dtr-cache listening') started.add(proc);
    if (l['msg'] !== 'fill published' || l['outcome'] !== 'published') continue;
    (Number(l['size']) <= smallMax ? small : large).add(proc);
  }
  // Under processes 1, "dtr-cache listening" is the one process's line; under several, the
  // supervisor's (index 0 is also a serving process's, so the count is right either way).
  return { processes: started.size, warm: [...small].filter((p) => large.has(p)).length };
}

/**
 * One of bench/peers' Node servers (`kind`.js), given the bench's certificate and `args`:
 * one process on one port, HTTP/1.1, blobs at the open path.
 */
async function startNodePeer(
  env: BenchEnv,
  kind: 'node-naive' | 'node-relay',
  label: string,
  args: string[],
  upstream: MockOrigin | null,
): Promise<Subject> {
  const dir = env.dir(label);
  await mkdir(dir, { recursive: true });
  const script = new URL(`../peers/${kind}.js`, import.meta.url).pathname;
  const proc = await spawnLogged({
    name: label,
    command: process.execPath,
    args: [script, '--cert', env.leaf.certPath, '--key', env.leaf.keyPath, ...args],
    logFile: join(dir, `${kind}.log`),
  });
  const port = await waitReady(proc, 10_000, () =>
    findLogLine(proc.logFile, (l) => (l['event'] === 'listening' ? Number(l['port']) : undefined)),
  );
  return {
    kind,
    origin: `https://localhost:${port}`,
    h2: false,
    pid: proc.pid,
    processes: 1,
    upstream,
    path: async (digest) => openBlobPath(digest),
    eventLoopP99Ms: async () => null,
    crashed: procCrashed(proc),
    stop: () => proc.stop(),
  };
}

/** bench/peers/node-naive.ts: Node `https` + `fs.createReadStream`, the baseline for hits. */
export function startNaiveSubject(env: BenchEnv, label: string): Promise<Subject> {
  return startNodePeer(env, 'node-naive', label, ['--dir', join(env.corpus.root, 'blobs', 'sha256')], null);
}

/**
 * bench/peers/node-relay.ts in front of `upstreamUrl` (`origin`, or a relay in front of it):
 * the least a Node process does to pass a blob on and verify it (decrypt, hash, encrypt; no
 * disk, no HTTP client library).
 */
export function startRelaySubject(
  env: BenchEnv,
  label: string,
  upstreamUrl: string,
  origin: MockOrigin,
): Promise<Subject> {
  return startNodePeer(env, 'node-relay', label, ['--ca', env.ca.certPath, '--upstream', upstreamUrl], origin);
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
