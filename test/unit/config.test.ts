// Unit tests of src/config: the DTR documentation's configs load unchanged (placeholders filled
// in), every invalid value is a one-line ConfigError naming key path and line (or env var),
// durations read like Go's, sizes like the docs say, and config.example.yml stays in step
// with DEFAULTS.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { createTestCa, type Leaf, type TestCa } from '../../testkit/pki.js';
import { URL_PLACEHOLDERS } from '../helpers/seed-placeholders.js';
import { DEFAULTS } from '../../src/config/defaults.js';
import { formatDuration, parseGoDuration } from '../../src/config/duration.js';
import { ConfigError, ValueSyntaxError } from '../../src/config/errors.js';
import { loadConfig, loadConfigFile } from '../../src/config/load.js';
import { formatSize, parseSize } from '../../src/config/size.js';
import type { Config } from '../../src/config/types.js';

// Compiled to dist/test/unit/, so the repository root is three levels up.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SEEDS = join(ROOT, 'test/fixtures/seeds');
const DAY_MS = 86_400_000;

let dir: string;
let ca: TestCa;
let leaf: Leaf;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dtr-cache-config-'));
  ca = await createTestCa('dtr-cache config test CA');
  leaf = await ca.issue('cache');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(ca.dir, { recursive: true, force: true });
});

async function seed(name: string): Promise<string> {
  return readFile(join(SEEDS, name), 'utf8');
}

/** Fills URL placeholders only: the file paths stay as the docs wrote them (fine for loadConfig). */
function fillUrls(text: string): string {
  let out = text;
  for (const [placeholder, value] of URL_PLACEHOLDERS) out = out.replaceAll(placeholder, value);
  return out;
}

/**
 * Fills every placeholder and points each absolute /certs or /run/secrets path at a real
 * temp PEM file (the CA certificate, or the leaf key for *key* files), for loadConfigFile.
 * Returns the text and the map from doc path to temp path.
 */
async function fillAll(text: string): Promise<{ text: string; paths: Map<string, string> }> {
  const paths = new Map<string, string>();
  const filled = fillUrls(text).replace(/\/(?:certs|run\/secrets)\/[\w.-]+/g, (docPath) => {
    const real = join(dir, basename(docPath));
    paths.set(docPath, real);
    return real;
  });
  for (const [docPath, real] of paths) await writeFile(real, docPath.includes('key') ? leaf.key : ca.cert);
  return { text: filled, paths };
}

async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

function load(text: string, env: NodeJS.ProcessEnv = {}): { config: Config; warnings: string[] } {
  return loadConfig(text, { env, source: 'config.yml' });
}

interface Expected {
  keyPath: string;
  line?: number | null;
  envVar?: string | null;
  message?: string | RegExp;
}

function checkError(err: unknown, want: Expected): true {
  assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.keyPath, want.keyPath, err.message);
  if (want.line !== undefined) assert.equal(err.line, want.line, err.message);
  if (want.envVar !== undefined) assert.equal(err.envVar, want.envVar, err.message);
  assert.match(err.message, /^config error: /);
  assert.doesNotMatch(err.message, /\n/, 'the message is one line');
  if (typeof want.message === 'string') assert.equal(err.message, want.message);
  else if (want.message !== undefined) assert.match(err.message, want.message);
  return true;
}

function assertConfigError(fn: () => unknown, want: Expected): void {
  assert.throws(fn, (err) => checkError(err, want));
}

/** The "Deploy a simple cache" config with its URL filled in: the base of most error cases. */
async function simple(): Promise<string> {
  return fillUrls(await seed('004-simple.yml'));
}

describe('DTR documentation configs load unchanged', () => {
  it('002 Deploy a DTR cache with Swarm (DTR 2.3+ list form, TLS, host, secret)', async () => {
    const { text, paths } = await fillAll(await seed('002-swarm.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('002.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.equal(config.version, '0.1');
    assert.equal(config.log.level, 'info');
    assert.deepEqual(config.storage, { deleteEnabled: true, rootDirectory: '/var/lib/registry' });
    assert.equal(config.http.host, '0.0.0.0');
    assert.equal(config.http.port, 443);
    assert.equal(config.http.publicUrl, 'https://cache.example.org');
    assert.equal(config.http.secret, 'generate-random-secret');
    assert.deepEqual(config.http.tls, {
      certificate: paths.get('/run/secrets/cache.cert.pem'),
      key: paths.get('/run/secrets/cache.key.pem'),
    });
    assert.equal(config.downstream.blobTtlMs, DAY_MS);
    assert.deepEqual(config.downstream.upstreams, { hosts: ['https://dtr.example.org:4443'], origin: null });
    assert.deepEqual(config.downstream.cas, [paths.get('/run/secrets/dtr.cert.pem')]);
  });

  it('003 Chain multiple caches: the Asia cache pulls from DTR (2.2 originhost only)', async () => {
    const { text, paths } = await fillAll(await seed('003-asia.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('003-asia.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.equal(config.http.host, '');
    assert.equal(config.http.port, 5000);
    assert.deepEqual(config.http.tls, {
      certificate: paths.get('/certs/asia-ca.pem'),
      key: paths.get('/certs/asia-key.pem'),
    });
    assert.deepEqual(config.downstream.upstreams, { hosts: [], origin: 'https://dtr.example.org' });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/dtr-ca.pem')]);
  });

  it('003 Chain multiple caches: the China cache pulls from the Asia cache, origin DTR', async () => {
    const { text, paths } = await fillAll(await seed('003-china.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('003-china.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.downstream.upstreams, {
      hosts: ['https://asia-cache.example.org:5000'],
      origin: 'https://dtr.example.org',
    });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/asia-cache-ca.pem'), paths.get('/certs/dtr-ca.pem')]);
    assert.equal(config.downstream.blobTtlMs, DAY_MS);
  });

  it('004 Deploy a simple cache (no TLS, port 5000)', async () => {
    const { text, paths } = await fillAll(await seed('004-simple.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('004-simple.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.equal(config.http.tls, null);
    assert.equal(config.http.port, 5000);
    assert.deepEqual(config.downstream.upstreams, { hosts: [], origin: 'https://dtr.example.org' });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/dtr-ca.pem')]);
    // Everything not in the file takes its default.
    assert.equal(config.log.level, 'info');
    assert.equal(config.log.formatter, 'json');
    assert.equal(config.http.drainTimeoutMs, 30_000);
    assert.equal(config.http.debug, null);
    assert.deepEqual(config.http.limits, {
      maxHeaderSize: 16384,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
      maxConcurrentStreams: 100,
      maxConnectionsPerIp: 256,
      maxResetsPerSecond: 100,
    });
    assert.deepEqual(config.downstream.timeouts, { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 30_000 });
    assert.equal(config.downstream.workerQueue, 256);
    assert.equal(config.downstream.jwks, null);
    assert.equal(config.downstream.issuer, null);
    assert.equal(config.downstream.maxSize, null);
  });

  it('004 configuration reference fragment, following a registry config as the docs say', async () => {
    // "Settings that you would include in a Docker Registry configuration file followed by":
    const base = 'version: 0.1\nstorage:\n  delete:\n    enabled: true\n';
    const { text, paths } = await fillAll(base + (await seed('004-reference.yml')));
    const { config, warnings } = await loadConfigFile(await writeConfig('004-reference.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.downstream.upstreams, {
      hosts: ['https://cache-a.example.org', 'https://cache-b.example.org:8443'],
      origin: 'https://dtr.example.org',
    });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/cache-a-ca.pem'), paths.get('/certs/cache-b-ca.pem')]);
  });

  it('the reference fragment alone is not a complete config', async () => {
    const fragment = fillUrls(await seed('004-reference.yml'));
    assertConfigError(() => load(fragment), { keyPath: 'version', line: null });
  });

  it('the docs configs with their <placeholders> still in place are refused, with a hint', async () => {
    const raw = await seed('004-simple.yml');
    assertConfigError(() => load(raw), {
      keyPath: 'middleware.registry[0].options.upstreams[0].originhost',
      line: 15,
      message:
        /found "https:\/\/<dtr-url>", expected an absolute .* \(replace the <placeholder> from the documentation\)$/,
    });
  });

  it('the result is deeply frozen', async () => {
    const { config } = load(await simple());
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.http.limits));
    assert.ok(Object.isFrozen(config.downstream.upstreams.hosts));
    assert.ok(Object.isFrozen(config.downstream.cas));
    assert.throws(() => {
      (config.http as { port: number }).port = 1;
    }, TypeError);
  });
});

describe('every invalid value is an exit-worthy ConfigError with key path and line', () => {
  it('bad blobttl', async () => {
    const text = (await simple()).replace('blobttl: 24h', 'blobttl: 24x');
    assertConfigError(() => load(text), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
      message:
        'config error: middleware.registry[0].options.blobttl (line 13): found "24x", expected a Go duration such as 24h, 90m or 1h30m',
    });
    assertConfigError(() => load(text.replace('24x', '-24h')), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
    });
    assertConfigError(() => load(text.replace('24x', '0')), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
      message: /expected a positive Go duration/,
    });
  });

  it('blobttl without storage.delete.enabled: true', async () => {
    const off = (await simple()).replace('enabled: true', 'enabled: false');
    assertConfigError(() => load(off), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
      message:
        /found 24h with storage.delete.enabled false, expected storage.delete.enabled: true whenever blobttl is set/,
    });
    const unset = (await simple()).replace('  delete:\n    enabled: true\n', '');
    assertConfigError(() => load(unset), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 11,
      message: /storage.delete.enabled unset/,
    });
    // Without blobttl, delete may stay off: blobs then never expire.
    const noTtl = off.replace('          blobttl: 24h\n', '');
    assert.equal(load(noTtl).config.downstream.blobTtlMs, null);
  });

  it('bad http.addr', async () => {
    const base = await simple();
    // Quoted so that YAML reads each as a string (`[::1]` unquoted is a flow list); 5000 is a number.
    for (const bad of [
      '5000',
      '"localhost"',
      '"::1:5000"',
      '"[::1]:99999"',
      '":http"',
      '"exa mple:80"',
      '"[nope]:80"',
      '" :5000"',
      '"host:"',
    ]) {
      assertConfigError(() => load(base.replace('addr: :5000', `addr: ${bad}`)), {
        keyPath: 'http.addr',
        line: 8,
        message: /expected a listen address host:port such as :5000/,
      });
    }
    const ok = (addr: string): Config['http'] => load(base.replace('addr: :5000', `addr: ${addr}`)).config.http;
    assert.deepEqual([ok('"[::1]:5001"').host, ok('"[::1]:5001"').port], ['::1', 5001]);
    assert.deepEqual([ok('localhost:80').host, ok('localhost:80').port], ['localhost', 80]);
    assert.deepEqual([ok('127.0.0.1:0').host, ok('127.0.0.1:0').port], ['127.0.0.1', 0]);
    assert.equal(load(base.replace('  addr: :5000\n', '')).config.http.port, 5000);
  });

  it('bad URL in upstreams (both forms) and in http.host', async () => {
    const v23 = (url: string): string =>
      'version: 0.1\nmiddleware:\n  registry:\n    - name: downstream\n      options:\n        upstreams:\n' +
      `          - https://ok.example.org\n          - ${url}\n`;
    for (const bad of [
      'ftp://dtr.example.org',
      'dtr.example.org',
      'https://dtr.example.org/v2/',
      'https://dtr.example.org?x=1',
      'https://user:pw@dtr.example.org',
      'https://',
      '/abs/path',
    ]) {
      assertConfigError(() => load(v23(bad)), {
        keyPath: 'middleware.registry[0].options.upstreams[1]',
        line: 8,
        message: /expected an absolute http:\/\/ or https:\/\/ URL/,
      });
    }
    const normalised = load(v23('HTTPS://DTR.Example.org:443/')).config.downstream.upstreams;
    assert.deepEqual(normalised, { hosts: ['https://ok.example.org', 'https://dtr.example.org'], origin: null });

    const china = fillUrls(await seed('003-china.yml')).replace(
      'https://asia-cache.example.org:5000',
      'https://asia/x',
    );
    assertConfigError(() => load(china), {
      keyPath: 'middleware.registry[0].options.upstreams[0].upstreamhosts[0]',
      line: 20,
    });
    const host = fillUrls(await seed('002-swarm.yml')).replace(
      'host: https://cache.example.org',
      'host: cache.example.org',
    );
    assertConfigError(() => load(host), { keyPath: 'http.host', line: 12 });
  });

  it('missing upstreams, empty upstreams, no downstream middleware', async () => {
    const base = await simple();
    const noUpstreams = base.replace('          upstreams:\n            - originhost: https://dtr.example.org\n', '');
    assertConfigError(() => load(noUpstreams), {
      keyPath: 'middleware.registry[0].options.upstreams',
      line: 12,
      message: /found nothing, expected a non-empty list of upstreams/,
    });
    const empty = base.replace(
      '          upstreams:\n            - originhost: https://dtr.example.org\n',
      '          upstreams: []\n',
    );
    assertConfigError(() => load(empty), {
      keyPath: 'middleware.registry[0].options.upstreams',
      line: 14,
      message: /found an empty list/,
    });
    const noOrigin = base.replace('- originhost: https://dtr.example.org', '- upstreamhosts: [https://a.example.org]');
    assertConfigError(() => load(noOrigin), {
      keyPath: 'middleware.registry[0].options.upstreams[0].originhost',
      line: 15,
    });
    const other = base.replace('name: downstream', 'name: redirect');
    assertConfigError(() => load(other), {
      keyPath: 'middleware.registry',
      line: 10,
      message: /found no entry named "downstream"/,
    });
    assertConfigError(() => load('version: 0.1\n'), {
      keyPath: 'middleware.registry',
      line: null,
      message: /found nothing/,
    });
  });

  it('two DTR 2.2 upstream entries, mixed forms, two downstream entries', async () => {
    const two = (await simple()).replace(
      '            - originhost: https://dtr.example.org\n',
      '            - originhost: https://dtr.example.org\n            - originhost: https://other.example.org\n',
    );
    assertConfigError(() => load(two), {
      keyPath: 'middleware.registry[0].options.upstreams[1]',
      line: 16,
      message: /found a second entry/,
    });
    const mixed = (await simple()).replace(
      '            - originhost: https://dtr.example.org\n',
      '            - originhost: https://dtr.example.org\n            - https://other.example.org\n',
    );
    assertConfigError(() => load(mixed), { keyPath: 'middleware.registry[0].options.upstreams[1]', line: 16 });
    const dup = `${await simple()}      - name: downstream\n        options:\n          upstreams: [https://x.example.org]\n`;
    assertConfigError(() => load(dup), { keyPath: 'middleware.registry[1].name', line: 18 });
  });

  it('missing or non-PEM cas file (loadConfigFile only; loadConfig does not touch files)', async () => {
    const { text } = await fillAll(await seed('003-china.yml'));
    const missing = text.replace(join(dir, 'dtr-ca.pem'), join(dir, 'no-such-ca.pem'));
    assert.doesNotThrow(() => load(missing));
    await assert.rejects(loadConfigFile(await writeConfig('missing-ca.yml', missing), {}), (err) =>
      checkError(err, {
        keyPath: 'middleware.registry[0].options.cas[1]',
        line: 23,
        message: /found ".*no-such-ca\.pem" \(ENOENT\), expected a readable PEM file/,
      }),
    );
    const notPem = join(dir, 'not-pem.pem');
    await writeFile(notPem, 'hello\n');
    const bad = text.replace(join(dir, 'asia-cache-ca.pem'), notPem);
    await assert.rejects(loadConfigFile(await writeConfig('bad-ca.yml', bad), {}), (err) =>
      checkError(err, { keyPath: 'middleware.registry[0].options.cas[0]', line: 22, message: /without one/ }),
    );
    const relative = text.replace(join(dir, 'dtr-ca.pem'), 'certs/dtr-ca.pem');
    assertConfigError(() => load(relative), {
      keyPath: 'middleware.registry[0].options.cas[1]',
      line: 23,
      message: /absolute path/,
    });
  });

  it('missing TLS certificate file', async () => {
    const { text } = await fillAll(await seed('003-asia.yml'));
    const gone = text.replace(join(dir, 'asia-ca.pem'), join(dir, 'gone.pem'));
    await assert.rejects(loadConfigFile(await writeConfig('gone.yml', gone), {}), (err) =>
      checkError(err, { keyPath: 'http.tls.certificate', line: 10 }),
    );
  });

  it('a missing config file', async () => {
    await assert.rejects(loadConfigFile(join(dir, 'nope.yml'), {}), (err) =>
      checkError(err, { keyPath: '(document)', line: null, message: /\(ENOENT\), expected a readable config file/ }),
    );
  });

  it('TLS certificate without key, and key without certificate', async () => {
    const asia = fillUrls(await seed('003-asia.yml'));
    assertConfigError(() => load(asia.replace('    key: /certs/asia-key.pem\n', '')), {
      keyPath: 'http.tls.certificate',
      line: 10,
      message: /found a certificate without a key, expected http.tls.key to be set too/,
    });
    assertConfigError(() => load(asia.replace('    certificate: /certs/asia-ca.pem\n', '')), {
      keyPath: 'http.tls.key',
      line: 10,
    });
  });

  it('bad log level and formatter', async () => {
    const base = (await simple()).replace('version: 0.1\n', 'version: 0.1\nlog:\n  level: loud\n');
    assertConfigError(() => load(base), {
      keyPath: 'log.level',
      line: 3,
      message:
        'config error: log.level (line 3): found "loud", expected a log level: trace, debug, info, warn, error, fatal or panic',
    });
    assert.equal(load(base.replace('loud', 'panic')).config.log.level, 'fatal');
    assert.equal(load(base.replace('loud', 'warning')).config.log.level, 'warn');
    assert.equal(load(base.replace('loud', 'DEBUG')).config.log.level, 'debug');
    const fmt = base.replace('level: loud', 'formatter: xml');
    assertConfigError(() => load(fmt), { keyPath: 'log.formatter', line: 3 });
    const logstash = load(base.replace('level: loud', 'formatter: logstash'));
    assert.equal(logstash.config.log.formatter, 'json');
    assert.match(logstash.warnings.join('\n'), /log.formatter \(line 3\): logstash is not supported/);
  });

  it('bad maxsize, and maxsize without delete.enabled', async () => {
    const base = await simple();
    const withSize = (s: string): string =>
      base.replace('          blobttl: 24h\n', `          blobttl: 24h\n          maxsize: ${s}\n`);
    for (const bad of ['lots', '10G', '-5', '1.5', '0', '10XB']) {
      assertConfigError(() => load(withSize(bad)), { keyPath: 'middleware.registry[0].options.maxsize', line: 14 });
    }
    assert.equal(load(withSize('200GiB')).config.downstream.maxSize, 200 * 2 ** 30);
    assert.equal(load(withSize('500MB')).config.downstream.maxSize, 500e6);
    const noDelete = withSize('1GB').replace('enabled: true', 'enabled: false').replace('          blobttl: 24h\n', '');
    assertConfigError(() => load(noDelete), {
      keyPath: 'middleware.registry[0].options.maxsize',
      message: /whenever maxsize is set/,
    });
  });

  it('other invalid values: version, storage driver, limits, workerqueue, jwks, YAML syntax', async () => {
    const base = await simple();
    assertConfigError(() => load(base.replace('version: 0.1', 'version: 0.2')), { keyPath: 'version', line: 1 });
    assertConfigError(() => load(base.replace('  filesystem:', '  s3:')), {
      keyPath: 'storage.s3',
      line: 5,
      message: /found the s3 storage driver, expected the filesystem storage driver/,
    });
    const limits = (body: string): string => base.replace('  addr: :5000\n', `  addr: :5000\n  limits:\n${body}`);
    assertConfigError(() => load(limits('    headerstimeout: 40s\n')), {
      keyPath: 'http.limits.headerstimeout',
      line: 10,
    });
    assertConfigError(() => load(limits('    maxconcurrentstreams: 0\n')), {
      keyPath: 'http.limits.maxconcurrentstreams',
      line: 10,
    });
    assertConfigError(() => load(limits('    idletimeout: soon\n')), { keyPath: 'http.limits.idletimeout', line: 10 });
    const opts = (line: string): string =>
      base.replace('          blobttl: 24h\n', `          blobttl: 24h\n          ${line}\n`);
    assertConfigError(() => load(opts('workerqueue: 0')), {
      keyPath: 'middleware.registry[0].options.workerqueue',
      line: 14,
    });
    assertConfigError(() => load(opts('jwks: http://dtr.example.org/.well-known/jwks.json')), {
      keyPath: 'middleware.registry[0].options.jwks',
      line: 14,
    });
    assertConfigError(() => load(opts('timeouts: {connect: 0s}')), {
      keyPath: 'middleware.registry[0].options.timeouts.connect',
      line: 14,
    });
    assertConfigError(() => load(`${base}bad: a: b\n`), {
      keyPath: '(document)',
      line: 18,
      message: /found invalid YAML/,
    });
    assertConfigError(() => load('version: 0.1\nhttp: {}\nhttp: {}\n'), {
      keyPath: '(document)',
      line: 3,
      message: /a key given twice/,
    });
    assertConfigError(() => load(base.replace('  addr: :5000\n', '  addr:\n    - :5000\n')), {
      keyPath: 'http.addr',
      line: 8,
      message: /found a list/,
    });
  });
});

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
    assert.deepEqual(config.http.tlsPolicy, { minVersion: 'TLSv1.2', tls12Ciphers: AES128_FIRST });
  });

  it('minimumtls: tls1.2, tls1.3; tls1.0 and tls1.1 are read as tls1.2 with a warning', async () => {
    const at = async (v: string) => load(await withTls(`    minimumtls: ${v}\n`));
    assert.deepEqual((await at('tls1.2')).config.http.tlsPolicy.minVersion, 'TLSv1.2');
    assert.deepEqual((await at('tls1.3')).config.http.tlsPolicy, { minVersion: 'TLSv1.3', tls12Ciphers: [] });
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

  it('a bad ciphersuites entry names its index; RC4 and a list of TLS 1.3 suites only are refused', async () => {
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
    const only13 = await list('TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384');
    assertConfigError(() => load(only13), {
      keyPath: 'http.tls.ciphersuites',
      line: 12,
      message: /found TLS 1\.3 suites only, expected at least one TLS 1\.2 suite/,
    });
    const scalar = await withTls('    ciphersuites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n');
    assertConfigError(() => load(scalar), { keyPath: 'http.tls.ciphersuites', line: 12 });
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

describe('environment overrides (REGISTRY_*)', () => {
  it('apply to scalar keys, creating missing sections', async () => {
    const { text, paths } = await fillAll(await seed('004-simple.yml'));
    const { config, warnings } = loadConfig(text.replace('enabled: true', 'enabled: false'), {
      env: {
        REGISTRY_HTTP_ADDR: '127.0.0.1:6000',
        REGISTRY_LOG_LEVEL: 'debug',
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/srv/cache',
        REGISTRY_STORAGE_DELETE_ENABLED: 'true',
        REGISTRY_HTTP_TLS_CERTIFICATE: paths.get('/certs/dtr-ca.pem') ?? '',
        REGISTRY_HTTP_TLS_KEY: '/srv/key.pem',
        REGISTRY_HTTP_LIMITS_IDLETIMEOUT: '2m',
        REGISTRY_HTTP_SECRET: '12345',
        PATH: '/usr/bin',
      },
    });
    assert.deepEqual(warnings, []);
    assert.equal(config.http.host, '127.0.0.1');
    assert.equal(config.http.port, 6000);
    assert.equal(config.log.level, 'debug');
    assert.equal(config.storage.rootDirectory, '/srv/cache');
    assert.equal(config.storage.deleteEnabled, true);
    assert.deepEqual(config.http.tls, { certificate: paths.get('/certs/dtr-ca.pem'), key: '/srv/key.pem' });
    assert.equal(config.http.limits.idleTimeoutMs, 120_000);
    assert.equal(config.http.secret, '12345');
  });

  it('an invalid override names the variable', async () => {
    const base = await simple();
    assertConfigError(() => load(base, { REGISTRY_HTTP_ADDR: 'nope' }), {
      keyPath: 'http.addr',
      line: null,
      envVar: 'REGISTRY_HTTP_ADDR',
      message:
        'config error: http.addr (from REGISTRY_HTTP_ADDR): found "nope", expected a listen address host:port such as :5000, 0.0.0.0:443 or [::1]:5000',
    });
    assertConfigError(() => load(base, { REGISTRY_STORAGE_DELETE_ENABLED: 'maybe' }), {
      keyPath: 'storage.delete.enabled',
      envVar: 'REGISTRY_STORAGE_DELETE_ENABLED',
    });
    // blobttl is set and the override turns deletes off: the error is on blobttl and says so.
    assertConfigError(() => load(base, { REGISTRY_STORAGE_DELETE_ENABLED: 'false' }), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
    });
    assertConfigError(() => load(base, { REGISTRY_LOG_LEVEL: '[debug]' }), {
      keyPath: 'log.level',
      envVar: 'REGISTRY_LOG_LEVEL',
      message: /expected a single YAML scalar/,
    });
    assertConfigError(() => load(base, { REGISTRY_HTTP_DRAINTIMEOUT: '30' + 'x' }), {
      keyPath: 'http.draintimeout',
      envVar: 'REGISTRY_HTTP_DRAINTIMEOUT',
      message: /\(from REGISTRY_HTTP_DRAINTIMEOUT\)/,
    });
  });

  it('unknown REGISTRY_* variables are warnings', async () => {
    const { warnings } = load(await simple(), { REGISTRY_STORAGE_S3_REGION: 'us-east-1' });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /REGISTRY_STORAGE_S3_REGION: not a dtr-cache setting/);
  });
});

describe('warnings', () => {
  it('unknown keys name the key path and line', async () => {
    const text = (await simple())
      .replace('  addr: :5000\n', '  addr: :5000\n  adr: :6000\n')
      .replace('          blobttl: 24h\n', '          blobttl: 24h\n          blobtll: 1h\n');
    const { config, warnings } = load(text);
    assert.equal(config.downstream.blobTtlMs, DAY_MS);
    assert.deepEqual(warnings, [
      'config warning: http.adr (line 9): unknown key, ignored',
      'config warning: middleware.registry[0].options.blobtll (line 15): unknown key, ignored',
    ]);
  });

  it('distribution keys a cache does not use: silent or warned, never fatal', async () => {
    const text = (await simple())
      .replace(
        'storage:\n',
        'storage:\n  cache:\n    blobdescriptor: inmemory\n  maintenance:\n    uploadpurging:\n      enabled: false\n',
      )
      .replace(
        'version: 0.1\n',
        'version: 0.1\nlog:\n  fields:\n    service: registry\nhealth:\n  storagedriver:\n    enabled: true\n',
      )
      .replace('  addr: :5000\n', '  addr: :5000\n  headers:\n    X-Content-Type-Options: [nosniff]\n')
      .replace(
        'middleware:\n  registry:\n',
        'middleware:\n  repository:\n      - name: foo\n  registry:\n      - name: redirect\n',
      );
    const { warnings } = load(text);
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.match(
      warnings[0] ?? '',
      /^config warning: health \(line 5\): a Docker Registry setting that dtr-cache does not use, ignored$/,
    );
    assert.match(warnings.join('\n'), /middleware.repository \(line \d+\): middleware other than/);
    assert.match(
      warnings.join('\n'),
      /middleware.registry\[0\].name \(line \d+\): middleware "redirect" is not supported/,
    );
  });

  it('a tiny bare-number duration (nanoseconds, Go style) is warned about', async () => {
    const text = (await simple()).replace('  addr: :5000\n', '  addr: :5000\n  draintimeout: 30\n');
    const { config, warnings } = load(text);
    assert.equal(config.http.drainTimeoutMs, 0.00003);
    assert.deepEqual(warnings, [
      'config warning: http.draintimeout (line 9): a bare number is nanoseconds (Go duration syntax), so this is 30ns; write a unit such as 30s if that is not meant',
    ]);
  });

  it('YAML anchors and merge keys resolve as in Go yaml.v2', () => {
    const text = [
      'version: 0.1',
      'x-ttl: &ttl 12h',
      'x-limits: &limits {idletimeout: 5m}',
      'storage: {delete: {enabled: yes}}',
      'http:',
      '  limits:',
      '    <<: *limits',
      '    maxheadersize: 32KiB',
      'middleware:',
      '  registry:',
      '    - name: downstream',
      '      options: {blobttl: *ttl, upstreams: [https://dtr.example.org]}',
    ].join('\n');
    const { config, warnings } = load(text);
    assert.equal(config.downstream.blobTtlMs, 12 * 3_600_000);
    assert.equal(config.http.limits.idleTimeoutMs, 300_000);
    assert.equal(config.http.limits.maxHeaderSize, 32 * 1024);
    assert.equal(config.storage.deleteEnabled, true);
    assert.equal(warnings.length, 2); // x-ttl and x-limits are unknown top-level keys
  });
});

describe('parseGoDuration', () => {
  const table: ReadonlyArray<readonly [string | number, number]> = [
    ['24h', DAY_MS],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['90m', 5_400_000],
    ['90s', 90_000],
    ['500ms', 500],
    ['10us', 0.01],
    ['10µs', 0.01],
    ['10μs', 0.01],
    ['7ns', 0.000007],
    ['1h2m3s4ms5us6ns', 3_723_004.005006],
    ['.5s', 500],
    ['5.s', 5000],
    ['+1m', 60_000],
    ['0', 0],
    ['0s', 0],
    ['1.0000000001s', 1000], // truncated to whole nanoseconds, as Go does
    ['86400000000000', DAY_MS], // bare number = nanoseconds (DTR's blobttl reference)
    [86_400_000_000_000, DAY_MS],
    [1_000_000, 1],
  ];
  for (const [input, ms] of table) {
    it(`${JSON.stringify(input)} → ${ms} ms`, () => assert.equal(parseGoDuration(input), ms));
  }

  for (const bad of [
    '',
    ' ',
    '24',
    'h',
    '24x',
    '24H',
    '1d',
    '-1h',
    '-0',
    '1h 30m',
    '1h30',
    '.h',
    '1..5h',
    '1.5.h',
    'NaN',
    'Infinity',
    '1e3s',
    '0x10s',
    '3000000h',
    1.5,
    -1,
    Number.NaN,
  ]) {
    if (bad === '24') continue; // a bare numeric string is nanoseconds, not garbage
    it(`rejects ${JSON.stringify(bad)} with a typed error, never NaN`, () => {
      assert.throws(
        () => parseGoDuration(bad),
        (err) => err instanceof ValueSyntaxError && err.code === 'DURATION_INVALID',
      );
    });
  }

  it('formatDuration round-trips', () => {
    for (const ms of [DAY_MS, 5_400_000, 90_000, 1500, 500, 0.01, 0.000007, 3_723_004.005006, 0]) {
      assert.equal(parseGoDuration(formatDuration(ms)), ms, formatDuration(ms));
    }
    assert.equal(formatDuration(DAY_MS), '24h');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(1500), '1.5s');
  });
});

describe('parseSize', () => {
  const table: ReadonlyArray<readonly [string | number, number]> = [
    ['200GiB', 200 * 2 ** 30],
    ['500MB', 500_000_000],
    ['10KiB', 10_240],
    ['1.5GB', 1_500_000_000],
    ['1.5KiB', 1536],
    ['10kB', 10_000],
    ['10KB', 10_000],
    ['2TiB', 2 * 2 ** 40],
    ['1TB', 1e12],
    ['3MiB', 3 * 2 ** 20],
    ['100 MB', 100e6],
    ['512B', 512],
    ['4096', 4096],
    [4096, 4096],
    ['0', 0],
  ];
  for (const [input, bytes] of table) {
    it(`${JSON.stringify(input)} → ${bytes} bytes`, () => assert.equal(parseSize(input), bytes));
  }
  for (const bad of [
    '',
    'lots',
    '-1',
    '-1GB',
    '10G',
    '10 G',
    '1.5',
    '10XB',
    'GB',
    '1e3',
    '10 GiB ',
    '10GiBs',
    '99999PiB',
    -1,
    1.5,
    Number.NaN,
  ]) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseSize(bad),
        (err) => err instanceof ValueSyntaxError && err.code === 'SIZE_INVALID',
      );
    });
  }
  it('formatSize', () => {
    assert.equal(formatSize(200 * 2 ** 30), '200GiB');
    assert.equal(formatSize(1536), '1.5KiB');
    assert.equal(formatSize(512), '512B');
  });
});

describe('config.example.yml', () => {
  const examplePath = join(ROOT, 'config.example.yml');

  it('loads with no warnings', async () => {
    const { config, warnings } = load(await readFile(examplePath, 'utf8'));
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.downstream.upstreams, { hosts: ['https://dtr.example.org'], origin: null });
  });

  it('sets every key of DEFAULTS, to its default', async () => {
    const text = await readFile(examplePath, 'utf8');
    const doc = parseDocument(text);
    // Where the example deliberately differs from the default, with a comment saying so.
    const differs = new Set(['storage.delete.enabled']);
    const leaves: Array<[string[], unknown]> = [];
    const walk = (obj: object, path: string[]): void => {
      for (const [k, v] of Object.entries(obj)) {
        if (typeof v === 'object' && v !== null) walk(v, [...path, k]);
        else leaves.push([[...path, k], v]);
      }
    };
    walk(DEFAULTS, []);
    assert.ok(leaves.length >= 18, `found ${leaves.length} defaults`);
    for (const [path, value] of leaves) {
      // Mirror mode is off in the example: its defaults are written in the commented proxy section.
      if (path[0] === 'proxy') {
        const section = text.slice(text.indexOf('\n# proxy:'));
        assert.match(
          section,
          new RegExp(`^#   ${String(path[1])}: ${String(value)}$`, 'm'),
          `proxy.${String(path[1])}`,
        );
        continue;
      }
      const yamlPath = path[0] === 'downstream' ? ['middleware', 'registry', 0, 'options', ...path.slice(1)] : path;
      const name = path.join('.');
      assert.ok(doc.hasIn(yamlPath), `${name} is missing from config.example.yml`);
      if (!differs.has(name))
        assert.equal(doc.getIn(yamlPath), value, `${name} in config.example.yml is not its default`);
    }
  });
});
