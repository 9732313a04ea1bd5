// The debug server on http.debug.addr (distribution's debug port): plain HTTP, for
// operators and orchestrators only. GET /debug/health always; the Prometheus text at
// http.debug.prometheus.path when enabled. Nothing here touches the request path.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config/types.js';
import { listenFailed } from '../startup/errors.js';
import { listenOn } from './listen.js';

export interface DebugRoutes {
  health(): Promise<{ status: number; body: unknown }>;
  metrics: { path: string; render(): Promise<{ contentType: string; body: string }> } | null;
  log?: { warn(obj: object, msg: string): void };
}

export interface DebugServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The debug server that http.debug asks for (null when http.debug.addr is unset), with
 * metrics when http.debug.prometheus is enabled. One per node: the single process's, or
 * the supervisor's for a node of several processes. A failed bind throws the StartupError
 * that names http.debug.addr, for either of them.
 */
export async function openDebugServer(
  cfg: Config['http']['debug'],
  sources: {
    health: DebugRoutes['health'];
    render: (() => Promise<{ contentType: string; body: string }>) | null;
    log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  },
): Promise<DebugServer | null> {
  if (cfg === null) return null;
  const metrics =
    cfg.prometheus && sources.render !== null ? { path: cfg.prometheusPath, render: sources.render } : null;
  const debug = await startDebugServer(cfg.host, cfg.port, { health: sources.health, metrics, log: sources.log }).catch(
    (err: unknown) => {
      throw listenFailed('http.debug.addr', cfg, err);
    },
  );
  sources.log.info(
    { addr: debug.host, port: debug.port, metrics: metrics === null ? null : cfg.prometheusPath },
    'debug server listening',
  );
  return debug;
}

export const HEALTH_PATH = '/debug/health';

export async function startDebugServer(host: string, port: number, routes: DebugRoutes): Promise<DebugServer> {
  const server: Server = createServer({ maxHeaderSize: 8192 }, (req, res) => {
    handle(routes, req, res).catch((err: unknown) => {
      routes.log?.warn({ err, path: req.url }, 'debug request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // Scrapers and health checks are short requests: tight limits, no long keep-alive.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const bound = await listenOn(server, host, port);
  return {
    ...bound,
    url: `http://${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

async function handle(routes: DebugRoutes, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head)
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', head, { Allow: 'GET, HEAD' });
  if (path === HEALTH_PATH) {
    const { status, body } = await routes.health();
    return send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, head);
  }
  if (routes.metrics !== null && path === routes.metrics.path) {
    const { contentType, body } = await routes.metrics.render();
    return send(res, 200, contentType, body, head);
  }
  send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  head = false,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : body);
}
