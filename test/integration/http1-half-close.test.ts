// HTTP/1.1 clients that half-close: a client may send its request and then shut down its
// side of the connection (FIN; over TLS, close_notify then FIN) while it reads the answer,
// as `nc -N`, shell pipelines into `openssl s_client` and some proxies and health checkers
// do. RFC 9112 §9.6 closes a connection in stages; the request is complete, so it is
// answered in full (as Go's server, which distribution runs on, answers it), and the
// server closes once the answer is out.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { within } from '../helpers/deadline.js';
import { sha256 } from '../helpers/http.js';
import { startStack, type Stack } from '../helpers/stack.js';

interface Answer {
  status: number;
  headers: string;
  body: Buffer;
}

/** Opens a connection, writes `request`, half-closes, and reads until the server closes. */
async function halfClosed(s: Stack, request: string): Promise<Answer[]> {
  const { hostname, port, protocol } = new URL(s.cache.url);
  const sock: Socket = await new Promise((resolve, reject) => {
    const c =
      protocol === 'https:'
        ? tlsConnect({ host: '127.0.0.1', port: Number(port), servername: hostname, ca: s.ca.cert }, () => resolve(c))
        : netConnect({ host: '127.0.0.1', port: Number(port) }, () => resolve(c));
    c.once('error', reject);
  });
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.end(request);
  await within(15_000, 'the server closes the half-closed connection', closed);
  return parseAnswers(Buffer.concat(chunks));
}

/** Splits HTTP/1.1 answers framed by Content-Length. */
function parseAnswers(buf: Buffer): Answer[] {
  const out: Answer[] = [];
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const headers = buf.subarray(off, end).toString('latin1');
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(headers)?.[1] ?? 0);
    out.push({
      status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(headers)?.[1]),
      headers,
      body: buf.subarray(end + 4, end + 4 + length),
    });
    off = end + 4 + length;
  }
  return out;
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;

async function checkHalfClose(t: TestContext, s: Stack): Promise<void> {
  const hit = s.origin.add(randomBytes(300_000));
  const hitTarget = s
    .blobUrl('team/app', hit.digest, await s.origin.mint('team/app', hit.digest))
    .slice(s.cache.url.length);

  await t.test('a miss: the whole blob, fetched once', async () => {
    const [answer, ...more] = await halfClosed(s, get(hitTarget));
    assert.equal(answer?.status, 200, 'answered although the client shut down its side');
    assert.equal(`sha256:${sha256(answer.body)}`, hit.digest);
    assert.equal(more.length, 0);
    assert.equal(s.origin.count(s.origin.gets, hit.digest), 1);
  });

  await t.test('a hit, after a pipelined /v2/: both answers, in order', async () => {
    const answers = await halfClosed(s, get('/v2/') + get(hitTarget));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200],
    );
    assert.equal(answers[0]!.body.toString(), '{}');
    assert.equal(`sha256:${sha256(answers[1]!.body)}`, hit.digest);
    assert.equal(s.origin.count(s.origin.gets, hit.digest), 1, 'the second was a hit');
  });
}

test('HTTP/1.1 over TLS: a request followed by a half-close is answered in full', async (t) => {
  await checkHalfClose(t, await startStack(t));
});

test('plain HTTP/1.1: a request followed by a half-close is answered in full', async (t) => {
  await checkHalfClose(t, await startStack(t, { tls: null }));
});
