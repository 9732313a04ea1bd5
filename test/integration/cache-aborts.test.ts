// docs/architecture.md §10: HTTP/2 and HTTP/1.1 clients that abort 64 MiB transfers midway,
// dozens at once, leave the process alive and serving (Node 20's respondWithFile crashed
// here; we pump from the file instead). The cache runs as its own process so a crash shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as h2connect, constants } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { createTestCa } from '../../testkit/pki.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin } from '../helpers/origin.js';
import { within } from '../helpers/deadline.js';

function h2Abort(url: string, path: string, ca: string, afterBytes: number, count: number): Promise<number[]> {
  const session = h2connect(url, { ca });
  session.on('error', () => undefined);
  const one = () =>
    new Promise<number>((resolve) => {
      const stream = session.request({ ':path': path });
      let got = 0;
      stream.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= afterBytes && !stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      });
      stream.on('close', () => resolve(got));
      stream.on('error', () => undefined);
    });
  return Promise.all(Array.from({ length: count }, one)).finally(() => session.destroy());
}

function h1Abort(url: string, path: string, ca: string, afterBytes: number): Promise<number> {
  return new Promise((resolve) => {
    const req = httpsRequest(`${url}${path}`, { ca, agent: false }, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= afterBytes) req.destroy();
      });
      res.on('error', () => undefined);
      res.on('close', () => resolve(got));
    });
    req.on('error', () => resolve(-1));
    req.end();
  });
}

test('dozens of HTTP/2 and HTTP/1.1 clients aborting 64 MiB transfers leave the process serving', async (t) => {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  const cfg = await writeConfig({ upstreams: [origin.url], cas: [ca.certPath], tls: await ca.issue('cache') });
  const cache = await spawnCache(t, cfg.path, cfg.root);
  const agent = agentFor(ca.cert, true);
  t.after(() => agent.destroy());

  const hot = origin.add(randomBytes(64 << 20));
  const hotPath = `/v2/team/app/blobs/${hot.digest}?token=${await origin.mint('team/app', hot.digest)}`;
  const warm = await fetchBlob(agent, `${cache.url}${hotPath}`);
  assert.equal(`sha256:${warm.sha256}`, hot.digest);

  // Hits: 3 sessions × 10 HTTP/2 streams and 20 HTTP/1.1 connections, all cut midway.
  const cold = origin.add(randomBytes(64 << 20));
  const coldPath = `/v2/team/app/blobs/${cold.digest}?token=${await origin.mint('team/app', cold.digest)}`;
  const gate = origin.gate(cold.digest, 16 << 20);
  const aborted = await within(
    60_000,
    'aborting clients',
    Promise.all([
      ...[1, 2, 3].map((i) => h2Abort(cache.url, hotPath, ca.cert, i << 20, 10)),
      ...Array.from({ length: 20 }, (_, i) => h1Abort(cache.url, hotPath, ca.cert, (1 + (i % 8)) << 20)),
      // And on a fill in progress: these leave while the upstream is held.
      h2Abort(cache.url, coldPath, ca.cert, 1 << 20, 10),
      ...Array.from({ length: 6 }, () => h1Abort(cache.url, coldPath, ca.cert, 1 << 20)),
    ]),
  );
  const counts = aborted.flat();
  assert.equal(counts.length, 66);
  assert.ok(
    counts.every((n) => n < 64 << 20),
    'every transfer was cut before the end',
  );
  gate.open();

  assert.equal(cache.child.exitCode, null, 'still running');
  assert.equal(cache.child.signalCode, null, 'not killed by a signal');
  const after = await fetchBlob(agent, `${cache.url}${hotPath}`);
  assert.equal(after.status, 200);
  assert.equal(`sha256:${after.sha256}`, hot.digest);
  const coldAfter = await fetchBlob(agent, `${cache.url}${coldPath}`);
  assert.equal(`sha256:${coldAfter.sha256}`, cold.digest);
  assert.equal(origin.count(origin.gets, cold.digest), 1, 'the fill went on after all its clients left');
  assert.equal(await cache.stop('SIGTERM'), 0);
});
