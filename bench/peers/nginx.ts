// Peer: nginx over TLS (HTTP/1.1 and HTTP/2), in two roles:
// - `static`: the same blob files served from disk, the ceiling for hits;
// - `proxy`: `proxy_cache` + `proxy_cache_lock` in front of the mock with tokens off, the
//   collapsed-miss design we compare cold stampedes against.
import { access, constants, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchEnv } from '../scenarios/env.js';
import { openBlobPath, type MockOrigin } from '../scenarios/origin.js';
import { freePort, spawnLogged } from '../scenarios/procs.js';
import { procCrashed, waitHttpReady, type Subject } from '../scenarios/subject.js';

export const NGINX_BIN = '/usr/sbin/nginx';

export async function nginxMissing(): Promise<string | null> {
  return access(NGINX_BIN, constants.X_OK).then(
    () => null,
    () => `${NGINX_BIN} not installed (npm run bench:peers:install)`,
  );
}

/**
 * With `keepalive`, connections to the origin are kept open between misses (an `upstream`
 * block with `keepalive`, as nginx's documentation tunes a proxy): the fast scenarios time
 * single misses of a warm proxy. Without, nginx opens one per miss (the far scenarios, as
 * they always ran).
 */
function upstreamBlock(role: 'static' | 'proxy', upstreamUrl: string, keepalive: boolean): string {
  if (role === 'static' || !keepalive) return '';
  return `  upstream origin {
    server 127.0.0.1:${new URL(upstreamUrl).port};
    keepalive 16;
  }`;
}

function location(
  role: 'static' | 'proxy',
  blobDir: string,
  upstreamUrl: string,
  caPath: string,
  keepalive: boolean,
): string {
  if (role === 'static') {
    return `    location = /v2/ { return 200 '{}'; }
    location ~ "^/v2/.+/blobs/sha256:([0-9a-f]{64})$" { alias ${blobDir}/$1; }`;
  }
  const up = new URL(upstreamUrl);
  return `    location /v2/ {
      proxy_pass https://${keepalive ? 'origin' : `127.0.0.1:${up.port}`};
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${caPath};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host localhost:${up.port};
      proxy_read_timeout 600s;
      proxy_cache blobs;
      proxy_cache_valid 200 1h;
      # One upstream fetch per blob; the waiters' lock must outlast a slow WAN fill, or
      # after the 5 s default each waiter fetches (uncached) on its own.
      proxy_cache_lock on;
      proxy_cache_lock_timeout 1h;
      proxy_cache_lock_age 1h;
    }`;
}

/**
 * nginx static, or as a proxy cache in front of `proxyTo` (with upstream keep-alive), or
 * of the far open mock by default (as the far scenarios always ran it).
 */
export async function startNginx(
  env: BenchEnv,
  label: string,
  role: 'static' | 'proxy',
  proxyTo?: MockOrigin,
): Promise<Subject> {
  const dir = env.dir(label);
  for (const d of ['tmp', 'cache']) await mkdir(join(dir, d), { recursive: true });
  const upstream = role === 'proxy' ? (proxyTo ?? (await env.openMock())) : null;
  const keepalive = proxyTo !== undefined;
  const port = await freePort();
  const blobDir = join(env.corpus.root, 'blobs', 'sha256');
  const t = join(dir, 'tmp');
  // Workers run as root when we are root: the corpus lives in 0700 temp directories.
  const config = `daemon off;
master_process on;
worker_processes auto;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log ${env.settings.accessLog ? join(dir, 'access.log') : 'off'};
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${t}/body;
  proxy_temp_path ${t}/proxy;
  fastcgi_temp_path ${t}/fastcgi;
  uwsgi_temp_path ${t}/uwsgi;
  scgi_temp_path ${t}/scgi;
  proxy_cache_path ${join(dir, 'cache')} levels=1:2 keys_zone=blobs:10m max_size=50g inactive=1h use_temp_path=off;
  ssl_certificate ${env.leaf.certPath};
  ssl_certificate_key ${env.leaf.keyPath};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
${upstreamBlock(role, upstream?.url ?? '', keepalive)}
  server {
    listen 127.0.0.1:${port} ssl http2;
${location(role, blobDir, upstream?.url ?? '', env.ca.certPath, keepalive)}
  }
}
`;
  const configPath = join(dir, 'nginx.conf');
  await writeFile(configPath, config);
  const proc = await spawnLogged({
    name: label,
    command: NGINX_BIN,
    args: ['-c', configPath, '-p', dir, '-e', join(dir, 'error.log')],
    logFile: join(dir, 'nginx.out'),
  });
  const origin = `https://localhost:${port}`;
  await waitHttpReady(proc, origin, env.ca.cert);
  return {
    kind: 'nginx',
    origin,
    h2: true,
    // The master: peak RSS is summed over it and its workers.
    pid: proc.pid,
    processes: 'auto',
    upstream,
    path: async (digest) => openBlobPath(digest),
    eventLoopP99Ms: async () => null,
    crashed: procCrashed(proc),
    stop: () => proc.stop(),
  };
}
