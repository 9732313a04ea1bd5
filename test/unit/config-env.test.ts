// REGISTRY_* environment variables override scalar config keys, as in distribution: they
// create missing sections, an invalid one is a ConfigError naming the variable, and an
// unknown one is a warning.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULTS } from '../../src/config/defaults.js';
import { ENV_KEYS } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';
import { assertConfigError, load, seed, simple } from '../helpers/config.js';
import { fillAll, useTempDir } from '../helpers/config-files.js';

useTempDir();

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
    assert.deepEqual(config.http.tls, {
      certificate: paths.get('/certs/dtr-ca.pem'),
      key: '/srv/key.pem',
      clientCas: [],
    });
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
      message: /with storage\.delete\.enabled false \(from REGISTRY_STORAGE_DELETE_ENABLED\)/,
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

  it('cover every scalar setting outside the middleware list (the defaults name them all)', () => {
    const leaves = (tree: object, at: string): string[] =>
      Object.entries(tree).flatMap(([k, v]) =>
        typeof v === 'object' && v !== null ? leaves(v as object, `${at}${k}.`) : [`${at}${k}`],
      );
    // downstream is the options of a middleware list item: no variable reaches it.
    const { downstream: _listItem, ...scalars } = DEFAULTS;
    assert.deepEqual(
      leaves(scalars, '').filter((k) => !ENV_KEYS.includes(k)),
      [],
    );
  });

  it('set log.fields entries and http.tls.clientauth, as distribution does', async () => {
    // distribution writes REGISTRY_LOG_FIELDS_<NAME> into the log.fields map under the
    // lower-cased name, beside the file's fields (configuration/parser.go, overwriteMap).
    const base = (await simple()).replace('version: 0.1', 'version: 0.1\nlog:\n  fields:\n    service: registry');
    const { config, warnings } = load(base, {
      REGISTRY_LOG_FIELDS_ENVIRONMENT: 'staging',
      REGISTRY_LOG_FIELDS_SERVICE: 'cache',
      REGISTRY_HTTP_TLS_CLIENTAUTH: 'require-and-verify-client-cert',
    });
    assert.deepEqual(config.log.fields, { service: 'cache', environment: 'staging' });
    // clientauth without clientcas is ignored with the same warning as in the file.
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /^config warning: http\.tls\.clientauth \(from REGISTRY_HTTP_TLS_CLIENTAUTH\)/);
    // Any YAML, as distribution reads a log field into interface{}.
    assert.deepEqual(load(base, { REGISTRY_LOG_FIELDS_BUILD: '[1, 2]' }).config.log.fields, {
      service: 'registry',
      build: [1, 2],
    });
    assertConfigError(() => load(base, { REGISTRY_LOG_FIELDS_BUILD: '[1, 2' }), {
      keyPath: 'log.fields.build',
      envVar: 'REGISTRY_LOG_FIELDS_BUILD',
    });
  });

  it('set http.tls.clientcas and ciphersuites from a YAML list, as distribution does', async () => {
    // distribution reads a variable's value as YAML into the field's type, lists included:
    // ignoring REGISTRY_HTTP_TLS_CLIENTCAS would serve without the client certificates asked for.
    const tls = { REGISTRY_HTTP_TLS_CERTIFICATE: '/certs/cache.pem', REGISTRY_HTTP_TLS_KEY: '/certs/cache.key' };
    const base = await simple();
    const { config } = load(base, {
      ...tls,
      REGISTRY_HTTP_TLS_CLIENTCAS: '[/certs/client-a.pem, /certs/client-b.pem]',
      REGISTRY_HTTP_TLS_CIPHERSUITES: '[TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]',
    });
    assert.deepEqual(config.http.tls?.clientCas, ['/certs/client-a.pem', '/certs/client-b.pem']);
    assertConfigError(() => load(base, { ...tls, REGISTRY_HTTP_TLS_CLIENTCAS: '[relative.pem]' }), {
      keyPath: 'http.tls.clientcas[0]',
      line: null,
      envVar: 'REGISTRY_HTTP_TLS_CLIENTCAS',
    });
    // A string for a list is refused, as distribution refuses it.
    assertConfigError(() => load(base, { ...tls, REGISTRY_HTTP_TLS_CLIENTCAS: '/certs/client-a.pem' }), {
      keyPath: 'http.tls.clientcas',
      envVar: 'REGISTRY_HTTP_TLS_CLIENTCAS',
    });
    assertConfigError(() => load(base, { ...tls, REGISTRY_HTTP_TLS_CIPHERSUITES: '[TLS_FOO]' }), {
      keyPath: 'http.tls.ciphersuites[0]',
      envVar: 'REGISTRY_HTTP_TLS_CIPHERSUITES',
    });
  });

  it('REGISTRY_STORAGE selects the driver: another than filesystem is refused', async () => {
    const base = await simple();
    assertConfigError(() => load(base, { REGISTRY_STORAGE: 's3' }), {
      keyPath: 'storage',
      line: null,
      envVar: 'REGISTRY_STORAGE',
      message:
        'config error: storage (from REGISTRY_STORAGE): found the "s3" storage driver, expected the filesystem storage driver (dtr-cache keeps blobs on a local or shared filesystem)',
    });
    assert.deepEqual(load(base, { REGISTRY_STORAGE: 'filesystem' }).warnings, []);
  });

  it('unknown REGISTRY_* variables are warnings', async () => {
    const { warnings } = load(await simple(), { REGISTRY_STORAGE_S3_REGION: 'us-east-1' });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /REGISTRY_STORAGE_S3_REGION: not a dtr-cache setting/);
  });
});
