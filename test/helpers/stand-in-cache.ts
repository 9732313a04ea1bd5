// A stand-in content cache for the DTR mock's tests: an HTTPS server that a user's 307 can
// point at, which fetches each blob from the mock with the redirect token as Bearer
// (docs/protocol.md §4) and relays it. The test observes what the client sent.
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { request } from 'undici';
import type { DtrMock } from '../../bench/dtr-mock/index.js';
import { agent } from './dtr-mock.js';

export interface StandInHooks {
  /** Every request, as the client sent it. */
  onRequest?(req: IncomingMessage, url: URL): void;
  /** A blob relayed from the mock (its answer's headers are sent). */
  onServed?(): void;
}

/** Starts the stand-in cache on loopback for the test; resolves with its URL. */
export async function standInCache(
  t: TestContext,
  m: DtrMock,
  tls: { cert: string; key: string },
  hooks: StandInHooks = {},
): Promise<string> {
  const cache = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://x');
    hooks.onRequest?.(req, u);
    request(`${m.url}${u.pathname}`, {
      dispatcher: agent,
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
      headers: { authorization: `Bearer ${u.searchParams.get('token') ?? ''}` },
    }).then(
      async (up) => {
        hooks.onServed?.();
        const len = up.headers['content-length'];
        res.writeHead(up.statusCode, {
          'content-type': 'application/octet-stream',
          ...(typeof len === 'string' ? { 'content-length': len } : {}),
        });
        for await (const chunk of up.body) res.write(chunk);
        res.end();
      },
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => cache.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        cache.close(() => resolve());
        cache.closeAllConnections();
      }),
  );
  return `https://localhost:${(cache.address() as AddressInfo).port}`;
}
