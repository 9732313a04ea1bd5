// Starts a real cache node for a test: a config.yml written to a temp dir, loaded by the
// real loader, and either started in-process (startCache) or as its own process (the CLI),
// with teardown registered on the test context.
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { removeAtExit } from '../../testkit/tmp.js';
import { loadConfigFile } from '../../src/config/load.js';
import { startCache, type RunningCache, type StartOptions } from '../../src/main.js';
import {
  CACHE_CLI,
  cliNodeFlags,
  configYaml,
  spawnCacheProcess,
  writeCacheConfig,
  type CacheSpec,
} from '../../testkit/cache-process.js';

export { CACHE_CLI, cliNodeFlags, configYaml, type CacheSpec };

export interface TestCache extends RunningCache {
  root: string;
  logFile: string;
  logLines(): Promise<Array<Record<string, unknown>>>;
}

export async function writeConfig(spec: CacheSpec): Promise<{ dir: string; root: string; path: string }> {
  // Spawned caches and restarts share it; it goes when the test process exits.
  const dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-test-')));
  return { dir, ...(await writeCacheConfig(dir, spec)) };
}

async function readLogLines(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** In-process cache; logs go to a file the test can read. */
export async function startTestCache(
  t: TestContext,
  spec: CacheSpec,
  start: Omit<StartOptions, 'log'> = {},
): Promise<TestCache> {
  const { dir, root, path } = await writeConfig(spec);
  const { config } = await loadConfigFile(path, {});
  const logFile = join(dir, 'cache.log');
  const log = pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true }));
  const cache = await startCache(config, { ...start, log });
  t.after(async () => {
    await cache.close();
    if (spec.root === undefined) await rm(dir, { recursive: true, force: true });
  });
  return Object.assign(Object.create(null) as object, cache, {
    root,
    logFile,
    logLines: () => readLogLines(logFile),
  }) as TestCache;
}

export interface CacheProcess {
  child: ChildProcess;
  url: string;
  port: number;
  root: string;
  configPath: string;
  lines: Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The cache as its own process (`dtr-cache serve`), for signals and kill -9. */
export async function spawnCache(
  t: TestContext,
  configPath: string,
  root: string,
  env: NodeJS.ProcessEnv = {},
): Promise<CacheProcess> {
  const p = await spawnCacheProcess(configPath, env);
  t.after(() => p.stop('SIGKILL'));
  return {
    child: p.child,
    url: p.url,
    port: p.port,
    root,
    configPath,
    lines: p.lines,
    stop: (signal) => p.stop(signal),
  };
}
