// The cache's TLS as clients meet it: AES-128-GCM on TLS 1.3 by default (as Go prefers it
// on AES-NI hardware, and cheaper per byte than Node's first choice, AES-256-GCM);
// distribution's http.tls.minimumtls and http.tls.ciphersuites refuse the clients they
// exclude, also after a SIGHUP reload; a bad value stops `dtr-cache serve` with exit 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { promisify } from 'node:util';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { CACHE_CLI, cliNodeFlags, writeConfig, type TestCache } from '../helpers/cache.js';
import { within } from '../helpers/deadline.js';
import { startStack } from '../helpers/stack.js';

const run = promisify(execFile);

interface Handshake {
  protocol: string | null;
  cipher: string;
  error: string | null;
}

function handshake(cache: TestCache, ca: TestCa, opts: ConnectionOptions = {}): Promise<Handshake> {
  return within(
    5_000,
    'TLS handshake',
    new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', servername: 'localhost', port: cache.port, ca: ca.cert, ...opts });
      s.once('secureConnect', () => {
        resolve({ protocol: s.getProtocol(), cipher: s.getCipher().name, error: null });
        s.destroy();
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve({ protocol: null, cipher: '', error: err.code ?? '' }));
    }),
  );
}

test('defaults: TLS 1.3 negotiates AES-128-GCM; TLS 1.2 gets distribution default suites, nothing else', async (t) => {
  const { ca, cache } = await startStack(t);
  // Node's client, like OpenSSL's and curl's, offers TLS_AES_256_GCM_SHA384 first.
  assert.deepEqual(await handshake(cache, ca), { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', error: null });
  const chachaFirst = await handshake(cache, ca, { ciphers: 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256' });
  assert.equal(chachaFirst.cipher, 'TLS_CHACHA20_POLY1305_SHA256', 'a client without AES hardware gets ChaCha20');
  assert.deepEqual(await handshake(cache, ca, { maxVersion: 'TLSv1.2' }), {
    protocol: 'TLSv1.2',
    cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256',
    error: null,
  });
  // A CBC suite that Node would accept by default is not in distribution's list.
  const cbc = await handshake(cache, ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' });
  assert.match(cbc.error ?? 'accepted', /HANDSHAKE_FAILURE/);
  const tls11 = await handshake(cache, ca, {
    minVersion: 'TLSv1',
    maxVersion: 'TLSv1.1',
    ciphers: 'DEFAULT@SECLEVEL=0',
  });
  assert.notEqual(tls11.error, null, 'TLS 1.1 is refused');
});

test('minimumtls tls1.3 refuses a TLS 1.2 client, also after a reload', async (t) => {
  const { ca, cache } = await startStack(t, { extraTls: '    minimumtls: tls1.3\n' });
  assert.equal((await handshake(cache, ca)).protocol, 'TLSv1.3');
  const below = await handshake(cache, ca, { maxVersion: 'TLSv1.2' });
  assert.match(below.error ?? 'accepted', /PROTOCOL_VERSION/);
  // setSecureContext() rebuilds the context from what it is given: the policy must survive.
  await cache.reload();
  assert.match((await handshake(cache, ca, { maxVersion: 'TLSv1.2' })).error ?? 'accepted', /PROTOCOL_VERSION/);
  assert.equal((await handshake(cache, ca)).cipher, 'TLS_AES_128_GCM_SHA256');
});

test('ciphersuites restricts TLS 1.2 to the suites listed', async (t) => {
  const { ca, cache } = await startStack(t, {
    extraTls: '    ciphersuites:\n      - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n',
  });
  assert.deepEqual(await handshake(cache, ca, { maxVersion: 'TLSv1.2' }), {
    protocol: 'TLSv1.2',
    cipher: 'ECDHE-ECDSA-AES256-GCM-SHA384',
    error: null,
  });
  const other = await handshake(cache, ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
  assert.match(other.error ?? 'accepted', /HANDSHAKE_FAILURE/);
  assert.equal((await handshake(cache, ca)).cipher, 'TLS_AES_128_GCM_SHA256', 'TLS 1.3 is not restricted');
});

test('ciphersuites of TLS 1.3 suites only: TLS 1.3 only, with all its suites (Go ignores the list for 1.3)', async (t) => {
  const { ca, cache } = await startStack(t, { extraTls: '    ciphersuites:\n      - TLS_CHACHA20_POLY1305_SHA256\n' });
  assert.deepEqual(await handshake(cache, ca), {
    protocol: 'TLSv1.3',
    cipher: 'TLS_AES_128_GCM_SHA256',
    error: null,
  });
  const aes256 = await handshake(cache, ca, { ciphers: 'TLS_AES_256_GCM_SHA384' });
  assert.equal(aes256.cipher, 'TLS_AES_256_GCM_SHA384', 'a suite not listed is still served, as by distribution');
  assert.match((await handshake(cache, ca, { maxVersion: 'TLSv1.2' })).error ?? 'accepted', /PROTOCOL_VERSION/);
});

test('a bad minimumtls or ciphersuites stops `dtr-cache serve` with exit 2, naming the key', async (t) => {
  const ca = await createTestCa();
  for (const [extraTls, key] of [
    ['    minimumtls: tls1.4\n', 'http.tls.minimumtls'],
    [
      '    ciphersuites:\n      - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n      - AES128-SHA\n',
      'http.tls.ciphersuites[1]',
    ],
    // Go serves 3DES, OpenSSL 3 does not: refused at load, not by OpenSSL's "no cipher match".
    ['    ciphersuites:\n      - TLS_RSA_WITH_3DES_EDE_CBC_SHA\n', 'http.tls.ciphersuites'],
  ] as const) {
    const cfg = await writeConfig({
      upstreams: ['https://localhost:1'],
      cas: [ca.certPath],
      tls: await ca.issue('cache'),
      extraTls,
    });
    t.after(() => rm(cfg.dir, { recursive: true, force: true }));
    // Bounded: a value that were ignored would leave the cache serving.
    const args = [...(await cliNodeFlags()), CACHE_CLI, 'serve', '--config', cfg.path];
    const r = await run(process.execPath, args, { timeout: 20_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^config error: ${key.replace(/[[\]().]/g, '\\$&')} \\(line \\d+\\): found `));
  }
});
