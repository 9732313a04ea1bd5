// The miss floor (bench/peers/node-relay.ts): the bench sets our miss path beside it, so it
// must do the work every verifying relay does. It passes a blob on whole, over a kept-alive
// upstream connection, and resets the client's stream when the digest does not match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { createTestCa } from '../../testkit/pki.js';
import { startService } from '../../testkit/service-process.js';

const RELAY = new URL('../../bench/peers/node-relay.js', import.meta.url).pathname;
const good = randomBytes(3 * 1024 * 1024 + 5);
const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const bad = randomBytes(64 * 1024);

test('node-relay passes a blob on whole and resets the client on a wrong digest', async (t) => {
  const ca = await createTestCa();
  const leaf = await ca.issue('relay-test');
  const seen = { connections: 0, requests: 0 };
  const upstream = createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    seen.requests++;
    // The bad blob's path names another digest than its bytes have.
    const body = req.url?.endsWith(hex(good)) === true ? good : bad;
    res.writeHead(200, { 'Content-Length': body.length }).end(body);
  });
  upstream.on('secureConnection', () => seen.connections++);
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    upstream.closeAllConnections();
    upstream.close();
  });
  const relay = await startService({
    name: 'node-relay',
    command: process.execPath,
    args: [
      RELAY,
      ...['--cert', leaf.certPath, '--key', leaf.keyPath, '--ca', ca.certPath],
      ...['--upstream', `https://localhost:${(upstream.address() as AddressInfo).port}`],
    ],
    ready: (l) => (l['event'] === 'listening' ? { port: Number(l['port']), url: '' } : undefined),
  });
  t.after(() => relay.stop());
  const agent = new Agent({ connect: { ca: ca.cert } });
  t.after(() => agent.close());
  const get = (digestHex: string) =>
    request(`https://localhost:${relay.port}/v2/r/blobs/sha256:${digestHex}`, { dispatcher: agent });

  for (let i = 0; i < 2; i++) {
    const res = await get(hex(good));
    assert.equal(res.statusCode, 200);
    assert.equal(hex(Buffer.from(await res.body.arrayBuffer())), hex(good));
  }
  assert.deepEqual(seen, { connections: 1, requests: 2 }, 'one kept-alive upstream connection');

  // The reset may come before or after the client has read the head.
  await assert.rejects(
    (async () => (await get('0'.repeat(64))).body.arrayBuffer())(),
    /other side closed|aborted|ECONNRESET|terminated/,
    'a wrong digest never ends cleanly',
  );
  assert.equal(seen.requests, 3);
});
