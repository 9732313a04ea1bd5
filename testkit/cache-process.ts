// A cache node as users run it: a config.yml, and `dtr-cache serve` as its own process
// with the node flags its CLI names. One implementation for tests, the demo and benchmarks.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
  /** Extra lines under downstream options (YAML, already indented by 10 spaces). */
  extraOptions?: string;
  /** Extra lines under http: (YAML, indented by 2 spaces). */
  extraHttp?: string;
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
storage:
  delete:
    enabled: ${spec.deleteEnabled ?? true}
  filesystem:
    rootdirectory: ${spec.root}
http:
  addr: 127.0.0.1:0
${spec.tls ? `  tls:\n    certificate: ${spec.tls.certPath}\n    key: ${spec.tls.keyPath}\n` : ''}${spec.extraHttp ?? ''}
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

/** `dtr-cache serve --config <configPath>`; resolves once it logged "dtr-cache listening". */
export async function spawnCacheProcess(configPath: string, env: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  return startService({
    name: 'dtr-cache',
    command: process.execPath,
    args: [...(await cliNodeFlags()), CACHE_CLI, 'serve', '--config', configPath],
    env,
    ready: (l) =>
      l['msg'] === 'dtr-cache listening'
        ? { port: Number(l['port']), url: `${l['tls'] === true ? 'https' : 'http'}://localhost:${Number(l['port'])}` }
        : undefined,
  });
}
