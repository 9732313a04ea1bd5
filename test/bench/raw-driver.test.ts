// The raw HTTP/1.1 load driver (bench/drivers/raw.ts) that times the cold scenarios: run as
// the harness runs it (its own process, a spec file in, a result file out) against a TLS
// server that answers well and badly. A driver that counted bytes it never checked would
// make every cold figure meaningless, so each way of being wrong must be an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa } from '../../testkit/pki.js';
import { runLoad } from '../../bench/scenarios/drive.js';
import type { LoadSpec } from '../../bench/drivers/protocol.js';

const body = randomBytes(3 * 1024 * 1024 + 17);
const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
const corrupt = Buffer.from(body);
corrupt.writeUInt8(corrupt.readUInt8(corrupt.length >> 1) ^ 1, corrupt.length >> 1);

async function startServer(t: { after(fn: () => unknown): void }) {
  const ca = await createTestCa();
  const leaf = await ca.issue('raw-driver');
  const seen = { connections: 0, requests: 0 };
  const server: Server = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    seen.requests++;
    switch (req.url) {
      case '/good':
        res.writeHead(200, { 'Content-Length': body.length });
        res.end(body);
        return;
      case '/corrupt':
        res.writeHead(200, { 'Content-Length': corrupt.length });
        res.end(corrupt);
        return;
      case '/short':
        res.writeHead(200, { 'Content-Length': body.length });
        res.write(body.subarray(0, 1 << 20), () => res.destroy());
        return;
      case '/chunked':
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        res.end(body);
        return;
      default:
        const json = '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}';
        res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': json.length });
        res.end(json);
    }
  });
  server.on('secureConnection', () => seen.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const workDir = await mkdtemp(join(tmpdir(), 'dtr-cache-raw-driver-'));
  t.after(() => rm(workDir, { recursive: true, force: true }));
  return { seen, workDir, ca, origin: `https://localhost:${(server.address() as AddressInfo).port}` };
}

function spec(origin: string, caPath: string, paths: string[], order: number[], concurrency: number): LoadSpec {
  return {
    driver: 'raw',
    proto: 'h1',
    origin,
    caPath,
    paths,
    sizes: paths.map(() => body.length),
    digests: paths.map(() => digest),
    concurrency,
    order,
    cycle: false,
    durationMs: 20_000,
    maxRequests: order.length,
    requestTimeoutMs: 10_000,
  };
}

test('raw driver: correct bodies pass, on one keep-alive connection per client, with time to first byte', async (t) => {
  const s = await startServer(t);
  const r = await runLoad(s.workDir, spec(s.origin, s.ca.certPath, ['/good'], [0, 0, 0, 0, 0, 0], 2), 10_000);
  assert.equal(r.requests, 6);
  assert.equal(r.errors, 0, r.errorSamples.join('; '));
  assert.equal(r.bytes, 6 * body.length);
  assert.equal(s.seen.requests, 6);
  assert.equal(s.seen.connections, 2, 'each of the 2 clients reused its connection');
  assert.ok(r.ttfbMs !== null && r.ttfbMs.p50 > 0 && r.ttfbMs.max <= r.latencyMs.max);
});

test('raw driver: wrong bytes, a cut body, a chunked body and an error status each count as an error', async (t) => {
  const s = await startServer(t);
  // Each bad path is the first request for its path, so the corrupt one is hashed.
  const paths = ['/corrupt', '/short', '/chunked', '/missing', '/good'];
  const r = await runLoad(s.workDir, spec(s.origin, s.ca.certPath, paths, [0, 1, 2, 3, 4], 1), 10_000);
  assert.equal(r.requests, 5);
  assert.equal(r.errors, 4, r.errorSamples.join('; '));
  const samples = r.errorSamples.join('\n');
  assert.match(samples, /digest mismatch for \/corrupt/);
  // The server destroys the socket after 1 MiB: a close, or a reset if data was still in flight.
  assert.match(samples, /(connection closed|ECONNRESET).*\(\d+ body bytes of \/short\)/);
  assert.doesNotMatch(
    samples,
    new RegExp(`\\(${body.length} body bytes of /short`),
    'the cut body is not counted whole',
  );
  assert.match(samples, /chunked response/);
  assert.match(samples, /status 404 for \/missing/);
  assert.equal(s.seen.requests, 5, 'the good request after four failures still ran (on a new connection)');
});
