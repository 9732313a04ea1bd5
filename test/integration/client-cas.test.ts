// distribution's http.tls.clientcas, as clients meet it: a client showing a certificate that
// a clientcas CA signed gets its answers over HTTP/1.1 and HTTP/2; a client with no
// certificate, or one from another CA, gets no HTTP answer at all (the TLS handshake ends).
// A reload (SIGHUP) reads the CA files again, in one process and in every process of a node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Client } from 'undici';
import { createTestCa, type Leaf, type TestCa } from '../../testkit/pki.js';
import { spawnCache } from '../helpers/cache.js';
import { waitFor, within } from '../helpers/deadline.js';
import { newTag, pidOf, servingPids, tagPath, tlsProbe } from '../helpers/node-probe.js';
import { originConfig, startStack } from '../helpers/stack.js';

interface Answer {
  status: number | null;
  sha256: string | null;
  /** Why there was no HTTP answer. */
  error: string | null;
}

/** One request on a connection of its own, showing `client`'s certificate (or none). */
async function ask(url: string, ca: TestCa, path: string, client: Leaf | null, h2: boolean): Promise<Answer> {
  const c = new Client(url, {
    connect: {
      ca: ca.cert,
      rejectUnauthorized: true,
      ...(client === null ? {} : { cert: client.cert, key: client.key }),
    },
    allowH2: h2,
  });
  try {
    const res = await within(10_000, `GET ${path}`, c.request({ path, method: 'GET' }));
    const hash = createHash('sha256');
    for await (const chunk of res.body) hash.update(chunk as Buffer);
    return { status: res.statusCode, sha256: `sha256:${hash.digest('hex')}`, error: null };
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string }; message?: string };
    return { status: null, sha256: null, error: e.cause?.code ?? e.code ?? e.message ?? String(err) };
  } finally {
    await c.destroy();
  }
}

function assertNoAnswer(a: Answer, who: string): void {
  assert.equal(a.status, null, `${who}: no HTTP answer`);
  assert.notEqual(a.error, null, who);
}

/**
 * A raw TLS connection that sends a request as soon as its side of the handshake is done:
 * whether that side finished, the error that ended it, and the bytes of any HTTP answer. In
 * TLS 1.3 the server checks the client's certificate after the client has finished.
 */
function handshake(
  port: number,
  ca: TestCa,
  client: Leaf | null,
  maxVersion: 'TLSv1.2' | 'TLSv1.3',
): Promise<{ secured: boolean; error: string | null; bytes: number }> {
  return within(
    10_000,
    'a TLS handshake',
    new Promise((resolve) => {
      let secured = false;
      let bytes = 0;
      const s = tlsConnect({
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        ca: ca.cert,
        maxVersion,
        ALPNProtocols: ['http/1.1'],
        ...(client === null ? {} : { cert: client.cert, key: client.key }),
      });
      s.once('secureConnect', () => {
        secured = true;
        s.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      s.on('data', (chunk: Buffer) => (bytes += chunk.length));
      s.once('error', (err: NodeJS.ErrnoException) => resolve({ secured, error: err.code ?? err.message, bytes }));
      s.once('close', () => resolve({ secured, error: null, bytes }));
    }),
  );
}

/**
 * No certificate, or one no clientcas CA signed: the connection ends before any HTTP, in TLS
 * 1.3 and 1.2. Without a certificate OpenSSL itself sends the alert; a certificate that does
 * not verify is refused by Node as the handshake ends (the socket is closed, no alert).
 */
async function assertHandshakeRefused(port: number, ca: TestCa, client: Leaf | null, who: string): Promise<void> {
  const t13 = await handshake(port, ca, client, 'TLSv1.3');
  assert.equal(t13.bytes, 0, `${who}: no HTTP answer`);
  if (client === null) assert.equal(t13.error, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', who);
  // TLS 1.2: the server checks the certificate before its Finished; the client never completes.
  const t12 = await handshake(port, ca, client, 'TLSv1.2');
  assert.deepEqual([t12.secured, t12.bytes], [false, 0], `${who}, TLS 1.2`);
  assert.match(t12.error ?? 'closed', client === null ? /ALERT_HANDSHAKE_FAILURE/ : /ECONNRESET|ALERT/, who);
}

/** Client CAs for a test: the one configured (its file a copy the test can replace), and a stranger. */
async function clientPki(): Promise<{ trusted: TestCa; stranger: TestCa; file: string; dir: string }> {
  const trusted = await createTestCa('dtr-cache client CA');
  const stranger = await createTestCa('another client CA');
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-clientcas-'));
  const file = join(dir, 'client-ca.pem');
  await copyFile(trusted.certPath, file);
  return { trusted, stranger, file, dir };
}

test('clientcas, one process: a client of a clientcas CA gets its blob (h1, h2); none or another CA: no answer; reload re-reads the CAs', async (t) => {
  const { trusted, stranger, file, dir } = await clientPki();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { ca, origin, cache } = await startStack(t, { extraTls: `    clientcas:\n      - ${file}\n` });
  const member = await trusted.issue('docker-client');
  const outsider = await stranger.issue('docker-client');

  const blob = origin.add(randomBytes(256 << 10));
  const path = `/v2/team/app/blobs/${blob.digest}?token=${await origin.mint('team/app', blob.digest)}`;
  for (const h2 of [false, true]) {
    const got = await ask(cache.url, ca, path, member, h2);
    assert.deepEqual(got, { status: 200, sha256: blob.digest, error: null }, `h2 ${h2}`);
    assert.equal((await ask(cache.url, ca, '/v2/', member, h2)).status, 200);
    assertNoAnswer(await ask(cache.url, ca, '/v2/', null, h2), `no certificate, h2 ${h2}`);
    assertNoAnswer(await ask(cache.url, ca, path, outsider, h2), `another CA, h2 ${h2}`);
  }
  await assertHandshakeRefused(cache.port, ca, null, 'no certificate');
  await assertHandshakeRefused(cache.port, ca, outsider, 'another CA');
  // The server's own CA (which signed the origin's and the cache's certificates) is not a client CA.
  await assertHandshakeRefused(cache.port, ca, await ca.issue('server-ca-client'), "the server's CA");

  // The reload of SIGHUP: the file now holds the other CA, which replaces the first.
  await copyFile(stranger.certPath, file);
  await cache.reload();
  assert.equal((await ask(cache.url, ca, '/v2/', outsider, true)).status, 200, 'the new CA after the reload');
  await assertHandshakeRefused(cache.port, ca, member, 'the old CA after the reload');
  // A file that no longer holds a certificate is refused, and the CAs in force stay.
  await writeFile(file, 'not a certificate\n');
  await assert.rejects(cache.reload(), /http\.tls\.clientcas: .* holds no CERTIFICATE block/);
  assert.equal((await ask(cache.url, ca, '/v2/', outsider, false)).status, 200, 'the CAs in force stay');
  // A good certificate and then a block cut off before its END line: refused as check-config refuses it.
  await writeFile(file, `${await readFile(stranger.certPath, 'utf8')}-----BEGIN CERTIFICATE-----\nMIIB\n`);
  await assert.rejects(cache.reload(), /http\.tls\.clientcas: .* with a CERTIFICATE block that has no END line/);
  assert.equal((await ask(cache.url, ca, '/v2/', outsider, false)).status, 200, 'the CAs in force stay again');
});

test('clientcas, http.processes 2: every process asks for the certificate; SIGHUP swaps the CAs in both', async (t) => {
  const { trusted, stranger, file, dir } = await clientPki();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { ca, cfg } = await originConfig(t, {
    extraTls: `    clientcas:\n      - ${file}\n`,
    extraHttp: '  processes: 2\n',
  });
  t.after(() => rm(cfg.dir, { recursive: true, force: true }));
  const cache = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const pids = await servingPids(cache.lines, 2);
  const member = await trusted.issue('docker-client');
  const outsider = await stranger.issue('docker-client');

  /** Tagged requests on new connections until each process answered `client` once (64 tries bound it). */
  const answeredByBoth = async (client: Leaf): Promise<void> => {
    const seen = new Set<number>();
    for (let i = 0; i < 64 && seen.size < 2; i++) {
      const tag = newTag();
      // No token: a 401, whose request line names the process that answered.
      assert.equal((await ask(cache.url, ca, tagPath(tag), client, i % 2 === 1)).status, 401);
      seen.add(await pidOf(cache.lines, tag));
    }
    assert.deepEqual([...seen].sort(), [...pids].sort(), 'both processes answered');
  };
  /** Refused on 16 pairs of new connections (TLS 1.3 and 1.2), which the kernel spreads over both processes. */
  const refusedByAll = async (client: Leaf | null, who: string): Promise<void> => {
    for (let i = 0; i < 16; i++) await assertHandshakeRefused(cache.port, ca, client, who);
  };

  await answeredByBoth(member);
  // With client certificates asked for, a session still resumes on either process (the ticket
  // keys are the node's) and answers without showing the certificate again.
  let session = (await tlsProbe(cache.port, ca.cert, cache.lines, undefined, member)).session;
  const resumedOn = new Set<number>();
  for (let i = 0; i < 64 && resumedOn.size < 2; i++) {
    const p = await tlsProbe(cache.port, ca.cert, cache.lines, session, member);
    assert.deepEqual([p.status, p.reused], [401, true], `connection ${i} (process ${p.pid}) resumed its session`);
    resumedOn.add(p.pid);
    session = p.session ?? session;
  }
  assert.deepEqual([...resumedOn].sort(), [...pids].sort());
  await refusedByAll(null, 'no certificate');
  await refusedByAll(outsider, 'another CA');

  await copyFile(stranger.certPath, file);
  const reloads = () => cache.lines.filter((l) => l['msg'] === 'reloaded TLS certificate and key set').length;
  cache.child.kill('SIGHUP');
  await waitFor(10_000, 'the node reloaded', () => reloads() === 1);
  assert.equal(cache.lines.find((l) => l['msg'] === 'reloaded TLS certificate and key set')?.['processes'], 2);
  await answeredByBoth(outsider);
  await refusedByAll(member, 'the old CA after SIGHUP');
  // Nor does a session taken under the old CA let its client back in: a resumed session
  // skips the certificate, so sessions are bound to the CAs they were verified under.
  for (let i = 0; i < 8; i++) {
    const resumed = await tlsProbe(cache.port, ca.cert, cache.lines, session, member).catch(() => null);
    assert.ok(resumed === null || resumed.status === 0, `connection ${i}: ${JSON.stringify(resumed)}`);
  }
});
