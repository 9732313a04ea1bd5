// HTTP(S)/1.1 server of the mock origin: per-request latency, the request log,
// refusal faults, and routing to the registry, token, cache and mock APIs.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { handleCachesApi } from './caches-api.js';
import { readSmallBody, sendJson, type MockContext, type RequestState } from './context.js';
import { MockError, sendError } from './errors.js';
import { handleMockApi, type MockControl } from './mock-api.js';
import { handleRegistry } from './registry.js';

const API_BODY_LIMIT = 1024 * 1024;
const BLOB_PATH = /\/blobs\/(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
}

async function route(
  ctx: MockContext,
  control: MockControl,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  rq: RequestState,
): Promise<void> {
  const path = url.pathname;
  if (path === '/v2' || path.startsWith('/v2/')) {
    await handleRegistry(ctx, req, res, url, rq);
    return;
  }
  if (path === '/auth/token') {
    if (req.method !== 'GET' && req.method !== 'POST') throw new MockError('UNSUPPORTED');
    const body = req.method === 'POST' ? (await readSmallBody(req, API_BODY_LIMIT)).toString('utf8') : undefined;
    rq.user = (await ctx.tokens.handle(req, res, url, body)) ?? null;
    return;
  }
  if (path === '/.well-known/jwks.json') {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new MockError('UNSUPPORTED');
    sendJson(res, 200, ctx.keys.jwks(), { 'Cache-Control': 'no-cache' });
    return;
  }
  if (path.startsWith('/api/v0/') || path.startsWith('/_mock/')) {
    const body = (await readSmallBody(req, API_BODY_LIMIT)).toString('utf8');
    if (path.startsWith('/api/v0/') && handleCachesApi(req, res, path, body, ctx.caches, ctx.users)) return;
    if (await handleMockApi(ctx, control, req, res, path, body)) return;
  }
  throw new MockError('NOT_FOUND', { message: 'not found' });
}

function onRequest(ctx: MockContext, control: MockControl) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rq: RequestState = { user: null };
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://mock.invalid');
    } catch {
      sendError(res, new MockError('INVALID_REQUEST', { detail: 'malformed request target' }));
      return;
    }
    const range = req.headers.range;
    res.once('close', () => {
      ctx.stats.request({
        ts: Date.now(),
        method,
        path: url.pathname,
        range: range ?? null,
        status: res.headersSent ? res.statusCode : 0,
        user: rq.user,
      });
    });
    // A refused blob: the connection dies before latency, auth or any byte.
    const blob = BLOB_PATH.exec(url.pathname);
    if (blob !== null && (method === 'GET' || method === 'HEAD') && ctx.faults.get(blob[1] ?? '')?.refuse === true) {
      ctx.stats.blob(blob[1] ?? '', method, 'failed');
      req.socket.destroy();
      return;
    }
    try {
      if (ctx.knobs.latencyMs > 0) await sleep(ctx.knobs.latencyMs);
      if (res.destroyed) return;
      await route(ctx, control, req, res, url, rq);
    } catch (err) {
      sendError(res, err, method === 'HEAD');
    }
  };
}

export function createMockServer(
  ctx: MockContext,
  control: MockControl,
  tls: TlsMaterial | undefined,
  keepAliveMs: number,
): Server {
  const handler = onRequest(ctx, control);
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handler(req, res).catch((err: unknown) => sendError(res, err));
  };
  // No request timeout: a big upload over a capped link may take minutes.
  const common = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: keepAliveMs };
  const server: Server =
    tls === undefined
      ? createHttpServer(common, listener)
      : createHttpsServer(
          { ...common, cert: tls.cert, key: tls.key, ...(tls.ca === undefined ? {} : { ca: tls.ca }) },
          listener,
        );
  // A client that breaks a connection must never take the process with it.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
