#!/usr/bin/env -S node --max-semi-space-size=4 --initial-old-space-size=64
// The V8 flags above: the first caps the young generation: under many concurrent transfers the
// default (16 MiB semi-spaces) grew the heap by ~40 MiB of short-lived garbage; 4 MiB kept the
// peak RSS of 50 clients × 1 GiB at ~155 MiB instead of ~200, and ran faster. The second gives
// the old generation room from the start: V8 sized its limit by our small heap (~16 MiB) while
// fill rings and read buffers outside it counted against it, and ran a full mark-compact every
// ~90 ms of a transfer (bench/NOTES.md, "Mark-compacts"). Test helpers and deployment files
// launch the CLI with the flags named on this line.
// dtr-cache serve|check-config|health|scrub|register [--config] FILE
// Exit status: 0 ok, 1 runtime failure, 2 bad usage or bad configuration.
// Each command imports what it runs when it runs: a node's supervisor then loads none of
// the serving code (~40 MiB less RSS than a serving process).
import cluster from 'node:cluster';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CLI_OPTIONS, CONFIGURATION_PATH_VAR } from './cli-options.js';
import { resolveProcesses } from './cluster/budget.js';
import { isConfigError } from './config/errors.js';
import type { Config } from './config/types.js';
import type { LoadResult } from './config/load.js';
import { createLogger } from './log/log.js';
import { stopOnce } from './stop-once.js';
import { causeChain, messageOf } from './errors/inspect.js';
import { StartupError } from './startup/errors.js';

const USAGE = `usage: dtr-cache <command> --config FILE
       dtr-cache <command> FILE     (as distribution: registry serve FILE)

commands:
  serve          run the cache node
  check-config   validate the configuration and exit (0 valid, 2 invalid)
  health         ask the node serving this configuration on this host whether it is
                 healthy (the container's health check): its debug server's /debug/health
                 when http.debug.addr is set, else /v2/ on its serving port; exit 0 healthy,
                 1 not. Without a config file, the running \`dtr-cache serve\`'s own (its
                 file and REGISTRY_* environment, read in /proc; --pid PID names the
                 process), else REGISTRY_CONFIGURATION_PATH
  scrub          re-hash every stored blob and remove bad ones (--dry-run: only report);
                 exit 0 when all were good, 3 when bad blobs were found
  register       register this cache with the origin's content-cache API and, with
                 --users a,b, select it for those users; running it again is harmless
                 --name NAME  [--host URL (default: http.host)]  [--origin URL (default:
                 the first upstream)]  [--users a,b]
                 admin credentials: DTR_USERNAME and DTR_PASSWORD, or stdin (username,
                 then password, one per line); never on the command line
`;

/**
 * `failCode`: 2 (bad configuration); `health` passes 1, its only "not healthy" status.
 * `env`: the REGISTRY_* overrides; `health` passes the running node's.
 */
async function loadOrExit(path: string | undefined, failCode = 2, env = process.env): Promise<LoadResult> {
  if (path === undefined) {
    process.stderr.write(
      `dtr-cache: a config file is required: --config FILE (or ${CONFIGURATION_PATH_VAR})\n${USAGE}`,
    );
    process.exit(failCode);
  }
  try {
    // Lazily: a serving process gets its configuration from the supervisor, and no YAML parser.
    const { loadConfigFile } = await import('./config/load.js');
    return await loadConfigFile(path, env);
  } catch (err) {
    if (isConfigError(err)) {
      process.stderr.write(`${err.message}\n`);
      process.exit(failCode);
    }
    throw err;
  }
}

async function serve(configPath: string | undefined): Promise<void> {
  // A serving process of a node: the supervisor sends it the configuration.
  if (cluster.isWorker) return (await import('./cluster/member.js')).runMember();
  const { config, warnings } = await loadOrExit(configPath);
  const log = createLogger(config.log);
  for (const w of warnings) log.warn(w);
  if (!config.storage.deleteEnabled)
    log.warn(
      'storage.delete.enabled is false: this cache never deletes blobs (no blobttl expiry, no maxsize eviction)',
    );
  const processes = resolveProcesses(config);
  return processes === 1 ? serveOneProcess(config, log) : superviseProcesses(config, log, processes);
}

/** http.processes: 1 — this process serves. */
async function serveOneProcess(config: Config, log: ReturnType<typeof createLogger>): Promise<void> {
  const { startCache } = await import('./main.js');
  const cache = await startCache(config, { log });
  onSignals(log, {
    stop: () => cache.close().then(() => 0),
    reload: () =>
      cache.reload().then(
        (r) => log.info(r, 'reloaded TLS certificate and key set'),
        (err: unknown) => log.error({ err }, 'reload refused; keeping the current certificate and keys'),
      ),
  });
}

/** http.processes > 1 — this process supervises that many serving processes. */
async function superviseProcesses(
  config: Config,
  log: ReturnType<typeof createLogger>,
  processes: number,
): Promise<void> {
  const { Supervisor } = await import('./cluster/supervisor.js');
  const supervisor = new Supervisor(config, log, processes);
  // Signals are taken before the processes start, so a stop during the start is not lost.
  onSignals(log, { stop: () => supervisor.stop(), reload: () => supervisor.reload() });
  await supervisor.start();
}

/** SIGTERM/SIGINT stop (drain, then exit with the code `stop` resolves); SIGHUP reloads. */
function onSignals(
  log: ReturnType<typeof createLogger>,
  node: { stop(): Promise<number>; reload(): Promise<void> },
): void {
  const stop = stopOnce(log, () => node.stop());
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void node.reload());
}

function usageError(message: string, code = 2): never {
  process.stderr.write(`dtr-cache: ${message}\n${USAGE}`);
  process.exit(code);
}

/**
 * The config file: `--config FILE` (`-c`), or the command's argument as distribution takes
 * it (`registry serve config.yml`, the form DTR's content-cache image is run with). Both
 * may name the same file; two different files, or a further argument, are refused rather
 * than one of them silently ignored. With neither, REGISTRY_CONFIGURATION_PATH, as in
 * distribution.
 */
function configPath(option: string | undefined, positionals: string[], failCode: number): string | undefined {
  return fileArgument(option, positionals, failCode) ?? (process.env[CONFIGURATION_PATH_VAR] || undefined);
}

/** The config file named on the command line, if any (see configPath). */
function fileArgument(option: string | undefined, positionals: string[], failCode: number): string | undefined {
  const [, argument, ...extra] = positionals;
  if (extra[0] !== undefined) usageError(`unexpected argument ${JSON.stringify(extra[0])}`, failCode);
  if (option !== undefined && argument !== undefined && option !== argument)
    usageError(`two config files given: --config ${option} and ${argument}`, failCode);
  return option ?? argument;
}

/**
 * `health`: asks the node and exits 0 when it answers 200, else 1 (in a HEALTHCHECK Docker
 * defines 0 and 1 only and reserves 2, so usage and config errors are 1 too).
 */
async function health(file: string | undefined, pid: string | undefined): Promise<never> {
  const { config, of } = await healthConfig(file, pid);
  const { checkHealth, healthTarget } = await import('./commands/health.js');
  const target = healthTarget(config);
  const { healthy, why } = await checkHealth(target);
  (healthy ? process.stdout : process.stderr).write(`${target.url}: ${why}${of}\n`);
  process.exit(healthy ? 0 : 1);
}

/**
 * The config `health` reads: the file on its command line; else the running node's, found
 * in /proc (the node of process `pid` when given): the file it serves, with its REGISTRY_*
 * overrides, whatever path the container was started with; else REGISTRY_CONFIGURATION_PATH.
 * `of` says which node's config it was, for the check's output.
 */
async function healthConfig(
  file: string | undefined,
  pid: string | undefined,
): Promise<{ config: Config; of: string }> {
  if (pid !== undefined && !/^\d+$/.test(pid)) usageError(`--pid ${pid}: not a process id`, 1);
  if (file !== undefined && pid !== undefined) usageError('health: give --config FILE or --pid PID, not both', 1);
  if (file !== undefined) return { config: (await loadOrExit(file, 1)).config, of: '' };
  const { HealthSourceError, runningNodeConfig } = await import('./commands/health-source.js');
  try {
    const node = await runningNodeConfig(process.argv[1] ?? '', pid === undefined ? undefined : Number(pid));
    const { config } = await loadOrExit(node.path, 1, node.env);
    return { config, of: ` (the node of pid ${node.pid}, ${node.path})` };
  } catch (err) {
    if (!(err instanceof HealthSourceError)) throw err;
    const named = process.env[CONFIGURATION_PATH_VAR] || undefined;
    if (pid !== undefined || named === undefined) {
      process.stderr.write(`dtr-cache health: ${err.message}\n`);
      process.exit(1);
    }
    return { config: (await loadOrExit(named, 1)).config, of: '' };
  }
}

async function registerCache(values: {
  config: string | undefined;
  name?: string | undefined;
  host?: string | undefined;
  origin?: string | undefined;
  users?: string | undefined;
}): Promise<void> {
  const { config } = await loadOrExit(values.config);
  const name = values.name ?? usageError('register: --name NAME is required');
  const host =
    values.host ??
    config.http.publicUrl ??
    usageError('register: --host URL is required (or set http.host in the config)');
  const ups = config.downstream.upstreams;
  const origin = values.origin ?? ups.origin ?? ups.hosts[0] ?? usageError('register: --origin URL is required');
  const users = (values.users ?? '')
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const { readCredentials, register, RegisterError } = await import('./commands/register/register.js');
  const { loadUpstreamTrust } = await import('./upstream/trust.js');
  try {
    const credentials = await readCredentials(process.env, process.stdin);
    const secureContext = await loadUpstreamTrust(config.downstream.cas);
    await register({
      origin,
      name,
      host,
      users,
      credentials,
      secureContext,
      say: (line) => process.stdout.write(`${line}\n`),
    });
  } catch (err) {
    if (!(err instanceof RegisterError)) throw err;
    process.stderr.write(`dtr-cache register: ${err.message}\n`);
    process.exit(1);
  }
}

function parseUsage(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      options: CLI_OPTIONS,
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`dtr-cache: ${messageOf(err)}\n${USAGE}`);
    process.exit(2);
  }
}

/**
 * package.json's `engines` names the one Node.js major this runs on (README, "Runtime"). Run
 * directly, the shebang takes the system's `node`, which may be older: its crash inside a
 * dependency would say nothing of the cause.
 */
async function checkRuntime(): Promise<void> {
  // Without its package.json (a copied dist/), there is nothing to compare with.
  const text = await readFile(new URL('../../package.json', import.meta.url), 'utf8').catch(() => '{}');
  const pkg = JSON.parse(text) as { engines?: { node?: string } };
  const want = /^>=(\d+)\./.exec(pkg.engines?.node ?? '')?.[1];
  if (want === undefined || want === process.versions.node.split('.')[0]) return;
  process.stderr.write(
    `dtr-cache: runs on Node.js ${want}, and this is ${process.version} (${process.execPath}); run it through npm ` +
      `(npx dtr-cache …) or with node_modules/.bin/node, which npm install puts there\n`,
  );
  process.exit(1);
}

async function main(argv: string[]): Promise<void> {
  await checkRuntime();
  const { values, positionals } = parseUsage(argv);
  const command = positionals[0];
  if (values.help || command === undefined) {
    process.stdout.write(USAGE);
    process.exit(command === undefined && !values.help ? 2 : 0);
  }
  if (command === 'health') return health(fileArgument(values.config, positionals, 1), values.pid);
  const config = configPath(values.config, positionals, 2);
  switch (command) {
    case 'serve':
      return serve(config);
    case 'check-config': {
      const { warnings } = await loadOrExit(config);
      // Each warning names itself (`config warning: <key path> …`).
      for (const w of warnings) process.stderr.write(`${w}\n`);
      process.stdout.write('configuration ok\n');
      return;
    }
    case 'scrub': {
      const { config: loaded } = await loadOrExit(config);
      const { scrub } = await import('./commands/scrub.js');
      const report = await scrub(loaded, {
        dryRun: values['dry-run'] === true,
        say: (line) => process.stdout.write(`${line}\n`),
      });
      process.exit(report.bad.length === 0 ? 0 : 3);
    }
    case 'register':
      return registerCache({ ...values, config });
    default:
      process.stderr.write(`dtr-cache: unknown command ${command}\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // The whole chain: "fetching JWK Set … failed" alone does not say whether to fix `cas` or the network.
  process.stderr.write(`dtr-cache: ${causeChain(err)}\n`);
  if (err instanceof StartupError) process.stderr.write(`dtr-cache: ${err.hint}\n`);
  process.exit(1);
});
