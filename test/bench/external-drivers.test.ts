// The wrk and h2load drivers (bench/drivers/wrk.ts, h2load.ts), run as the harness runs
// them (runLoad: the binary as its own process, its output parsed) against a TLS server
// that answers well and badly. A driver that counted failures as requests would make every
// hit figure, and every ceiling, meaningless. Skipped where the binary is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesUsing } from '../helpers/processes.js';
import { createTestCa } from '../../testkit/pki.js';
import { findBinary } from '../../bench/drivers/external.js';
import type { LoadSpec } from '../../bench/drivers/protocol.js';
import { runLoad } from '../../bench/scenarios/drive.js';

const body = randomBytes(64 * 1024);

async function startServer(t: { after(fn: () => unknown): void }) {
  const ca = await createTestCa();
  const leaf = await ca.issue('external-drivers');
  const seen = { good: 0, missing: 0, cut: 0 };
  // HTTP/2 for h2load, HTTP/1.1 (no ALPN) for wrk.
  const server: Http2SecureServer = createSecureServer(
    { cert: leaf.cert, key: leaf.key, allowHTTP1: true },
    (req, res) => {
      if (req.url === '/good') {
        seen.good++;
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      } else if (req.url === '/cut') {
        seen.cut++;
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, 1024), () =>
          req.httpVersion === '2.0' ? res.stream.close(2) : req.socket.destroy(),
        );
      } else {
        seen.missing++;
        res.writeHead(404, { 'content-length': 2 });
        res.end('{}');
      }
    },
  );
  // A connection the driver left open (one it opened as it was told to stop, mid-handshake
  // or idle) would hold close() for as long as the handshake timeout, or for ever: an http2
  // server has no idle timeout. Whatever is still connected is destroyed at the end.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  );
  const workDir = await mkdtemp(join(tmpdir(), 'dtr-cache-external-drivers-'));
  t.after(() => rm(workDir, { recursive: true, force: true }));
  return { seen, workDir, ca, origin: `https://localhost:${(server.address() as AddressInfo).port}` };
}

function spec(driver: 'wrk' | 'h2load', origin: string, caPath: string, paths: string[]): LoadSpec {
  return {
    driver,
    proto: driver === 'wrk' ? 'h1' : 'h2',
    origin,
    caPath,
    paths,
    sizes: paths.map(() => body.length),
    concurrency: 4,
    cycle: true,
    durationMs: 1_000,
    maxRequests: 100_000,
    requestTimeoutMs: 5_000,
  };
}

for (const driver of ['wrk', 'h2load'] as const) {
  test(`${driver}: good answers are counted as requests, bad ones as errors; nothing is left running`, async (t) => {
    if ((await findBinary(driver)) === null) {
      t.skip(`${driver} is not installed (npm run bench:peers:install)`);
      return;
    }
    const { seen, workDir, ca, origin } = await startServer(t);

    const good = await runLoad(workDir, spec(driver, origin, ca.certPath, ['/good']), 20_000);
    assert.equal(good.errors, 0, JSON.stringify(good.errorSamples));
    assert.ok(good.requests > 0, 'requests were made');
    // Every counted request reached the server (in-flight ones at the end may not be counted).
    assert.ok(seen.good >= good.requests, `${seen.good} served, ${good.requests} counted`);
    assert.ok(good.bytes >= good.requests * body.length, `bytes ${good.bytes} for ${good.requests} bodies`);
    assert.ok(good.latencyMs.p50 > 0 && good.latencyMs.p99 >= good.latencyMs.p50, JSON.stringify(good.latencyMs));

    const missing = await runLoad(workDir, spec(driver, origin, ca.certPath, ['/missing']), 20_000);
    assert.ok(seen.missing > 0);
    assert.ok(missing.errors > 0 && missing.errors >= missing.requests, `404s: ${JSON.stringify(missing)}`);
    assert.ok(missing.errorSamples.length > 0);

    const cut = await runLoad(workDir, spec(driver, origin, ca.certPath, ['/cut']), 20_000);
    assert.ok(seen.cut > 0);
    assert.ok(cut.errors > 0, `bodies cut short: ${JSON.stringify(cut)}`);

    assert.deepEqual(await processesUsing(workDir), [], 'the driver exited');
  });
}
