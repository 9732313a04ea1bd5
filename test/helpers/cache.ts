// Starts a real cache node for a test: a config.yml written to a temp dir, loaded by the
// real loader, and either started in-process (startCache) or as its own process (the CLI),
// with teardown registered on the test context.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { loadConfigFile } from '../../src/config/load.js';
import { startCache, type RunningCache } from '../../src/main.js';
import type { Leaf } from '../../bench/lib/pki.js';
import { within } from './deadline.js';

export interface CacheSpec {
  /** 2.3+ list form, or the 2.2 form's origin and upstream hosts. */
  upstreams: string[] | { origin: string; hosts?: string[] };
  cas: string[];
  tls: Leaf | null;
  root?: string;
  blobttl?: string;
  deleteEnabled?: boolean;
  /** Extra lines under downstream options (YAML, already indented by 10 spaces). */
  extraOptions?: string;
  /** Extra lines under http: (YAML, indented by 2 spaces). */
  extraHttp?: string;
}

export function configYaml(spec: CacheSpec & { root: string }): string {
  const ups = Array.isArray(spec.upstreams)
    ? spec.upstreams.map((u) => `            - ${u}`).join('\n')
    : [`            - originhost: ${spec.upstreams.origin}`,
       ...(spec.upstreams.hosts?.length ? ['              upstreamhosts:', ...spec.upstreams.hosts.map((h) => `                - ${h}`)] : [])].join('\n');
  return `version: 0.1
log:
  level: debug
  formatter: json
storage:
  delete:
    enabled: ${spec.deleteEnabled ?? true}
  filesystem:
    rootdirectory: ${spec.root}
http:
  addr: 127.0.0.1:0
${spec.tls ? `  tls:\n    certificate: ${spec.tls.certPath}\n    key: ${spec.tls.keyPath}\n` : ''}${spec.extraHttp ?? ''}
middleware:
  registry:
      - name: downstream
        options:
${spec.blobttl ? `          blobttl: ${spec.blobttl}\n` : ''}          upstreams:
${ups}
          cas:
${spec.cas.map((c) => `            - ${c}`).join('\n')}
${spec.extraOptions ?? ''}`;
}

export interface TestCache extends RunningCache {
  root: string;
  logFile: string;
  logLines(): Promise<Array<Record<string, unknown>>>;
}

export async function writeConfig(spec: CacheSpec): Promise<{ dir: string; root: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-test-'));
  const root = spec.root ?? join(dir, 'registry');
  const path = join(dir, 'config.yml');
  await writeFile(path, configYaml({ ...spec, root }));
  return { dir, root, path };
}

async function readLogLines(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** In-process cache; logs go to a file the test can read. */
export async function startTestCache(t: TestContext, spec: CacheSpec): Promise<TestCache> {
  const { dir, root, path } = await writeConfig(spec);
  const { config } = await loadConfigFile(path, {});
  const logFile = join(dir, 'cache.log');
  const log = pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true }));
  const cache = await startCache(config, { log });
  t.after(async () => {
    await cache.close();
    if (spec.root === undefined) await rm(dir, { recursive: true, force: true });
  });
  return Object.assign(Object.create(null) as object, cache, { root, logFile, logLines: () => readLogLines(logFile) }) as TestCache;
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

const CLI = new URL('../../src/cli.js', import.meta.url).pathname;

/** The node flags on the CLI's shebang line (`#!/usr/bin/env -S node <flags>`), as users run it. */
export async function cliNodeFlags(): Promise<string[]> {
  const first = (await readFile(CLI, 'utf8')).split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
}

/** The cache as its own process (`dtr-cache serve`), for signals and kill -9. */
export async function spawnCache(t: TestContext, configPath: string, root: string, env: NodeJS.ProcessEnv = {}): Promise<CacheProcess> {
  const child = spawn(process.execPath, [...(await cliNodeFlags()), CLI, 'serve', '--config', configPath], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let buf = '';
  const listening = new Promise<{ port: number; tls: boolean }>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const p of parts) {
        try {
          const obj = JSON.parse(p) as Record<string, unknown>;
          lines.push(obj);
          if (obj.msg === 'dtr-cache listening') resolve({ port: Number(obj.port), tls: obj.tls === true });
        } catch {
          // not JSON
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`cache exited with ${code} before listening: ${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    return within(30_000, 'cache process exit', exited);
  };
  t.after(() => stop('SIGKILL'));
  const { port, tls } = await within(20_000, 'cache process listening', listening);
  return { child, url: `${tls ? 'https' : 'http'}://localhost:${port}`, port, root, configPath, lines, stop };
}
