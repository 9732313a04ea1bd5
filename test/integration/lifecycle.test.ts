// Lifecycle, with the cache as its own process (`dtr-cache serve`):
// SIGTERM drains (GOAWAY, no new connections, transfers in flight finish, exit 0 within
// http.draintimeout) and publishes nothing partial; SIGHUP swaps the TLS certificate
// without dropping connections and refuses a broken one.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { access, copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { request } from 'undici';
import { createTestCa, type Leaf, type TestCa } from '../../testkit/pki.js';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { spawnCache, writeConfig, type CacheProcess } from '../helpers/cache.js';
import { originConfig } from '../helpers/stack.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { TestOrigin } from '../helpers/origin.js';
import { waitFor, within } from '../helpers/deadline.js';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function setup(
  t: TestContext,
  extraHttp: string,
  tls?: Leaf,
): Promise<{ ca: TestCa; origin: TestOrigin; cfg: Awaited<ReturnType<typeof writeConfig>> }> {
  const made = await originConfig(t, { extraHttp, ...(tls !== undefined ? { tls } : {}) });
  t.after(() => rm(made.cfg.dir, { recursive: true, force: true }));
  return made;
}

function h2Session(t: TestContext, url: string, ca: string): Promise<ClientHttp2Session> {
  const session = http2Connect(url, { ca });
  session.on('error', () => undefined);
  t.after(() => session.destroy());
  return within(
    5_000,
    'h2 connect',
    new Promise((resolve, reject) => {
      session.once('connect', () => resolve(session));
      session.once('error', reject);
    }),
  );
}

/** One GET on an HTTP/2 session: status, body bytes and their sha256, or the stream's error. */
function h2Get(
  session: ClientHttp2Session,
  path: string,
): Promise<{ status: number; bytes: number; sha256: string; error: Error | null }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path });
    const hash = createHash('sha256');
    let status = 0;
    let bytes = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => {
      bytes += d.length;
      hash.update(d);
    });
    stream.on('error', (err) => resolve({ status, bytes, sha256: '', error: err }));
    stream.on('end', () => resolve({ status, bytes, sha256: hash.digest('hex'), error: null }));
    stream.end();
  });
}

function exitOf(p: CacheProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null) resolve(p.child.exitCode);
    else p.child.once('exit', (code) => resolve(code));
  });
}

function connectError(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = netConnect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(null);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

async function debugPort(p: CacheProcess): Promise<number> {
  return waitFor(10_000, 'debug server line', () => {
    const line = p.lines.find((l) => l.msg === 'debug server listening');
    return line === undefined ? undefined : Number(line.port);
  });
}

test('SIGTERM mid-transfer: GOAWAY, new connections refused, health 503, the transfer completes and its blob is published, exit 0 before the deadline', async (t) => {
  const { ca, origin, cfg } = await setup(t, '  draintimeout: 20s\n  debug:\n    addr: 127.0.0.1:0\n');
  // The worker holds each publication a second past the verdict, which releases the client's
  // last byte: the drain must wait for it, not end with the transfer.
  const cache = await spawnCache(t, cfg.path, cfg.root, { DTR_CACHE_TEST_PUBLISH_DELAY_MS: '1000' });
  const dport = await debugPort(cache);
  assert.equal(
    (await request(`http://127.0.0.1:${dport}/metrics`)).statusCode,
    404,
    'prometheus is off unless enabled',
  );
  assert.equal((await request(`http://127.0.0.1:${dport}/debug/health`)).statusCode, 200);

  // An idle HTTP/1.1 keep-alive connection must not hold the drain open.
  const h1 = agentFor(ca.cert, false);
  t.after(() => h1.destroy());
  assert.equal((await fetchBlob(h1, `${cache.url}/v2/`)).status, 200);

  const blob = origin.add(randomBytes(4 << 20));
  const token = await origin.mint('team/app', blob.digest);
  const session = await h2Session(t, cache.url, ca.cert);
  let goaway: number | null = null;
  session.on('goaway', (code) => (goaway = code));
  const gate = origin.gate(blob.digest, 1 << 20);
  const transfer = h2Get(session, `/v2/team/app/blobs/${blob.digest}?token=${encodeURIComponent(token)}`);
  await within(10_000, 'origin sent the first MiB', gate.reached);

  const exited = exitOf(cache);
  const sigterm = Date.now();
  cache.child.kill('SIGTERM');
  await waitFor(5_000, 'GOAWAY on the HTTP/2 session', () => goaway !== null);
  assert.equal(goaway, 0, 'GOAWAY(NO_ERROR)');
  assert.equal(
    await waitFor(5_000, 'new connections refused', async () => {
      const code = await connectError(cache.port);
      return code === 'ECONNREFUSED' ? code : undefined;
    }),
    'ECONNREFUSED',
  );
  const health = await request(`http://127.0.0.1:${dport}/debug/health`);
  assert.equal(health.statusCode, 503, 'a draining node tells its orchestrator');
  assert.equal(((await health.body.json()) as { checks: { draining: boolean } }).checks.draining, true);

  gate.open();
  const r = await within(15_000, 'the transfer in flight', transfer);
  const done = Date.now();
  assert.equal(r.error, null);
  assert.equal(r.status, 200);
  assert.equal(r.bytes, blob.bytes.length);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(await within(20_000, 'exit', exited), 0);
  const exitMs = Date.now() - sigterm;
  assert.ok(exitMs < 20_000, `exited ${exitMs} ms after SIGTERM, within the drain deadline`);
  assert.ok(
    Date.now() - done < 3_000,
    `exited ${Date.now() - done} ms after the last transfer: nothing idle held the drain`,
  );
  assert.ok(await exists(new Layout(cfg.root).blobData(parseDigest(blob.digest))), 'the completed fill was published');
  assert.ok(cache.lines.some((l) => l.msg === 'stopped'));
});

/** HTTP/1.1 answers framed by Content-Length: status, Connection field and body of each. */
function h1Answers(buf: Buffer): Array<{ status: number; connection: string | undefined; body: Buffer }> {
  const out: Array<{ status: number; connection: string | undefined; body: Buffer }> = [];
  for (let off = 0; off < buf.length;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1');
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + length) break;
    const connection = /\r\nconnection: ([^\r]*)/i.exec(head)?.[1]?.toLowerCase();
    out.push({ status: Number(head.split(' ')[1]), connection, body: buf.subarray(end + 4, end + 4 + length) });
    off = end + 4 + length;
  }
  return out;
}

test('SIGTERM with HTTP/1.1 keep-alive transfers in flight: they finish, the connection closes after its last answer, exit 0 at once', async (t) => {
  const { ca, origin, cfg } = await setup(t, '  draintimeout: 20s\n');
  const cache = await spawnCache(t, cfg.path, cfg.root);
  const blob = origin.add(randomBytes(4 << 20));
  const token = await origin.mint('team/app', blob.digest);
  const gate = origin.gate(blob.digest, 1 << 20);
  t.after(() => gate.open());
  // A keep-alive connection with a fill in flight (its headers sent) and a request pipelined
  // behind it, answered before the drain and queued.
  const sock = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port: cache.port, ca: ca.cert });
  t.after(() => sock.destroy());
  const chunks: Buffer[] = [];
  let lastByteAt = 0;
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    lastByteAt = Date.now();
  });
  sock.on('error', () => undefined);
  const closedAt = new Promise<number>((resolve) => sock.once('close', () => resolve(Date.now())));
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
  sock.write(get(`/v2/team/app/blobs/${blob.digest}?token=${token}`) + get('/v2/'));
  await within(10_000, 'origin sent the first MiB', gate.reached);
  await waitFor(5_000, 'the fill answer under way', () => chunks.length > 0);

  const exited = exitOf(cache);
  cache.child.kill('SIGTERM');
  await waitFor(5_000, 'draining', () => cache.lines.some((l) => l.msg === 'draining'));
  gate.open();
  const closed = await within(15_000, 'the server closes the connection', closedAt);
  const answers = h1Answers(Buffer.concat(chunks));
  assert.deepEqual(
    answers.map((a) => a.status),
    [200, 200],
  );
  assert.equal(`sha256:${createHash('sha256').update(answers[0]!.body).digest('hex')}`, blob.digest);
  assert.equal(answers[1]!.body.toString(), '{}');
  assert.ok(closed - lastByteAt < 2_000, `closed ${closed - lastByteAt} ms after the last answer, not kept alive`);
  assert.equal(await within(20_000, 'exit', exited), 0);
  assert.ok(Date.now() - lastByteAt < 3_000, `exited ${Date.now() - lastByteAt} ms after the last answer`);
});

test('SIGTERM: an HTTP/1.1 request completed during the drain is answered with Connection: close, then the connection closes', async (t) => {
  const { ca, cfg } = await setup(t, '  draintimeout: 20s\n');
  const cache = await spawnCache(t, cfg.path, cfg.root);
  const sock = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port: cache.port, ca: ca.cert });
  t.after(() => sock.destroy());
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  await new Promise((resolve) => sock.once('secureConnect', resolve));
  // Headers under way when the drain starts: the connection is not idle, so it stays open.
  sock.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\n');
  await delay(200);
  const exited = exitOf(cache);
  cache.child.kill('SIGTERM');
  await waitFor(5_000, 'draining', () => cache.lines.some((l) => l.msg === 'draining'));
  sock.write('\r\n');
  await within(5_000, 'the server closes the connection after its answer', closed);
  const answers = h1Answers(Buffer.concat(chunks));
  assert.deepEqual(
    answers.map((x) => [x.status, x.connection, x.body.toString()]),
    [[200, 'close', '{}']],
  );
  assert.equal(await within(10_000, 'exit', exited), 0);
});

test('drain deadline passes mid-fill: exit 0 at the deadline, nothing partial published, no spool leftover after restart', async (t) => {
  const { ca, origin, cfg } = await setup(t, '  draintimeout: 500ms\n');
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const blob = origin.add(randomBytes(4 << 20));
  const token = await origin.mint('team/app', blob.digest);
  const layout = new Layout(cfg.root);
  const d = parseDigest(blob.digest);

  const first = await spawnCache(t, cfg.path, cfg.root);
  const gate = origin.gate(blob.digest, 1 << 20);
  t.after(() => gate.open());
  const victim = fetchBlob(agent, `${first.url}/v2/team/app/blobs/${blob.digest}?token=${token}`);
  await within(10_000, 'origin sent the first MiB', gate.reached);
  await waitFor(10_000, 'the spool exists', async () => (await readdir(layout.spoolDir).catch(() => [])).length > 0);
  const sigterm = Date.now();
  assert.equal(await first.stop('SIGTERM'), 0, 'exit 0 after the deadline');
  const ms = Date.now() - sigterm;
  assert.ok(ms >= 450 && ms < 5_000, `stopped ${ms} ms after SIGTERM (deadline 500 ms)`);
  const v = await within(5_000, 'the cut transfer', victim);
  assert.notEqual(v.error, null, 'the client saw a broken transfer, never a clean end');
  assert.ok(v.body.length < blob.bytes.length);
  assert.equal(await exists(layout.blobData(d)), false, 'nothing published');

  const second = await spawnCache(t, cfg.path, cfg.root);
  assert.deepEqual(await readdir(layout.spoolDir).catch(() => []), [], 'no spool leftover after restart');
  gate.open();
  const r = await fetchBlob(agent, `${second.url}/v2/team/app/blobs/${blob.digest}?token=${token}`);
  assert.equal(r.status, 200);
  assert.equal(`sha256:${r.sha256}`, blob.digest);
  assert.equal(origin.count(origin.gets, blob.digest), 2, 'fetched afresh');
  assert.equal(await second.stop('SIGTERM'), 0);
});

test('SIGHUP: new certificate for new connections, open sessions keep working, a broken one is refused and the old kept', async (t) => {
  const ca = await createTestCa();
  const [a, b, c] = [await ca.issue('cache-a'), await ca.issue('cache-b'), await ca.issue('cache-c')];
  const tlsDir = await mkdtemp(join(tmpdir(), 'dtr-cache-tls-'));
  t.after(() => rm(tlsDir, { recursive: true, force: true }));
  const live: Leaf = { ...a, certPath: join(tlsDir, 'cache.cert.pem'), keyPath: join(tlsDir, 'cache.key.pem') };
  const install = async (cert: string, key: string) =>
    Promise.all([writeFile(live.certPath, cert), writeFile(live.keyPath, key)]);
  await Promise.all([copyFile(a.certPath, live.certPath), copyFile(a.keyPath, live.keyPath)]);
  const { origin, cfg } = await setup(t, '', live);
  const cache = await spawnCache(t, cfg.path, cfg.root);
  const fp = (pem: string) => new X509Certificate(pem).fingerprint256;
  const served = () =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect(
        { host: '127.0.0.1', servername: 'localhost', port: cache.port, ca: ca.cert, ALPNProtocols: ['h2'] },
        () => {
          resolve(s.getPeerCertificate().fingerprint256);
          s.destroy();
        },
      );
      s.once('error', reject);
    });
  const reloads = (msg: string) => cache.lines.filter((l) => l.msg === msg).length;
  const hup = async (msg: string) => {
    const before = reloads(msg);
    cache.child.kill('SIGHUP');
    await waitFor(5_000, msg, () => reloads(msg) > before);
  };

  const session = await h2Session(t, cache.url, ca.cert);
  assert.equal(
    (session.socket as unknown as { getPeerCertificate(): { fingerprint256: string } }).getPeerCertificate()
      .fingerprint256,
    fp(a.cert),
  );
  assert.equal((await h2Get(session, '/v2/')).status, 200);
  await origin.rotate();

  await install(b.cert, b.key);
  await hup('reloaded TLS certificate and key set');
  assert.equal(
    cache.lines.findLast((l) => l.msg === 'reloaded TLS certificate and key set')?.keys,
    2,
    'the key set was reloaded too',
  );
  assert.equal(await served(), fp(b.cert), 'new connections get the new certificate');
  assert.equal((await h2Get(session, '/v2/')).status, 200, 'the open session still works');

  // A certificate that does not match its key, then one that does not parse: both refused.
  for (const [cert, key] of [
    [c.cert, b.key],
    ['-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n', b.key],
  ] as const) {
    await install(cert, key);
    await hup('reload refused; keeping the current certificate and keys');
    assert.equal(await served(), fp(b.cert), 'the previous certificate is kept');
    assert.equal((await h2Get(session, '/v2/')).status, 200);
  }
  assert.equal(cache.child.exitCode, null, 'still running');
  assert.equal(session.closed || session.destroyed, false, 'the session was never dropped');
  assert.equal(await cache.stop('SIGTERM'), 0);
});
