// Which config `dtr-cache health` reads when its command line names none: the one the
// running node reads. A container's HEALTHCHECK is fixed in the image, while the config file
// is chosen at `docker run` (`dtr-cache /etc/docker/registry/config.yml`, as the
// distribution image is run); a fixed path in the check would ask the wrong address, or read
// no file, and mark a serving container unhealthy. So the check finds the `dtr-cache serve`
// of this installation it can see in /proc (in a container: the node itself) and takes the
// file that process took: its --config or argument, else its REGISTRY_CONFIGURATION_PATH,
// relative to its working directory, and loads it with that process's environment, whose
// REGISTRY_* overrides (http.addr, http.debug.addr) the node applied too.
import { readFile, readdir, readlink, realpath } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI_OPTIONS, CONFIGURATION_PATH_VAR } from '../cli-options.js';
import { DtrCacheError } from '../errors/base.js';

export type HealthSourceErrorCode = 'NO_NODE' | 'NOT_A_NODE' | 'SEVERAL_NODES';

/** Why no single running node's config could be chosen; the message says what to give instead. */
export class HealthSourceError extends DtrCacheError<HealthSourceErrorCode> {}

export interface NodeConfig {
  pid: number;
  /** Absolute, as the node resolved it against its working directory. */
  path: string;
  /** The node's environment, for its REGISTRY_* overrides. */
  env: NodeJS.ProcessEnv;
}

/**
 * The config of the `dtr-cache serve` that runs `script` (this CLI): of process `pid` when
 * given, else of the one such process visible in /proc. A node's serving processes
 * (cluster workers, NODE_UNIQUE_ID set) take their config from its supervisor and are not
 * counted. Throws HealthSourceError when there is none, or several with different configs.
 */
export async function runningNodeConfig(script: string, pid?: number): Promise<NodeConfig> {
  const self = await realpath(script);
  if (pid !== undefined) {
    const node = await nodeConfig(pid, self);
    if (node === null)
      throw new HealthSourceError(
        'NOT_A_NODE',
        `process ${pid} is not a dtr-cache serve of ${self} this user can read`,
      );
    return node;
  }
  const pids = (await readdir('/proc').catch(() => []))
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((p) => p !== process.pid);
  const found = (await Promise.all(pids.map((p) => nodeConfig(p, self)))).filter((n) => n !== null);
  const distinct = new Map(found.map((n) => [configKey(n), n]));
  const [first, second] = distinct.values();
  if (first === undefined)
    throw new HealthSourceError(
      'NO_NODE',
      `no running dtr-cache serve of ${self} found; name its config: health --config FILE (or ${CONFIGURATION_PATH_VAR})`,
    );
  if (second !== undefined)
    throw new HealthSourceError(
      'SEVERAL_NODES',
      `several dtr-cache nodes run here (${[...distinct.values()].map((n) => `pid ${n.pid}: ${n.path}`).join(', ')}); ` +
        'name one: health --config FILE or --pid PID',
    );
  return first;
}

/** The config a process serves with, or null when it is not a supervising `dtr-cache serve` of `self`. */
async function nodeConfig(pid: number, self: string): Promise<NodeConfig | null> {
  try {
    const argv = nulSeparated(await readFile(`/proc/${pid}/cmdline`, 'utf8'));
    if (!argv.includes('serve')) return null;
    const cwd = await readlink(`/proc/${pid}/cwd`);
    const at = await scriptIndex(argv, cwd, self);
    if (at < 0 || argv[at + 1] !== 'serve') return null;
    const env = Object.fromEntries(
      nulSeparated(await readFile(`/proc/${pid}/environ`, 'utf8')).map((kv) => {
        const eq = kv.indexOf('=');
        return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
    ) as NodeJS.ProcessEnv;
    if (env['NODE_UNIQUE_ID'] !== undefined) return null;
    const { values, positionals } = parseArgs({
      args: argv.slice(at + 1),
      options: CLI_OPTIONS,
      allowPositionals: true,
      strict: false,
    });
    const option = typeof values.config === 'string' ? values.config : undefined;
    const file = option ?? positionals[1] ?? (env[CONFIGURATION_PATH_VAR] || undefined);
    if (file === undefined) return null;
    return { pid, path: isAbsolute(file) ? file : resolve(cwd, file), env };
  } catch {
    // Gone meanwhile, or another user's: not a node this check can ask about.
    return null;
  }
}

/** Where in `argv` the CLI script is (node's own options come before it), or -1. */
async function scriptIndex(argv: string[], cwd: string, self: string): Promise<number> {
  for (const [i, arg] of argv.entries()) {
    if (i === 0 || arg.startsWith('-')) continue;
    const path = await realpath(resolve(cwd, arg)).catch(() => null);
    if (path === self) return i;
  }
  return -1;
}

function nulSeparated(text: string): string[] {
  return text.split('\0').filter((s) => s !== '');
}

/** Two processes with this key serve the same config. */
function configKey(node: NodeConfig): string {
  const overrides = Object.entries(node.env)
    .filter(([name]) => name.startsWith('REGISTRY_'))
    .sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify([node.path, overrides]);
}
