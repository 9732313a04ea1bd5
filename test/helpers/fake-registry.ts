// A registry upstream that misbehaves on purpose (wrong bytes, Basic auth, redirects), for the
// cases the DTR mock plays straight: a real HTTPS server on loopback whose answers the test
// writes, and which records every request it saw.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';
import type { Leaf } from '../../testkit/pki.js';

export interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
}

export interface FakeRegistry {
  url: string;
  seen: Seen[];
}

export async function startFakeRegistry(
  t: TestContext,
  tls: Leaf,
  handle: (req: IncomingMessage, res: ServerResponse, url: URL) => void,
): Promise<FakeRegistry> {
  const seen: Seen[] = [];
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://fake.invalid');
    seen.push({ method: req.method ?? '', path: url.pathname + url.search, authorization: req.headers.authorization });
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
