// A cache node as users run it: a config.yml, and `dtr-cache serve` as its own process
// with the node flags its CLI names. One implementation for tests, the demo and benchmarks.
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Leaf } from './pki.js';
import { startService, type ServiceProcess } from './service-process.js';

export interface CacheSpec {
  /** 2.3+ list form, or the 2.2 form's origin and upstream hosts; [] writes no downstream entry (a pure mirror). */
  upstreams: string[] | { origin: string; hosts?: string[] };
  cas: string[];
  tls: Leaf | null;
  root?: string;
  blobttl?: string;
  deleteEnabled?: boolean;
  /** `debug` by default: tests read the fill lines. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** false writes `log.accesslog.disabled: true`. */
  accessLog?: boolean;
  /** Extra lines under downstream options (YAML, already indented by 10 spaces). */
  extraOptions?: string;
  /** Extra lines under http: (YAML, indented by 2 spaces). */
  extraHttp?: string;
  /** Extra lines under http.tls: (YAML, indented by 4 spaces), with `tls`. */
  extraTls?: string;
  /** Top-level sections after the rest (YAML at column 0): `proxy:` or `mirrors:` for mirror mode. */
  extraTop?: string;
}

export function configYaml(spec: CacheSpec & { root: string }): string {
  const ups = Array.isArray(spec.upstreams)
    ? spec.upstreams.map((u) => `            - ${u}`).join('\n')
    : [
        `            - originhost: ${spec.upstreams.origin}`,
        ...(spec.upstreams.hosts?.length
          ? ['              upstreamhosts:', ...spec.upstreams.hosts.map((h) => `                - ${h}`)]
          : []),
      ].join('\n');
  return `version: 0.1
log:
  level: ${spec.logLevel ?? 'debug'}
  formatter: json
${spec.accessLog === false ? '  accesslog:\n    disabled: true\n' : ''}storage:
  delete:
    enabled: ${spec.deleteEnabled ?? true}
  filesystem:
    rootdirectory: ${spec.root}
http:
  addr: 127.0.0.1:0
${spec.tls ? `  tls:\n    certificate: ${spec.tls.certPath}\n    key: ${spec.tls.keyPath}\n${spec.extraTls ?? ''}` : ''}${spec.extraHttp ?? ''}
${Array.isArray(spec.upstreams) && spec.upstreams.length === 0 ? (spec.extraTop ?? '') : `${downstreamYaml(spec, ups)}${spec.extraTop ?? ''}`}`;
}

function downstreamYaml(spec: CacheSpec, ups: string): string {
  return `middleware:
  registry:
      - name: downstream
        options:
${spec.blobttl ? `          blobttl: ${spec.blobttl}\n` : ''}          upstreams:
${ups}
          cas:
${spec.cas.map((c) => `            - ${c}`).join('\n')}
${spec.extraOptions ?? ''}
`;
}

/** Writes `<dir>/config.yml` (storage under `<dir>/registry` unless `spec.root`). */
export async function writeCacheConfig(dir: string, spec: CacheSpec): Promise<{ root: string; path: string }> {
  await mkdir(dir, { recursive: true });
  const root = spec.root ?? join(dir, 'registry');
  const path = join(dir, 'config.yml');
  await writeFile(path, configYaml({ ...spec, root }));
  return { root, path };
}

/** dist/src/cli.js, beside this file's dist/testkit/. */
export const CACHE_CLI = new URL('../src/cli.js', import.meta.url).pathname;

/** The node flags on the CLI's shebang line (`#!/usr/bin/env -S node <flags>`), as users run it. */
export async function cliNodeFlags(cli = CACHE_CLI): Promise<string[]> {
  const first = (await readFile(cli, 'utf8')).split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return m ? (m[1] ?? '').trim().split(/\s+/).filter(Boolean) : [];
}

/**
 * The node's serving processes (children of the supervisor; none with http.processes 1).
 * Linux: /proc/<pid>/task/<pid>/children.
 */
export async function servingChildren(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/**
 * The first half of a kill -9 of a whole node, as systemd does it to a service's cgroup
 * (and then reaps every process): the serving processes die first, and the supervisor,
 * their parent and still alive, reaps them; the caller then kills the supervisor. Killed in
 * the other order, they would outlive it as zombies here, where nothing reaps orphans, and
 * a zombie's pid still looks alive to a replica that checks whether a spool's writer runs.
 * (A process the supervisor starts meanwhile to replace them owns no spool.)
 */
export async function killServingProcesses(supervisorPid: number, timeoutMs: number): Promise<void> {
  const members = await servingChildren(supervisorPid);
  for (const m of members) process.kill(m, 'SIGKILL');
  const deadline = Date.now() + timeoutMs;
  for (const m of members) {
    while (
      Date.now() < deadline &&
      (await access(`/proc/${m}`).then(
        () => true,
        () => false,
      ))
    )
      await new Promise((r) => setTimeout(r, 10));
  }
}

async function killNode(p: ServiceProcess, timeoutMs: number): Promise<number | null> {
  const pid = p.child.pid;
  if (pid !== undefined && p.child.exitCode === null && p.child.signalCode === null)
    await killServingProcesses(pid, timeoutMs);
  return p.stop('SIGKILL', timeoutMs);
}

/** `dtr-cache serve --config <configPath>`; resolves once it logged "dtr-cache listening". */
export async function spawnCacheProcess(configPath: string, env: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  const p = await startService({
    name: 'dtr-cache',
    command: process.execPath,
    args: [...(await cliNodeFlags()), CACHE_CLI, 'serve', '--config', configPath],
    env,
    ready: (l) =>
      l['msg'] === 'dtr-cache listening'
        ? { port: Number(l['port']), url: `${l['tls'] === true ? 'https' : 'http'}://localhost:${Number(l['port'])}` }
        : undefined,
  });
  return { ...p, stop: (signal, ms = 30_000) => (signal === 'SIGKILL' ? killNode(p, ms) : p.stop(signal, ms)) };
}
