// The listening socket: with TLS, one port speaking HTTP/2 and HTTP/1.1 (ALPN, RFC 7301);
// without, plain HTTP/1.1. Limits against hostile clients are set here, from config.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config/types.js';
import {
  guardRapidReset,
  headerListSize,
  PerIpLimiter,
  clientIp,
  type ConnectionGate,
  type GuardHooks,
} from './guards.js';
import {
  answerClientError,
  answerConnect,
  connectRefused,
  expectationFailed,
  headersTooLarge,
  missingHost,
} from './client-error.js';
import { Http1Drain } from './h1-drain.js';
import { asRes, type Req, type Res } from './http-types.js';
import { listenOn } from './listen.js';
import { sendError } from './respond.js';
import { secureContextOptions, type TlsMaterial } from './tls.js';

export type Handler = (req: Req, res: Res) => Promise<void>;

export interface CacheServer {
  readonly server: HttpServer | Http2SecureServer;
  /** `reusePort`: other processes bind the same port, each with its own accept queue. */
  listen(host: string, port: number, opts?: { reusePort?: boolean }): Promise<{ port: number; host: string }>;
  /** Replaces the certificate for new handshakes (SIGHUP); open connections keep theirs. */
  setTls(tls: TlsMaterial): void;
  /** Replaces the session ticket keys (rotation; the same keys in every process of a node). */
  setTicketKeys(keys: Buffer): void;
  /** Stops accepting, sends GOAWAY to HTTP/2 sessions, waits for transfers up to the deadline. */
  close(deadlineMs: number): Promise<void>;
}

export interface CacheServerOptions {
  limits: Config['http']['limits'];
  /** null: plain HTTP/1.1. */
  tls: { material: TlsMaterial; policy: Config['http']['tlsPolicy']; ticketKeys: Buffer } | null;
  handler: Handler;
  /** http.headers, set on every response before the handler runs; the handler's own replace them. */
  headers?: Config['http']['headers'];
  hooks?: GuardHooks;
  /** Admits connections; a per-IP limit of this process alone when not given. */
  gate?: ConnectionGate;
}

export function createCacheServer(opts: CacheServerOptions): CacheServer {
  const { limits, tls, handler } = opts;
  const hooks = opts.hooks ?? {};
  const headers = opts.headers ?? [];
  const h1Drain = new Http1Drain();
  const onRequest = (req: Req, res: Res): void => {
    // Set now, so every answer has them, errors included; writeHead merges its own over them.
    if (headers.length > 0) for (const [name, values] of headers) res.setHeader(name, values);
    if (req.httpVersionMajor === 1) h1Drain.track(req as IncomingMessage, res as ServerResponse);
    // RFC 9112 §3.2: a server must answer an HTTP/1.1 request that lacks Host with 400.
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) {
      sendError(asRes(res), missingHost(), req.method === 'HEAD', { Connection: 'close' });
      return;
    }
    // HTTP/1.1 header size is enforced by node:http's parser (clientError below); HTTP/2's
    // is not (guards.ts).
    if (req.httpVersionMajor === 2 && headerListSize(req.rawHeaders) > limits.maxHeaderSize) {
      hooks.refused?.('header-size', clientIp(req.socket));
      sendError(asRes(res), headersTooLarge(), req.method === 'HEAD');
      return;
    }
    void handler(req, res);
  };
  const gate = opts.gate ?? new PerIpLimiter(limits.maxConnectionsPerIp);
  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  let server: HttpServer | Http2SecureServer;
  let ticketKeys = tls?.ticketKeys ?? Buffer.alloc(0);
  if (tls !== null) {
    const h2 = createSecureServer({
      ...secureContextOptions(tls.material, tls.policy, ticketKeys),
      allowHTTP1: true,
      maxSessionMemory: 64,
      // No initialWindowSize: our window only limits what clients send us, and a pull cache
      // receives no bodies (measured: 64 KiB vs 8 MiB made no difference to hit-large h2).
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderSize },
      maxHeaderListPairs: 128,
      // A TCP connection that never completes its TLS handshake is a slowloris too.
      handshakeTimeout: limits.headersTimeoutMs,
      // nghttp2's own RST_STREAM rate limit (CVE-2023-44487) acts before streams reach us;
      // it answers with GOAWAY(INTERNAL_ERROR). guardRapidReset covers the streams it lets by.
      streamResetBurst: limits.maxResetsPerSecond,
      streamResetRate: limits.maxResetsPerSecond,
    });
    h2.on('session', (session: Http2Session) => {
      sessions.add(session);
      const ip = clientIp(session.socket as Socket);
      guardRapidReset(session, limits.maxResetsPerSecond, () => hooks.refused?.('rapid-reset', ip));
      session.once('close', () => sessions.delete(session));
    });
    h2.on('request', onRequest);
    server = h2;
  } else {
    server = createHttpServer({ maxHeaderSize: limits.maxHeaderSize }, onRequest);
  }
  applyHttp1Limits(server, limits);
  // node:http answers 417 to any Expect but exactly `100-continue`, a repeated one included;
  // a list of only 100-continue members is that expectation (RFC 9110 §10.1.1), and any other
  // gets the registry error body.
  server.on('checkExpectation', (req: Req, res: Res) => {
    const members = String(req.headers.expect).split(',');
    if (members.every((m) => m.trim().toLowerCase() === '100-continue')) {
      res.writeContinue();
      onRequest(req, res);
      return;
    }
    sendError(asRes(res), expectationFailed(), req.method === 'HEAD');
  });
  // CONNECT never reaches onRequest (client-error.ts connectRefused). The one event carries
  // (req, res) for an HTTP/2 stream and (req, socket, head) for HTTP/1.1, allowHTTP1's included.
  server.on('connect', (req: Req, resOrSocket: Res | Duplex) => {
    if (req.httpVersionMajor === 2) {
      const res = resOrSocket as Res;
      if (headers.length > 0) for (const [name, values] of headers) res.setHeader(name, values);
      sendError(asRes(res), connectRefused(), false);
    } else {
      answerConnect(resOrSocket as Duplex);
    }
  });
  // http2's allowHTTP1 emits node:http's clientError on this server too.
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    const ip = clientIp(socket);
    if (answerClientError(err, socket) === 431) hooks.refused?.('header-size', ip);
  });
  // RFC 9112 §9.6: a client may send its request and then half-close (FIN, or TLS
  // close_notify then FIN) while it reads the answer. node:http's default ends the
  // connection at once and drops every request still being answered; with this it answers
  // them all, then closes. An HTTP/1.1 TLS socket must stay writable after the client's end
  // for that (an HTTP/2 one is left as it is: a session ends with its socket).
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  if (tls !== null)
    server.prependListener('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol !== 'h2') socket.allowHalfOpen = true;
    });
  server.on('connection', (socket: Socket) => {
    if (!gate.admit(socket, hooks)) return;
    // Responses end in small writes (headers, a held-back last byte): with Nagle's algorithm
    // each would wait for the client's delayed ACK, 40 ms on Linux (bench/NOTES.md).
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  return {
    server,
    listen: (host, port, listenOpts) => listenOn(server, host, port, listenOpts),
    setTls(material) {
      if (tls === null || !('setSecureContext' in server)) throw new Error('this server has no TLS');
      // The whole context is rebuilt from these options: policy and ticket keys included.
      server.setSecureContext(secureContextOptions(material, tls.policy, ticketKeys));
      server.setTicketKeys(ticketKeys);
    },
    setTicketKeys(keys) {
      ticketKeys = keys;
      if ('setTicketKeys' in server) server.setTicketKeys(keys);
    },
    async close(deadlineMs) {
      h1Drain.start();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.close();
      if ('closeIdleConnections' in server) server.closeIdleConnections();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      await Promise.race([closed, deadline]);
      for (const s of sessions) s.destroy();
      for (const sock of sockets) sock.destroy();
      await closed;
    },
  };
}

/**
 * Slowloris limits for HTTP/1.1. http2's allowHTTP1 hands HTTP/1.1 sockets to node:http's
 * connection listener, which reads these same fields off the server object.
 */
function applyHttp1Limits(server: HttpServer | Http2SecureServer, limits: Config['http']['limits']): void {
  const s = server as unknown as {
    headersTimeout: number;
    requestTimeout: number;
    keepAliveTimeout: number;
    maxHeaderSize: number;
    connectionsCheckingInterval: number;
    requireHostHeader: boolean;
  };
  s.maxHeaderSize = limits.maxHeaderSize;
  // node:http answers an HTTP/1.1 request without Host with a bare 400 and no body; onRequest
  // answers it with the registry error JSON instead, as every other refused request.
  s.requireHostHeader = false;
  // node:http checks headersTimeout/requestTimeout only every connectionsCheckingInterval
  // (30 s by default, read at 'listening'), so a dribbling client outlived headersTimeout.
  s.connectionsCheckingInterval = Math.max(100, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4)));
  s.headersTimeout = limits.headersTimeoutMs;
  s.requestTimeout = limits.requestTimeoutMs;
  s.keepAliveTimeout = limits.idleTimeoutMs;
  server.setTimeout(limits.idleTimeoutMs);
}
