// The http section's keys that distribution reads its own way: http.tls.minimumtls and
// http.tls.ciphersuites (Go's names and order, what is refused, what is only warned), and
// http.processes with its REGISTRY_HTTP_PROCESSES override.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertConfigError, load, simple } from '../helpers/config.js';

describe('http.tls.minimumtls and http.tls.ciphersuites, as distribution reads them', () => {
  /** The simple config with TLS, and these lines under http.tls. */
  const withTls = async (lines = ''): Promise<string> =>
    (await simple()).replace(
      '  addr: :5000\n',
      `  addr: :5000\n  tls:\n    certificate: /certs/cache.pem\n    key: /certs/cache.key\n${lines}`,
    );
  const AES128_FIRST = [
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ];

  it("defaults: TLS 1.2 and up, distribution's default suites in Go's order (AES-128-GCM first)", async () => {
    const { config, warnings } = load(await withTls());
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.http.tlsPolicy, {
      minVersion: 'TLSv1.2',
      tls12Ciphers: AES128_FIRST,
    });
  });

  it('minimumtls: tls1.2, tls1.3; tls1.0 and tls1.1 are read as tls1.2 with a warning', async () => {
    const at = async (v: string) => load(await withTls(`    minimumtls: ${v}\n`));
    assert.deepEqual((await at('tls1.2')).config.http.tlsPolicy.minVersion, 'TLSv1.2');
    assert.deepEqual((await at('tls1.3')).config.http.tlsPolicy, {
      minVersion: 'TLSv1.3',
      tls12Ciphers: [],
    });
    const old = await at('tls1.0');
    assert.equal(old.config.http.tlsPolicy.minVersion, 'TLSv1.2');
    assert.deepEqual(old.warnings, [
      'config warning: http.tls.minimumtls (line 12): read as tls1.2: OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level',
    ]);
    assert.equal((await at('tls1.1')).config.http.tlsPolicy.minVersion, 'TLSv1.2');
  });

  it('a bad minimumtls names the key and line', async () => {
    for (const bad of ['tls1.4', 'TLS1.2', '1.2', 'TLSv1.2', '[tls1.2]']) {
      const text = await withTls(`    minimumtls: ${bad}\n`);
      assertConfigError(() => load(text), {
        keyPath: 'http.tls.minimumtls',
        line: 12,
        message: /expected tls1\.2 or tls1\.3 \(tls1\.0 and tls1\.1 are read as tls1\.2\)$/,
      });
    }
  });

  it("ciphersuites: Go's names, served in Go's preference order whatever the order written", async () => {
    const { config, warnings } = load(
      await withTls(
        '    ciphersuites:\n' +
          '      - TLS_RSA_WITH_AES_128_CBC_SHA\n' +
          '      - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\n' + // Go's older name, still accepted
          '      - TLS_AES_128_GCM_SHA256\n' + // TLS 1.3: accepted, as in Go, with no effect
          '      - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n',
      ),
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.http.tlsPolicy.tls12Ciphers, [
      'ECDHE-ECDSA-AES256-GCM-SHA384',
      'ECDHE-RSA-CHACHA20-POLY1305',
      'AES128-SHA',
    ]);
  });

  it("an empty ciphersuites list is distribution's default list, as getCipherSuites reads it", async () => {
    for (const empty of ['    ciphersuites: []\n', '    ciphersuites:\n']) {
      const { config, warnings } = load(await withTls(empty));
      assert.deepEqual(warnings, [], empty);
      assert.deepEqual(config.http.tlsPolicy, { minVersion: 'TLSv1.2', tls12Ciphers: AES128_FIRST }, empty);
    }
  });

  it('a bad ciphersuites entry names its index; RC4 is refused', async () => {
    const list = (...names: string[]) => withTls(`    ciphersuites:\n${names.map((n) => `      - ${n}\n`).join('')}`);
    const openssl = await list('TLS_AES_128_GCM_SHA256', 'ECDHE-RSA-AES128-GCM-SHA256');
    assertConfigError(() => load(openssl), {
      keyPath: 'http.tls.ciphersuites[1]',
      line: 14,
      message:
        'config error: http.tls.ciphersuites[1] (line 14): found "ECDHE-RSA-AES128-GCM-SHA256", expected a Go cipher suite name such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
    });
    const rc4 = await list('TLS_ECDHE_RSA_WITH_RC4_128_SHA');
    assertConfigError(() => load(rc4), { keyPath: 'http.tls.ciphersuites[0]', message: /RFC 7465/ });
    const scalar = await withTls('    ciphersuites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n');
    assertConfigError(() => load(scalar), { keyPath: 'http.tls.ciphersuites', line: 12 });
  });

  it('TLS 1.3 suites only: TLS 1.3 only, with all its suites, as distribution serves it', async () => {
    const { config, warnings } = load(
      await withTls('    ciphersuites:\n      - TLS_CHACHA20_POLY1305_SHA256\n      - TLS_AES_256_GCM_SHA384\n'),
    );
    assert.deepEqual(config.http.tlsPolicy, { minVersion: 'TLSv1.3', tls12Ciphers: [] });
    assert.deepEqual(warnings, [
      'config warning: http.tls.ciphersuites (line 12): lists TLS 1.3 suites only: TLS 1.2 clients are refused and TLS 1.3 keeps all its suites, as in Docker Registry',
    ]);
  });

  it("suites this node's OpenSSL cannot serve (3DES): warned beside others, refused alone", async () => {
    const list = (...names: string[]) => withTls(`    ciphersuites:\n${names.map((n) => `      - ${n}\n`).join('')}`);
    const alone = await list('TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'TLS_AES_128_GCM_SHA256');
    assertConfigError(() => load(alone), {
      keyPath: 'http.tls.ciphersuites',
      line: 12,
      message:
        "config error: http.tls.ciphersuites (line 12): found only suites it cannot serve (TLS_RSA_WITH_3DES_EDE_CBC_SHA: no cipher match), expected at least one TLS 1.2 suite this node's OpenSSL can serve, such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    });
    const { config, warnings } = load(
      await list('TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'),
    );
    assert.deepEqual(config.http.tlsPolicy.tls12Ciphers, ['ECDHE-RSA-AES128-GCM-SHA256']);
    assert.deepEqual(warnings, [
      "config warning: http.tls.ciphersuites[0] (line 13): not served: this node's OpenSSL cannot serve TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA (no cipher match); the other suites are",
    ]);
  });

  it('warned: ciphersuites with minimumtls tls1.3, and either key without a certificate', async () => {
    const t13 = load(
      await withTls('    minimumtls: tls1.3\n    ciphersuites:\n      - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n'),
    );
    assert.deepEqual(t13.warnings, [
      'config warning: http.tls.ciphersuites (line 13): has no effect with minimumtls tls1.3 (TLS 1.3 suites are fixed)',
    ]);
    const plain = load((await simple()).replace('  addr: :5000\n', '  addr: :5000\n  tls:\n    minimumtls: tls1.3\n'));
    assert.equal(plain.config.http.tls, null);
    assert.deepEqual(plain.warnings, [
      'config warning: http.tls.minimumtls (line 10): has no effect without http.tls.certificate and key',
    ]);
  });
});

describe('http.processes', () => {
  const at = async (v: string) =>
    load((await simple()).replace('  addr: :5000\n', `  addr: :5000\n  processes: ${v}\n`));

  it('auto (the default) or a whole number; REGISTRY_HTTP_PROCESSES overrides it', async () => {
    assert.equal(load(await simple()).config.http.processes, 'auto');
    assert.equal((await at('auto')).config.http.processes, 'auto');
    assert.equal((await at('1')).config.http.processes, 1);
    assert.equal((await at('8')).config.http.processes, 8);
    assert.equal(load(await simple(), { REGISTRY_HTTP_PROCESSES: '2' }).config.http.processes, 2);
  });

  it('anything else names the key and line', async () => {
    for (const bad of ['0', '-1', '1.5', 'two', 'Auto', '"2"', '2000', '[2]']) {
      const text = (await simple()).replace('  addr: :5000\n', `  addr: :5000\n  processes: ${bad}\n`);
      assertConfigError(() => load(text), {
        keyPath: 'http.processes',
        line: 9,
        message: /expected auto or a whole number of processes from 1 to 1024$/,
      });
    }
    const base = await simple();
    assertConfigError(() => load(base, { REGISTRY_HTTP_PROCESSES: '0' }), {
      keyPath: 'http.processes',
      envVar: 'REGISTRY_HTTP_PROCESSES',
    });
  });
});

describe('http.secret', () => {
  it('a string; empty is read as unset, as distribution does (it generates one)', async () => {
    const at = async (v: string) =>
      load((await simple()).replace('  addr: :5000\n', `  addr: :5000\n  secret: ${v}\n`)).config.http.secret;
    assert.equal(await at('s3cr3t'), 's3cr3t');
    assert.equal(await at('""'), null);
    assert.equal(await at("''"), null);
    assert.equal(load(await simple(), { REGISTRY_HTTP_SECRET: '' }).config.http.secret, null);
    const list = (await simple()).replace('  addr: :5000\n', '  addr: :5000\n  secret: [a]\n');
    assertConfigError(() => load(list), {
      keyPath: 'http.secret',
      line: 9,
    });
  });
});

describe('http.host, http.tls.certificate and key, http.debug.addr: empty is unset, as in distribution', () => {
  // distribution tests each for "": `certificate: ""` serves plain HTTP, `debug.addr: ""` runs no
  // debug server, `host: ""` builds URLs from the request. Templated configs write them so.
  const withHttp = async (lines: string) => (await simple()).replace('  addr: :5000\n', `  addr: :5000\n${lines}`);

  it('"" (or \'\', or from the environment) reads as if the key were not there', async () => {
    const { config, warnings } = load(
      await withHttp('  host: ""\n  tls:\n    certificate: ""\n    key: \'\'\n  debug:\n    addr: ""\n'),
    );
    assert.equal(config.http.publicUrl, null);
    assert.equal(config.http.tls, null);
    assert.equal(config.http.debug, null);
    // Plain HTTP where a certificate was meant is worth a word.
    assert.deepEqual(warnings, [
      'config warning: http.tls.certificate (line 11): empty, read as unset as in Docker Registry: this node serves plain HTTP',
    ]);
    const fromEnv = load(await simple(), { REGISTRY_HTTP_HOST: '', REGISTRY_HTTP_DEBUG_ADDR: '' }).config.http;
    assert.equal(fromEnv.publicUrl, null);
    assert.equal(fromEnv.debug, null);
  });

  it('an empty certificate beside a key is still a key without its certificate', async () => {
    const text = await withHttp('  tls:\n    certificate: ""\n    key: /certs/cache.key\n');
    assertConfigError(() => load(text), { keyPath: 'http.tls.key', line: 11, message: /a key without a certificate/ });
  });
});

describe('http.debug.addr', () => {
  const at = async (addr: string, debug: string) =>
    (await simple()).replace('  addr: :5000\n', `  addr: ${addr}\n  debug:\n    addr: ${debug}\n`);

  it("may not be http.addr's port on the same host or on every interface", async () => {
    for (const [addr, debug] of [
      [':5000', ':5000'],
      [':5000', '127.0.0.1:5000'],
      ['127.0.0.1:5000', '0.0.0.0:5000'],
      ['127.0.0.1:5000', '127.0.0.1:5000'],
    ] as const) {
      const text = await at(addr, debug);
      assertConfigError(() => load(text), {
        keyPath: 'http.debug.addr',
        line: 10,
        message: new RegExp(
          `found "${debug}", on the port http\\.addr binds \\(5000\\), expected an address other than http\\.addr's`,
        ),
      });
    }
    assert.equal(load(await at(':5000', ':5001')).config.http.debug?.port, 5001);
    assert.equal(load(await at('127.0.0.1:5000', '127.0.0.2:5000')).config.http.debug?.host, '127.0.0.2');
    // Port 0 picks a free port for each.
    assert.equal(load(await at('127.0.0.1:0', '127.0.0.1:0')).config.http.debug?.port, 0);
    const base = await simple();
    assertConfigError(() => load(base, { REGISTRY_HTTP_DEBUG_ADDR: ':5000' }), {
      keyPath: 'http.debug.addr',
      envVar: 'REGISTRY_HTTP_DEBUG_ADDR',
    });
  });
});

describe('http.tls.clientcas and clientauth, as distribution reads them', () => {
  const TLS = '  tls:\n    certificate: /certs/cache.pem\n    key: /certs/cache.key\n';
  /** The simple config with TLS (line 9), these lines under http.tls (from line 12), and `debug` under http. */
  const withTls = async (lines: string, debug = '', tls = TLS): Promise<string> =>
    (await simple()).replace('  addr: :5000\n', `  addr: :5000\n${tls}${lines}${debug}`);
  const DEBUG = '  debug:\n    addr: 127.0.0.1:5001\n';
  const TWO = '    clientcas:\n      - /certs/client-ca.pem\n      - /certs/other-ca.pem\n';

  it('a list of absolute paths, in order; without a debug server, a warning about `dtr-cache health`', async () => {
    const { config, warnings } = load(await withTls(TWO, DEBUG));
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.http.tls, {
      certificate: '/certs/cache.pem',
      key: '/certs/cache.key',
      clientCas: ['/certs/client-ca.pem', '/certs/other-ca.pem'],
    });
    assert.deepEqual(load(await withTls(TWO)).warnings, [
      'config warning: http.tls.clientcas (line 12): `dtr-cache health` shows no client certificate: set http.debug.addr for it to ask, or it fails',
    ]);
  });

  it('an empty list (or none) asks for no client certificate, as before', async () => {
    for (const lines of ['    clientcas: []\n', '']) {
      const { config, warnings } = load(await withTls(lines));
      assert.deepEqual(warnings, []);
      assert.deepEqual(config.http.tls?.clientCas, []);
    }
    assert.equal(
      load((await simple()).replace('  addr: :5000\n', '  addr: :5000\n  tls:\n    clientcas: []\n')).config.http.tls,
      null,
    );
  });

  it('refused without TLS, with a relative path, or not a list, naming the key and line', async () => {
    const noTls = (await simple()).replace('  addr: :5000\n', `  addr: :5000\n  tls:\n${TWO}`);
    assertConfigError(() => load(noTls), {
      keyPath: 'http.tls.clientcas',
      line: 10,
      message: /found clientcas without TLS, expected http\.tls\.certificate and http\.tls\.key to be set too/,
    });
    const relative = await withTls('    clientcas:\n      - /certs/client-ca.pem\n      - certs/other-ca.pem\n');
    assertConfigError(() => load(relative), {
      keyPath: 'http.tls.clientcas[1]',
      line: 14,
      message: /expected an absolute path to a PEM CA certificate/,
    });
    const scalar = await withTls('    clientcas: /certs/client-ca.pem\n');
    assertConfigError(() => load(scalar), { keyPath: 'http.tls.clientcas', line: 12 });
  });

  it('clientauth: require-and-verify-client-cert (the default) served; laxer modes refused; warned alone', async () => {
    const at = async (mode: string) => withTls(`${TWO}    clientauth: ${mode}\n`, DEBUG);
    assert.deepEqual(load(await at('require-and-verify-client-cert')).warnings, []);
    for (const mode of ['request-client-cert', 'require-any-client-cert', 'verify-client-cert-if-given']) {
      const text = await at(mode);
      assertConfigError(() => load(text), {
        keyPath: 'http.tls.clientauth',
        line: 15,
        message: /expected require-and-verify-client-cert \(the only client authentication mode dtr-cache serves\)$/,
      });
    }
    const unknown = await at('always');
    assertConfigError(() => load(unknown), {
      keyPath: 'http.tls.clientauth',
      message: /expected one of request-client-cert, /,
    });
    assert.deepEqual(load(await withTls('    clientauth: require-and-verify-client-cert\n')).warnings, [
      'config warning: http.tls.clientauth (line 12): has no effect without clientcas, ignored',
    ]);
  });
});

describe('durations that become timers', () => {
  it('are at most 596h, the longest a Node.js timer waits (longer would fire at once)', async () => {
    const base = await simple();
    const cases: Array<[string, string, string]> = [
      ['  addr: :5000\n', '  addr: :5000\n  draintimeout: 600h\n', 'http.draintimeout'],
      ['  addr: :5000\n', '  addr: :5000\n  limits:\n    idletimeout: 720h\n', 'http.limits.idletimeout'],
      [
        '          blobttl: 24h\n',
        '          blobttl: 24h\n          timeouts:\n            headers: 800h\n',
        'middleware.registry[0].options.timeouts.headers',
      ],
    ];
    for (const [from, to, keyPath] of cases) {
      assertConfigError(() => load(base.replace(from, to)), {
        keyPath,
        message: /expected at most 596h \(about 24\.8 days: a Node\.js timer cannot wait longer\)$/,
      });
    }
    assert.equal(
      load(base.replace('  addr: :5000\n', '  addr: :5000\n  draintimeout: 596h\n')).config.http.drainTimeoutMs,
      596 * 3_600_000,
    );
    // blobttl is compared with times of last pull, never waited for: a month is fine.
    assert.equal(load(base.replace('blobttl: 24h', 'blobttl: 720h')).config.downstream.blobTtlMs, 720 * 3_600_000);
  });
});
