// The download's pump: a body that breaks between the first answer and the first read (the
// link cut right after the headers, while the fill opens its spool) is resumed, not waited on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createSecureContext } from 'node:tls';
import { pino } from 'pino';
import { Download, type ByteSink } from '../../src/fill/download.js';
import type { BlobFetch } from '../../src/fill/fetch.js';
import { parseDigest } from '../../src/store/digest.js';
import type { UpstreamResponse } from '../../src/upstream/chain.js';
import { UpstreamHost } from '../../src/upstream/host.js';
import { within } from '../helpers/deadline.js';

test('download: a body that broke before the pump began is resumed from the next answer', async (t) => {
  const bytes = randomBytes(200_000);
  const digest = parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  const host = new UpstreamHost('https://127.0.0.1:9', 'upstream', {
    secureContext: createSecureContext(),
    connectTimeoutMs: 1000,
    headersTimeoutMs: 1000,
    bodyIdleTimeoutMs: 1000,
  });
  t.after(() => host.close());
  const bodies: Readable[] = [];
  const fetch: BlobFetch = {
    name: 'team/app',
    digest,
    get: ({ offset }) => {
      assert.equal(offset, 0);
      const body = bodies.length === 0 ? new Readable({ read() {} }) : Readable.from([bytes]);
      bodies.push(body);
      return Promise.resolve({
        host,
        statusCode: 200,
        headers: { 'content-length': String(bytes.length) },
        body: body as unknown as UpstreamResponse['body'],
      });
    },
  };
  const download = new Download(
    { fetch, credential: () => ({ token: 't', name: 'team/app' }), log: pino({ level: 'silent' }) },
    0,
  );
  assert.equal(await download.open(null), bytes.length);
  // The connection is cut before anyone reads: the body errors, and closes, with no listener yet.
  bodies[0]!.on('error', () => undefined);
  bodies[0]!.destroy(new Error('other side closed'));
  await new Promise((r) => setImmediate(r));

  const got: Buffer[] = [];
  const sink: ByteSink = { write: (c) => got.push(c) > 0, onDrain: (resume) => resume() };
  await within(5_000, 'the download resumed and ended', download.run(sink));
  assert.ok(Buffer.concat(got).equals(bytes), 'every byte, once');
  assert.equal(bodies.length, 2, 'one more answer asked for');
  assert.deepEqual(
    download.route.map((leg) => [leg.from, leg.to]),
    [
      [0, 0],
      [0, bytes.length],
    ],
  );
});
