// A registry upstream that misbehaves on purpose (wrong bytes, Basic auth, redirects), for the
// cases the DTR mock plays straight: a real HTTPS server on loopback whose answers the test
// writes, and which records every request it saw.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TestContext } from 'node:test';
import type { Leaf } from '../../testkit/pki.js';

export interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  /** The protocol the connection negotiated by ALPN (false: none). */
  alpn: string | false | null;
}

export interface FakeRegistry {
  url: string;
  seen: Seen[];
}

export async function startFakeRegistry(
  t: TestContext,
  tls: Leaf,
  handle: (req: IncomingMessage, res: ServerResponse, url: URL) => void,
  /**
   * Protocols to offer by ALPN. The server speaks only HTTP/1.1: a client that picks `h2`
   * from `['h2', 'http/1.1']` (as a registry's CDN would offer) gets no answer.
   */
  alpn?: string[],
): Promise<FakeRegistry> {
  const seen: Seen[] = [];
  const options = { cert: tls.cert, key: tls.key, ...(alpn === undefined ? {} : { ALPNProtocols: alpn }) };
  const server: Server = createServer(options, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://fake.invalid');
    seen.push({
      method: req.method ?? '',
      path: url.pathname + url.search,
      authorization: req.headers.authorization,
      alpn: (req.socket as TLSSocket).alpnProtocol,
    });
    handle(req, res, url);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return { url: `https://localhost:${(server.address() as AddressInfo).port}`, seen };
}

export function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number>,
  body: string | Buffer = '',
): void {
  res.writeHead(status, { 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
