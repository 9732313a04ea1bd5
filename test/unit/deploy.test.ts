// Deployment files (no Docker engine here): the swarm stack, the config it
// mounts, the Dockerfile and the systemd unit must agree on paths, ports, secrets, the
// health check, the node flags and the stop timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { cliNodeFlags } from '../../testkit/cache-process.js';
import { loadConfig } from '../../src/config/load.js';
import { parseGoDuration } from '../../src/config/duration.js';
import type { Config } from '../../src/config/types.js';
import { HEALTH_PATH } from '../../src/server/debug-server.js';
import { healthTarget } from '../../src/commands/health.js';

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));
const read = (name: string) => readFile(join(DEPLOY, name), 'utf8');

type Mount = string | { source: string; target?: string; uid?: string; gid?: string; mode?: number };
interface Service {
  image: string;
  command?: string[];
  ports: Array<string | { target: number; published: number }>;
  deploy: { replicas: number; placement: { constraints: string[] }; restart_policy: { condition: string } };
  stop_grace_period: string;
  configs: Mount[];
  secrets: Mount[];
  volumes: string[];
}
interface Stack {
  services: Record<string, Service>;
  configs: Record<string, { file: string }>;
  secrets: Record<string, { file: string }>;
  volumes?: Record<string, unknown>;
}

/** Where a swarm config or secret appears in the container (short syntax: /<name> for configs, /run/secrets/<name> for secrets). */
function mountPath(m: Mount, kind: 'config' | 'secret'): { source: string; path: string } {
  const source = typeof m === 'string' ? m : m.source;
  const target = typeof m === 'string' ? m : (m.target ?? m.source);
  return {
    source,
    path: kind === 'secret' ? posix.join('/run/secrets', target) : posix.isAbsolute(target) ? target : `/${target}`,
  };
}

/** A JSON-array (exec form) Dockerfile instruction. */
function execForm(dockerfile: string, instruction: string): string[] {
  const m = new RegExp(`^${instruction}\\s+(\\[.*\\])\\s*$`, 'm').exec(dockerfile);
  assert.ok(m, `${instruction} in exec form`);
  return JSON.parse(m[1]!) as string[];
}

test('deploy: the stack, the config it mounts, the Dockerfile and the systemd unit agree', async () => {
  // YAML 1.1, as the docker CLI (Go yaml.v2) reads it: `mode: 0400` is octal there.
  const stack = parse(await read('docker-stack.yml'), { version: '1.1' }) as Stack;
  const { config } = loadConfig(await read('config.yml'), { source: 'deploy/config.yml' });
  const dockerfile = (await read('Dockerfile')).replace(/\\\n\s*/g, ' ');
  const flags = await cliNodeFlags();
  const cache = stack.services['cache']!;
  assert.ok(cache, 'a service named cache (docker service logs dtr-cache_cache)');

  // The config reaches the path the image reads it from.
  const configs = cache.configs.map((m) => mountPath(m, 'config'));
  assert.equal(configs.length, 1);
  assert.equal(stack.configs[configs[0]!.source]?.file, './config.yml', 'the stack mounts the config this test loaded');
  const entrypoint = execForm(dockerfile, 'ENTRYPOINT');
  assert.deepEqual(
    entrypoint,
    ['node', ...flags, 'dist/src/cli.js', 'serve', '--config'],
    'the CLI shebang flags, then serve --config',
  );
  assert.deepEqual(execForm(dockerfile, 'CMD'), [configs[0]!.path]);
  assert.deepEqual(cache.command ?? [configs[0]!.path], [configs[0]!.path]);

  // Every file the config names is a mounted secret, and every secret is used.
  const secretPaths = new Map(
    cache.secrets.map((m) => {
      const x = mountPath(m, 'secret');
      return [x.path, x.source];
    }),
  );
  const tls = config.http.tls as NonNullable<Config['http']['tls']>;
  assert.ok(tls, 'TLS on');
  const named = [tls.certificate, tls.key, ...config.downstream.cas];
  assert.deepEqual([...named].sort(), [...secretPaths.keys()].sort(), 'config file paths = mounted secrets');
  for (const source of secretPaths.values()) assert.match(stack.secrets[source]?.file ?? '', /^\.\/certs\//);
  const key = cache.secrets.find((m) => typeof m !== 'string' && mountPath(m, 'secret').path === tls.key);
  assert.ok(
    key !== undefined && typeof key !== 'string' && key.mode === 0o400 && key.uid === '1000',
    'the private key readable by the image user only',
  );

  // Port 443 published to the port the config listens on; placement and restart as the DTR guide.
  assert.equal(config.http.port, 443);
  const ports = cache.ports.map((p) => (typeof p === 'string' ? p.split(':').map(Number) : [p.published, p.target]));
  assert.deepEqual(ports, [[443, config.http.port]]);
  assert.match(dockerfile, new RegExp(`^EXPOSE ${config.http.port}$`, 'm'));
  assert.deepEqual(cache.deploy.placement.constraints, ['node.labels.dtr.cache == true']);
  assert.equal(cache.deploy.restart_policy.condition, 'on-failure');
  assert.equal(cache.deploy.replicas, 1);

  // Storage on a named volume at rootdirectory.
  const [volume, target] = (cache.volumes[0] ?? '').split(':');
  assert.equal(target, config.storage.rootDirectory);
  assert.ok(stack.volumes !== undefined && volume! in stack.volumes);

  // The image's health check is the CLI's, naming no file: it reads the config of the node
  // that runs, whatever path it was started with (test/integration/cli.test.ts). The debug
  // server's /debug/health for this config, and /v2/ on the serving port for one without it.
  const health = /^HEALTHCHECK .*CMD (\[.*\])$/m.exec(dockerfile);
  assert.ok(health);
  const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
  assert.deepEqual(JSON.parse(health[1]!), ['node', entry.find((a) => a.endsWith('cli.js')), 'health']);
  const debug = config.http.debug as NonNullable<Config['http']['debug']>;
  assert.ok(debug, 'http.debug.addr set');
  assert.deepEqual(healthTarget(config), {
    url: `http://127.0.0.1:${debug.port}${HEALTH_PATH}`,
    tls: false,
    clientCertRequired: false,
  });
  const { config: dtrs } = loadConfig((await read('config.yml')).replace(/\n  debug:\n(    .*\n|\n)*/, '\n'));
  assert.equal(dtrs.http.debug, null);
  assert.deepEqual(healthTarget(dtrs), {
    url: `https://127.0.0.1:${dtrs.http.port}/v2/`,
    tls: true,
    clientCertRequired: false,
  });

  // Non-root, multi-stage, and a stop grace longer than the drain.
  assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
  const user = /^USER (\S+)$/m.exec(dockerfile)?.[1];
  assert.ok(user !== undefined && user !== 'root' && user !== '0');
  assert.ok(
    parseGoDuration(cache.stop_grace_period) > config.http.drainTimeoutMs,
    'stop_grace_period > http.draintimeout',
  );
});

test('deploy: the systemd unit runs the CLI as users do, reloads with SIGHUP, and outlasts the drain', async () => {
  const { config } = loadConfig(await read('config.yml'));
  const unit = await read('dtr-cache.service');
  const service = new Map<string, string>();
  let section = '';
  for (const line of unit.split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1]!;
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv && section === 'Service') service.set(kv[1]!, kv[2]!);
  }
  const exec = (service.get('ExecStart') ?? '').split(/\s+/);
  assert.equal(exec[0], '/opt/dtr-cache/node_modules/.bin/node', 'the pinned runtime installed with the package');
  assert.deepEqual(exec.slice(1, 1 + (await cliNodeFlags()).length), await cliNodeFlags());
  assert.match(exec.at(-4) ?? '', /\/dist\/src\/cli\.js$/);
  assert.deepEqual(exec.slice(-3, -1), ['serve', '--config']);
  assert.match(service.get('ExecReload') ?? '', /kill -HUP \$MAINPID$/);
  assert.equal(service.get('KillSignal'), 'SIGTERM');
  assert.equal(service.get('Restart'), 'on-failure');
  assert.ok(!['root', '0', undefined].includes(service.get('User')), 'not root');
  assert.ok(
    Number(service.get('TimeoutStopSec')) * 1000 > config.http.drainTimeoutMs,
    'TimeoutStopSec > http.draintimeout',
  );
  assert.equal(
    `/var/lib/${service.get('StateDirectory')}`,
    config.storage.rootDirectory,
    'the state directory is the store',
  );
  assert.match(service.get('AmbientCapabilities') ?? '', /CAP_NET_BIND_SERVICE/, 'port 443 without root');
});
