// Peer: CNCF distribution (Debian's `docker-registry`, 2.8) in proxy mode ("pull-through
// cache"), with TLS, in front of the mock with tokens off (distribution cannot present
// redirect tokens). Its process is Go: it trusts the test CA through SSL_CERT_FILE.
import { access, constants, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchEnv } from '../scenarios/env.js';
import { openBlobPath, type MockOrigin } from '../scenarios/origin.js';
import { freePort, spawnLogged } from '../scenarios/procs.js';
import { procCrashed, publishedIn, waitHttpReady, type Subject } from '../scenarios/subject.js';

export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';

/** Why this peer cannot run here, or null when it can. */
export async function distributionMissing(): Promise<string | null> {
  return access(DISTRIBUTION_BIN, constants.X_OK).then(
    () => null,
    () => `${DISTRIBUTION_BIN} not installed (npm run bench:peers:install)`,
  );
}

/** distribution in front of `upstream` (the far open mock by default), signing in with `credentials` when given. */
export async function startDistribution(
  env: BenchEnv,
  label: string,
  upstream?: MockOrigin,
  credentials?: { username: string; password: string },
): Promise<Subject> {
  const dir = env.dir(label);
  await mkdir(join(dir, 'storage'), { recursive: true });
  upstream ??= await env.openMock();
  const port = await freePort();
  // Defaults otherwise, as a deployment would run it: info logs, and the access log on (to a
  // file) unless the run turns every subject's off.
  const config = `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: ${!env.settings.accessLog}
storage:
  filesystem:
    rootdirectory: ${join(dir, 'storage')}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:${port}
  tls:
    certificate: ${env.leaf.certPath}
    key: ${env.leaf.keyPath}
proxy:
  remoteurl: ${upstream.url}
${credentials === undefined ? '' : `  username: ${credentials.username}\n  password: ${credentials.password}\n`}`;
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, config);
  const proc = await spawnLogged({
    name: label,
    command: DISTRIBUTION_BIN,
    args: ['serve', configPath],
    logFile: join(dir, 'registry.log'),
    env: { SSL_CERT_FILE: env.ca.certPath },
  });
  const origin = `https://localhost:${port}`;
  await waitHttpReady(proc, origin, env.ca.cert);
  return {
    kind: 'distribution',
    origin,
    h2: true,
    pid: proc.pid,
    processes: 1,
    upstream,
    path: async (digest) => openBlobPath(digest),
    eventLoopP99Ms: async () => null,
    published: publishedIn(join(dir, 'storage')),
    crashed: procCrashed(proc),
    stop: () => proc.stop(),
  };
}
